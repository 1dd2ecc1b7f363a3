/**
 * Publishing a folder: its tree is walked without following links, every
 * file hashed into its own manifest (the content it has when shared alone),
 * the folder manifest built from them, the files' content ids sent to the
 * tracker in bounded batches, then the folder published as one share.
 */
import { basename, join, resolve } from "node:path";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { FOLDER_TYPE, MAX_BATCH_IDS } from "../protocol/messages.ts";
import { checkFolderPaths } from "./folder_paths.ts";
import { encodeFolderManifest, folderContentId, type FolderFile } from "./folder_manifest.ts";
import type { FolderFileRecord, PeerHome, Share } from "./home.ts";
import {
  choosePieceSize,
  contentIdOf,
  type FileIdentity,
  hashFile,
  identityOf,
  openRegularFile,
  sha256Hex,
} from "./manifest.ts";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import type { Manifest } from "../protocol/messages.ts";
import { describeSkipped, TreeWalk } from "./tree_walk.ts";
import { type TrackerClient, type TrackerEndpoint, withSession } from "./tracker_link.ts";

/** Files hashed at once: one reads while another hashes. */
const HASHING = 4;
/** Files of at most one piece are read whole, with synchronous calls. */
const SMALL_FILE_BYTES = choosePieceSize(0);

/**
 * Hashes a file of at most one piece with synchronous calls (a folder holds
 * thousands; each hand-off to an I/O thread costs more than the read), from
 * what the walk's `lstat` saw (`seen`): opened with `O_NOFOLLOW` and
 * `O_NONBLOCK` (a FIFO swapped in cannot hang it), read whole, then one
 * `fstat` checks that it is the very file `lstat` saw (same `device:inode`)
 * and unchanged since (size and time). A file unchanged since `before`
 * (same size, time and `device:inode`) keeps its manifest unread.
 */
function hashSmallFile(
  path: string,
  seen: FileIdentity,
  before: FolderFileRecord | null,
  again = false,
): { manifest: Manifest; identity: FileIdentity } {
  const identity = seen;
  if (identity.size > SMALL_FILE_BYTES) {
    throw new ShoalError("CONTENT_CHANGED", `${path} grew while it was being read; try again`);
  }
  if (
    before && before.size === identity.size && before.mtimeMs === identity.mtimeMs &&
    before.fileId === identity.fileId
  ) {
    return { manifest: before.manifest, identity };
  }
  let fd: number;
  let changedSinceWalk = false;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as { code?: string }).code === "ELOOP") {
      throw new ShoalError("IO", `${path} is no longer a regular file`);
    }
    throw toShoalError(error);
  }
  try {
    const bytes = new Uint8Array(identity.size);
    let filled = 0;
    while (filled < bytes.length) {
      const read = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (read === 0) break;
      filled += read;
    }
    const after = fstatSync(fd);
    const replaced = identity.fileId !== null && `${after.dev}:${after.ino}` !== identity.fileId;
    const changed = !after.isFile() || filled !== identity.size ||
      after.size !== identity.size || after.mtime.getTime() !== identity.mtimeMs;
    if ((replaced || changed) && !again) {
      // Changed since the walk saw it: looked at afresh, as it is now (once).
      changedSinceWalk = true;
    } else if (replaced) {
      throw new ShoalError("IO", `${path} was replaced while it was being opened`);
    } else if (changed) {
      throw new ShoalError(
        "CONTENT_CHANGED",
        `${path} changed while it was being hashed; try again`,
      );
    }
    if (!changedSinceWalk) {
      const pieceSize = choosePieceSize(identity.size);
      const pieces = identity.size === 0 ? [] : [sha256Hex(bytes)];
      return { manifest: { version: 1, size: identity.size, pieceSize, pieces }, identity };
    }
  } finally {
    closeSync(fd);
  }
  let now: Deno.FileInfo;
  try {
    now = Deno.lstatSync(path);
  } catch (error) {
    throw toShoalError(error);
  }
  if (!now.isFile) throw new ShoalError("IO", `${path} is no longer a regular file`);
  return hashSmallFile(path, identityOf(now), before, true);
}

/** Progress while a folder is hashed. */
export interface FolderHashProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

/** A folder described for publishing. */
export interface DescribedFolder {
  share: Share;
  /** Its files, once each: a fetched folder's are made as they are stored, not held. */
  files: Iterable<FolderFileRecord>;
  /** The distinct content ids of its files. */
  ids: string[];
  /**
   * The folder manifest's canonical text; null when the home keeps it already
   * (a fetched folder's, stored as it arrived).
   */
  text: string | null;
  /** What was left out, as one line ("skipped 2 symlinks, 1 FIFO"), or null. */
  skipped: string | null;
}

/** Options of {@link describeFolder} and {@link publishFolder}. */
export interface FolderPublishOptions {
  signal?: AbortSignal;
  onProgress?: (progress: FolderHashProgress) => void;
}

/**
 * Walks and hashes a local folder into a share record and the files it
 * serves. A file unchanged since the folder was last published under this
 * name (same path, size, time and `device:inode`) keeps its hashes, so a
 * re-publish hashes only what changed.
 */
export async function describeFolder(
  name: string,
  dir: string,
  previous: FolderFileRecord[],
  options: FolderPublishOptions = {},
): Promise<DescribedFolder> {
  const root = await Deno.realPath(resolve(dir)).catch(() => {
    throw new ShoalError("IO", `no such folder: ${dir}`);
  });
  const walk = new TreeWalk(root, { signal: options.signal });
  const found: { relative: string; size: number; seen: FileIdentity }[] = [];
  const folders: string[] = [];
  for await (const entry of walk) {
    if (entry.kind === "folder") folders.push(entry.path);
    else {
      found.push({
        relative: entry.path,
        size: entry.size,
        seen: { size: entry.size, mtimeMs: entry.mtimeMs ?? 0, fileId: entry.fileId },
      });
    }
  }
  const skipped = describeSkipped(walk.skipped) || null;
  // A local name another system could not hold is refused here, not by every fetcher.
  try {
    checkFolderPaths([...found.map((file) => file.relative), ...folders], { folders });
  } catch (error) {
    // Said to the publisher, not to a fetcher: what to change here.
    if (!(error instanceof ShoalError) || error.code !== "UNSAFE_PATH") throw error;
    throw new ShoalError(
      "UNSAFE_PATH",
      error.message.replace(/^refused a folder: /, `cannot publish ${root}: `),
      {
        hint: "rename or move it, then publish again: every fetcher must be able to write the tree",
      },
    );
  }
  const known = new Map(previous.map((file) => [file.relative, file]));
  const totalBytes = found.reduce((sum, file) => sum + file.size, 0);
  const records: FolderFileRecord[] = new Array(found.length);
  let done = 0;
  let bytes = 0;
  let next = 0;
  /** Records the file `at` once hashed (or its earlier hash is still good). */
  const hashed = (at: number, path: string, identity: FileIdentity, manifest: Manifest) => {
    records[at] = {
      relative: found[at].relative,
      path,
      size: identity.size,
      mtimeMs: identity.mtimeMs,
      fileId: identity.fileId,
      contentId: contentIdOf(manifest),
      manifest,
    };
    done++;
    bytes += identity.size;
  };
  const hashOne = async (at: number) => {
    const { relative, size, seen } = found[at];
    const path = join(root, relative);
    if (options.signal?.aborted) throw new ShoalError("CANCELLED", `stopped hashing ${dir}`);
    if (size <= SMALL_FILE_BYTES) {
      const before = known.get(relative);
      const { manifest, identity } = hashSmallFile(
        path,
        seen,
        before?.path === path ? before : null,
      );
      hashed(at, path, identity, manifest);
      // Synchronous work: let Ctrl-C and the progress bar in now and then.
      if (done % 256 === 0) {
        options.onProgress?.({ files: done, totalFiles: found.length, bytes, totalBytes });
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      return;
    }
    const { file, identity } = await openRegularFile(path);
    try {
      const before = known.get(relative);
      let manifest;
      if (
        before && before.path === path && before.size === identity.size &&
        before.mtimeMs === identity.mtimeMs && before.fileId === identity.fileId
      ) {
        manifest = before.manifest;
      } else {
        manifest = await hashFile(file, identity.size, path, options.signal);
        const after = await file.stat();
        if (after.size !== identity.size || after.mtime.getTime() !== identity.mtimeMs) {
          throw new ShoalError(
            "CONTENT_CHANGED",
            `${path} changed while it was being hashed; try again`,
          );
        }
      }
      hashed(at, path, identity, manifest);
      options.onProgress?.({ files: done, totalFiles: found.length, bytes, totalBytes });
    } finally {
      await file.close();
    }
  };
  const worker = async () => {
    while (next < found.length) await hashOne(next++);
  };
  await Promise.all(Array.from({ length: HASHING }, worker));
  const entries: FolderFile[] = records.map((record) => ({
    path: record.relative,
    size: record.size,
    pieces: record.manifest.pieces,
  }));
  const text = encodeFolderManifest({ version: 1, files: entries, folders });
  const info = await Deno.lstat(root);
  const share: Share = {
    name,
    path: root,
    type: FOLDER_TYPE,
    size: totalBytes,
    mtimeMs: identityOf(info).mtimeMs,
    fileId: identityOf(info).fileId,
    contentId: folderContentId(text),
    manifest: { version: 1, size: 0, pieceSize: 262144, pieces: [] },
    publishedAt: new Date().toISOString(),
    kind: "folder",
    files: records.length,
  };
  const ids = [...new Set(records.map((record) => record.contentId))];
  return { share, files: records, ids, text, skipped };
}

/**
 * Tells the tracker which files a folder holds (in batches of at most
 * MAX_BATCH_IDS content ids, pipelined on one connection), then publishes
 * it, and records it in the home with its manifest.
 */
export async function announceFolder(
  home: PeerHome,
  tracker: TrackerEndpoint | TrackerClient,
  folder: DescribedFolder,
): Promise<{ replaced: boolean }> {
  const { share } = folder;
  const { ids } = folder;
  const announce = async (client: TrackerClient) => {
    // Two batches in flight at a time: pipelined, without every request of a big folder at once.
    const send = (at: number) => {
      const sent = client.call("members", {
        contentId: share.contentId,
        files: ids.slice(at, at + MAX_BATCH_IDS),
      });
      // Awaited in turn; one that fails while an earlier one is awaited is not left unhandled.
      sent.catch(() => {});
      return sent;
    };
    let next = ids.length > 0 ? send(0) : null;
    for (let at = 0; next !== null; at += MAX_BATCH_IDS) {
      const sent = next;
      next = at + MAX_BATCH_IDS < ids.length ? send(at + MAX_BATCH_IDS) : null;
      await sent;
    }
    if (folder.text !== null) {
      const path = home.folderManifestPath(share.contentId);
      await Deno.mkdir(join(home.dir, "folders"), { recursive: true, mode: 0o700 });
      const temporary = `${path}.${crypto.randomUUID()}.tmp`;
      await Deno.writeTextFile(temporary, folder.text);
      await Deno.rename(temporary, path);
    }
    const { replaced } = await client.call("publish", {
      name: share.name,
      type: share.type,
      size: share.size,
      contentId: share.contentId,
      files: share.files,
    });
    home.addShare(share, folder.files);
    return { replaced };
  };
  // A fetch that has a session open already (a fetched folder) says so on it: no new connection.
  return "call" in tracker ? await announce(tracker) : await withSession(home, tracker, announce);
}

/** Publishes a local folder under a name (by default its own name). */
export async function publishFolder(
  home: PeerHome,
  tracker: TrackerEndpoint,
  dir: string,
  name = basename(resolve(dir)),
  options: FolderPublishOptions = {},
): Promise<{ share: Share; replaced: boolean; skipped: string | null }> {
  const previous = home.share(name)?.kind === "folder" ? home.folderFiles(name) : [];
  const folder = await describeFolder(name, dir, previous, options);
  const { replaced } = await announceFolder(home, tracker, folder);
  return { share: folder.share, replaced, skipped: folder.skipped };
}
