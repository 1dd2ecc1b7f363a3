/**
 * Manifests and content ids: a file is named by the SHA-256 of its manifest
 * (size, piece size, SHA-256 of every piece), as BitTorrent names a torrent
 * by its info hash. Nothing received is trusted until it matches.
 */
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { ShoalError } from "../protocol/errors.ts";
import { type Manifest, MAX_PIECE_BYTES, MAX_PIECES } from "../protocol/messages.ts";
import { openFailure, SMALL_FILE_BYTES } from "./small_file_hash.ts";
import { contentIdOf, sha256Hex } from "./content_id.ts";

import { type FileIdentity, identityOf } from "./file_identity.ts";

// Where they always were, for every caller; content_id.ts and file_identity.ts keep them light
// enough for a worker.
export { contentIdOf, type FileIdentity, identityOf, sha256Hex };

/** The smallest piece: a file of at most this size is one piece, hashed whole (small_file_hash.ts). */
const MIN_PIECE = SMALL_FILE_BYTES;
/** Keeps a manifest small: at most this many pieces, above the minimum piece size. */
const TARGET_PIECES = 2048;

/** Picks a power-of-two piece size so a file has at most ~2048 pieces. */
export function choosePieceSize(size: number): number {
  let pieceSize = MIN_PIECE;
  while (pieceSize < MAX_PIECE_BYTES && size / pieceSize > TARGET_PIECES) pieceSize *= 2;
  return pieceSize;
}

/** The byte length of piece `index`. */
export function pieceLength(manifest: Manifest, index: number): number {
  return Math.min(manifest.pieceSize, manifest.size - index * manifest.pieceSize);
}

/** The bytes covered by the pieces in `have` (the last piece may be short). */
export function bytesHeld(
  manifest: Manifest,
  have: { count: number; has(index: number): boolean },
): number {
  const last = manifest.pieces.length - 1;
  const shortfall = last >= 0 && have.has(last)
    ? manifest.pieceSize - pieceLength(manifest, last)
    : 0;
  return have.count * manifest.pieceSize - shortfall;
}

/**
 * Fills `buffer` from `offset` with positional reads, safe to run several at
 * once on one handle (no seek); false if the file ends first.
 */
export async function readFullyAt(
  file: FileHandle,
  offset: number,
  buffer: Uint8Array,
): Promise<boolean> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, offset + filled);
    if (bytesRead === 0) return false;
    filled += bytesRead;
  }
  return true;
}

/**
 * Opens a regular file for reading without following a symbolic link at
 * its end (`O_NOFOLLOW`, which `node:fs` passes through under Deno), and
 * checks that the file opened is the one `lstat` saw: so a link or another
 * file swapped in between the two is refused, not read. Fails with IO and a
 * one-line message naming `path`.
 *
 * @example
 * ```ts
 * const { file, identity } = await openRegularFile("/home/alice/plan.pdf");
 * await file.close();
 * ```
 */
export async function openRegularFile(
  path: string,
): Promise<{ file: FileHandle; identity: FileIdentity }> {
  let info: Deno.FileInfo;
  let file: FileHandle;
  try {
    info = await Deno.lstat(path);
    if (info.isSymlink) throw new ShoalError("IO", `${path} is a symbolic link`);
    // Checked before opening: opening a FIFO waits for a writer, forever.
    if (!info.isFile) throw new ShoalError("IO", `not a regular file: ${path} is ${kindOf(info)}`);
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    throw openFailure(path, error);
  }
  const identity = identityOf(info);
  const opened = await file.stat().catch(() => null);
  if (!opened || (identity.fileId !== null && `${opened.dev}:${opened.ino}` !== identity.fileId)) {
    await file.close();
    throw new ShoalError("IO", `${path} was replaced while it was being opened`);
  }
  return { file, identity };
}

/** What a path that is not a regular file is, for the message that refuses it. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "not a file";
}

/**
 * Hashes the first `size` bytes of an open file piece by piece into a
 * manifest, one piece in memory at a time; CONTENT_CHANGED if the file is
 * shorter. `label` names the file in errors; `onProgress` hears the bytes
 * hashed so far after each piece.
 */
export async function hashFile(
  file: FileHandle,
  size: number,
  label: string,
  signal?: AbortSignal,
  onProgress?: (bytes: number) => void,
): Promise<Manifest> {
  const pieceSize = choosePieceSize(size);
  if (Math.ceil(size / pieceSize) > MAX_PIECES) {
    throw new ShoalError(
      "INVALID_INPUT",
      `${label} is too large to share (over ${MAX_PIECES} pieces)`,
    );
  }
  const pieces: string[] = [];
  const buffer = new Uint8Array(Math.min(pieceSize, size));
  for (let offset = 0; offset < size; offset += pieceSize) {
    if (signal?.aborted) throw new ShoalError("CANCELLED", `stopped hashing ${label}`);
    const piece = buffer.subarray(0, Math.min(pieceSize, size - offset));
    if (!await readFullyAt(file, offset, piece)) {
      throw new ShoalError("CONTENT_CHANGED", `${label} got shorter while it was being hashed`);
    }
    pieces.push(sha256Hex(piece));
    onProgress?.(offset + piece.length);
  }
  return { version: 1, size, pieceSize, pieces };
}

/**
 * Hashes a regular file (never through a symbolic link) piece by piece into
 * its manifest, reading one piece at a time so no file is ever wholly in memory.
 */
export async function buildManifest(path: string, signal?: AbortSignal): Promise<Manifest> {
  const { file, identity } = await openRegularFile(path);
  try {
    return await hashFile(file, identity.size, path, signal);
  } finally {
    await file.close();
  }
}

/** Checks that `manifest` is the one `contentId` names. */
export function verifyManifest(manifest: Manifest, contentId: string): void {
  if (contentIdOf(manifest) !== contentId) {
    throw new ShoalError("INTEGRITY", "the manifest does not match the content id");
  }
}

/**
 * Refuses a manifest no honest publisher makes, whatever content id names it:
 * a piece size other than the one {@link choosePieceSize} picks for its size,
 * or over `maxPieceBytes`, or a piece count that does not cover the size. A
 * fetcher buffers whole pieces, so a 1 MiB file cut into 64 MiB "pieces"
 * would otherwise cost it 64 MiB a request.
 */
export function checkPieceLayout(manifest: Manifest, maxPieceBytes = MAX_PIECE_BYTES): void {
  const { size, pieceSize, pieces } = manifest;
  const expected = choosePieceSize(size);
  if (pieceSize !== expected) {
    throw new ShoalError(
      "INTEGRITY",
      `the manifest cuts ${size} B into pieces of ${pieceSize} B, where a publisher uses ${expected} B`,
    );
  }
  if (pieceSize > maxPieceBytes) {
    throw new ShoalError(
      "INTEGRITY",
      `the manifest's pieces of ${pieceSize} B are over the ${maxPieceBytes} B this fetch accepts`,
    );
  }
  if (pieces.length !== Math.ceil(size / pieceSize)) {
    throw new ShoalError(
      "INTEGRITY",
      `the manifest lists ${pieces.length} pieces for ${size} B in pieces of ${pieceSize} B`,
    );
  }
}
