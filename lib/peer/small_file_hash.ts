/**
 * Hashing a file of at most one piece with synchronous calls: a folder holds
 * thousands, and each hand-off to an I/O thread costs more than the read.
 * Runs on the hashing workers (lib/peer/hash_pool.ts), and on the main thread
 * where none runs (a few files, one core, or workers that cannot start); it
 * imports nothing heavy, so a worker starts fast.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { ShoalError } from "../protocol/errors.ts";
import type { Manifest } from "../protocol/messages.ts";
import { contentIdOf, sha256Hex } from "./content_id.ts";
import { type FileIdentity, identityOf } from "./file_identity.ts";

/** The largest file hashed here: the smallest piece size (a file of one piece). */
export const SMALL_FILE_BYTES = 256 * 1024;

/** Which file, its size and time, as a walk or an earlier publish saw it. */
export type SeenFile = FileIdentity;

/** A small file hashed: its manifest (one piece, none when empty), its content id, the file as read. */
export interface SmallFileHash {
  manifest: Manifest;
  contentId: string;
  identity: SeenFile;
}

/** The error that says why `path` could not be opened, in one line naming it. */
export function openFailure(path: string, error: unknown): ShoalError {
  if (error instanceof ShoalError) return error;
  const code = (error as { code?: string }).code;
  if (error instanceof Deno.errors.NotFound || code === "ENOENT") {
    return new ShoalError("IO", `no such file: ${path}`);
  }
  if (error instanceof Deno.errors.PermissionDenied || code === "EACCES") {
    return new ShoalError("IO", `cannot read ${path}: permission denied`);
  }
  if (code === "ELOOP") return new ShoalError("IO", `${path} is a symbolic link`);
  return new ShoalError("IO", `cannot read ${path}: ${(error as Error).message}`);
}

/** One buffer per thread, reused: a fresh one a file costs the garbage collector more than the read. */
const buffer = new Uint8Array(SMALL_FILE_BYTES);

const sameFile = (a: SeenFile, b: SeenFile) =>
  a.size === b.size && a.mtimeMs === b.mtimeMs && a.fileId === b.fileId;

/**
 * Hashes the small file at `path` from what the walk's `lstat` saw (`seen`):
 * opened with `O_NOFOLLOW` and `O_NONBLOCK` (a FIFO swapped in cannot hang
 * it), read whole, then one `lstat` of the path checks that it still names
 * the file the walk saw (same `device:inode`), unchanged since (size and
 * time), and that exactly its size was read. (Not an `fstat` of the open
 * file: node's costs three times Deno's `lstat`, more than the read. Only a
 * file renamed away and back between the open and the `lstat`, unchanged,
 * with another of the same size read in between, would pass: its pieces
 * would then fail every fetcher's check, as a file changed after publishing
 * does.) A file
 * changed since the walk is looked at afresh once; one unchanged since
 * `before` (same size, time and `device:inode`) is not read: the answer is
 * null, and the earlier hash stands.
 */
export function hashSmallFile(
  path: string,
  seen: SeenFile,
  before: SeenFile | null,
  again = false,
): SmallFileHash | null {
  const identity = seen;
  if (identity.size > SMALL_FILE_BYTES) {
    throw new ShoalError("CONTENT_CHANGED", `${path} grew while it was being read; try again`);
  }
  if (before && sameFile(before, identity)) return null;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as { code?: string }).code === "ELOOP") {
      throw new ShoalError("IO", `${path} is no longer a regular file; publish again`);
    }
    throw openFailure(path, error);
  }
  try {
    const bytes = buffer.subarray(0, identity.size);
    let filled = 0;
    try {
      while (filled < bytes.length) {
        const read = readSync(fd, bytes, filled, bytes.length - filled, filled);
        if (read === 0) break;
        filled += read;
      }
    } catch (error) {
      // A folder or FIFO swapped in since the walk (EISDIR, ESPIPE), or a failing disk.
      if (!fstatSync(fd).isFile()) {
        throw new ShoalError("IO", `${path} is no longer a regular file; publish again`);
      }
      throw openFailure(path, error);
    }
    // The path looked at again once read (Deno's lstat: a third of node's fstat, which costs
    // more than the read here); see the function's comment for what this checks.
    const after = Deno.lstatSync(path);
    const replaced = identity.fileId !== null && after.ino !== null &&
      `${after.dev}:${after.ino}` !== identity.fileId;
    const changed = !after.isFile || filled !== identity.size ||
      after.size !== identity.size || (after.mtime?.getTime() ?? 0) !== identity.mtimeMs;
    if (!replaced && !changed) {
      const pieces = identity.size === 0 ? [] : [sha256Hex(bytes)];
      // The manifest the file has alone: a small file's piece size is the smallest.
      const manifest = {
        version: 1 as const,
        size: identity.size,
        pieceSize: SMALL_FILE_BYTES,
        pieces,
      };
      return { manifest, contentId: contentIdOf(manifest), identity };
    }
    if (again) {
      if (replaced) {
        throw new ShoalError("IO", `${path} was replaced while it was being opened; publish again`);
      }
      throw new ShoalError(
        "CONTENT_CHANGED",
        `${path} changed while it was being hashed; try again`,
      );
    }
  } finally {
    closeSync(fd);
  }
  // Changed since the walk saw it: looked at afresh, as it is now (once).
  let now: Deno.FileInfo;
  try {
    now = Deno.lstatSync(path);
  } catch (error) {
    throw openFailure(path, error);
  }
  if (!now.isFile) throw new ShoalError("IO", `${path} is no longer a regular file; publish again`);
  return hashSmallFile(path, identityOf(now), before, true);
}
