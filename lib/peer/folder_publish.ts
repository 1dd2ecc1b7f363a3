/**
 * Publishing a folder: its tree is walked without following links, every
 * file hashed into its own manifest (the content it has when shared alone),
 * the folder manifest built from them, the files' content ids sent to the
 * tracker in bounded batches, then the folder published as one share.
 */
import { basename, dirname, join, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { FOLDER_TYPE, MAX_BATCH_IDS } from "../protocol/messages.ts";
import { checkFolderPaths } from "./folder_paths.ts";
import { encodeFolderManifest, folderContentId, type FolderFile } from "./folder_manifest.ts";
import type { FolderFileRecord, PeerHome, Share } from "./home.ts";
import {
  contentIdOf,
  type FileIdentity,
  hashFile,
  identityOf,
  openRegularFile,
} from "./manifest.ts";
import { HashPool } from "./hash_pool.ts";
import { SMALL_FILE_BYTES } from "./small_file_hash.ts";
import type { Manifest } from "../protocol/messages.ts";
import { describeSkipped, TreeWalk } from "./tree_walk.ts";
import {
  connectSession,
  type TrackerClient,
  type TrackerEndpoint,
  withSession,
} from "./tracker_link.ts";

/**
 * How long a session opened before hashing is used for the announcement:
 * well within the tracker's idle timeout (3.5 heartbeats); a longer hash opens a new one.
 */
const SESSION_KEPT_MS = 20_000;
/** Large files hashed at once: one reads while another hashes. */
const HASHING = 4;
/**
 * Small files a batch for a hashing worker: a few milliseconds of work, so
 * that every core stays busy and Ctrl-C and the progress bar are not kept
 * waiting, for one message each way.
 */
const BATCH_FILES = 128;

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
  /**
   * Where {@link describeFolder} leaves its hashing workers to be ended
   * (idle by then), instead of ending them before it returns: ending one
   * costs a core some milliseconds, which a publish would otherwise spend
   * while it announces the folder. A failure still stops them at once.
   */
  workers?: DisposableStack;
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
  const under = (relative: string) => walk.pathOf(relative);
  const found: { relative: string; size: number; seen: FileIdentity }[] = [];
  const folders: string[] = [];
  const known = new Map(previous.map((file) => [file.relative, file]));
  const records: FolderFileRecord[] = [];
  const large: number[] = [];
  let done = 0;
  let bytes = 0;
  let totals: { totalFiles: number; totalBytes: number } | null = null;
  const progress = () => {
    if (totals) options.onProgress?.({ files: done, bytes, ...totals });
  };
  /** Records the file `at` once hashed (or its earlier hash is still good). */
  const hashed = (
    at: number,
    path: string,
    identity: FileIdentity,
    manifest: Manifest,
    contentId = contentIdOf(manifest),
  ) => {
    records[at] = {
      relative: found[at].relative,
      path,
      size: identity.size,
      mtimeMs: identity.mtimeMs,
      fileId: identity.fileId,
      contentId,
      manifest,
    };
    done++;
    bytes += identity.size;
  };
  /** The earlier record of the file `at`, where it was published from this very path. */
  const earlier = (at: number, path: string) => {
    const before = known.get(found[at].relative);
    return before?.path === path ? before : null;
  };
  // Small files go to the hashing workers in batches as the walk finds them, so hashing runs
  // beside the walk; each keeps the content id it has alone (one piece: its SHA-256).
  // Aborted at the first failure (or with the caller's signal): the other files stop hashing.
  const stop = new AbortController();
  const stopping = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  using owned = new DisposableStack();
  const pool = (options.workers ?? owned).use(new HashPool({ signal: stopping }));
  const batches: Promise<void>[] = [];
  let batch: number[] = [];
  const sendBatch = () => {
    if (batch.length === 0) return;
    const indexes = batch;
    batch = [];
    const paths = indexes.map((at) => under(found[at].relative));
    const befores = indexes.map((at, i) => earlier(at, paths[i]));
    const jobs = indexes.map((at, i) => {
      const before = befores[i];
      // Only what says whether the file changed goes to a worker, not the earlier manifest.
      const unchanged = before &&
        { size: before.size, mtimeMs: before.mtimeMs, fileId: before.fileId };
      return { path: paths[i], seen: found[at].seen, before: unchanged };
    });
    const sent = pool.hash(jobs).then((hashes) => {
      hashes.forEach((hash, i) => {
        if (!hash) {
          const before = befores[i]!;
          hashed(indexes[i], paths[i], before, before.manifest, before.contentId);
          return;
        }
        hashed(indexes[i], paths[i], hash.identity, hash.manifest, hash.contentId);
      });
      progress();
    });
    // Awaited below, after the walk; one that fails before then is not left unhandled.
    sent.catch(() => {});
    batches.push(sent);
  };
  /**
   * Records the small file `at` with its earlier hash where the walk saw it unchanged since
   * (same size, time and `device:inode` at the same path), as a worker would: a re-publish of
   * a folder that barely changed starts no worker.
   */
  const keptSmall = (at: number) => {
    const path = under(found[at].relative);
    const before = earlier(at, path);
    const { seen } = found[at];
    if (
      !before || before.size !== seen.size || before.mtimeMs !== seen.mtimeMs ||
      before.fileId !== seen.fileId
    ) return false;
    hashed(at, path, before, before.manifest, before.contentId);
    return true;
  };
  for await (const entries of walk.chunks()) {
    for (const entry of entries) {
      if (entry.kind === "folder") {
        folders.push(entry.path);
        continue;
      }
      const at = found.push({
        relative: entry.path,
        size: entry.size,
        seen: { size: entry.size, mtimeMs: entry.mtimeMs ?? 0, fileId: entry.fileId },
      }) - 1;
      if (entry.size > SMALL_FILE_BYTES) large.push(at);
      else if (!keptSmall(at)) {
        if (batch.push(at) === BATCH_FILES) sendBatch();
      }
    }
  }
  sendBatch();
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
  let totalBytes = 0;
  for (const file of found) totalBytes += file.size;
  totals = { totalFiles: found.length, totalBytes };
  progress();
  /** Hashes the large file `at` piece by piece, reading as it goes. */
  const hashLarge = async (at: number) => {
    const path = under(found[at].relative);
    if (stopping.aborted) throw new ShoalError("CANCELLED", `stopped hashing ${dir}`);
    const { file, identity } = await openRegularFile(path);
    try {
      const before = earlier(at, path);
      let manifest;
      if (
        before && before.size === identity.size && before.mtimeMs === identity.mtimeMs &&
        before.fileId === identity.fileId
      ) {
        manifest = before.manifest;
      } else {
        manifest = await hashFile(file, identity.size, path, stopping);
        const after = await file.stat();
        if (after.size !== identity.size || after.mtime.getTime() !== identity.mtimeMs) {
          throw new ShoalError(
            "CONTENT_CHANGED",
            `${path} changed while it was being hashed; try again`,
          );
        }
      }
      hashed(at, path, identity, manifest);
      progress();
    } finally {
      await file.close();
    }
  };
  let next = 0;
  const hashLargeFiles = async () => {
    while (next < large.length && !stopping.aborted) await hashLarge(large[next++]);
  };
  // The first failure stops the rest, and is thrown once all of it has stopped: nothing reads
  // on after the publish has failed.
  let failure: { error: unknown } | null = null;
  const settled = (work: Promise<void>) =>
    work.catch((error) => {
      failure ??= { error };
      stop.abort();
    });
  await Promise.all([
    ...batches,
    pool.help(),
    ...Array.from({ length: Math.min(HASHING, large.length) }, hashLargeFiles),
  ].map(settled));
  if (failure !== null) {
    if (options.signal?.aborted) throw new ShoalError("CANCELLED", `stopped hashing ${dir}`);
    throw (failure as { error: unknown }).error;
  }
  const entries: FolderFile[] = [];
  const distinct = new Set<string>();
  for (const record of records) {
    entries.push({ path: record.relative, size: record.size, pieces: record.manifest.pieces });
    distinct.add(record.contentId);
  }
  const text = encodeFolderManifest({ version: 1, files: entries, folders });
  // Not an await (a hop to an I/O thread and back on two busy cores): one lstat.
  const info = Deno.lstatSync(root);
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
  const ids = [...distinct];
  return { share, files: records, ids, text, skipped };
}

/** What a home held under a share's name before a publish replaced it: put back if it fails. */
export interface EarlierShare {
  share: Share | null;
  /** Its files, where it was a folder. */
  files: FolderFileRecord[];
}

/** `members` batches in flight at once: a folder of 10,000 files sends all of its three. */
const MEMBERS_IN_FLIGHT = 4;

/**
 * Tells the tracker which files' content ids a folder holds, in batches of
 * MAX_BATCH_IDS, MEMBERS_IN_FLIGHT of them pipelined on the connection (the
 * first ones are written out before this returns its promise).
 */
export async function sendMembers(
  client: TrackerClient,
  folderId: string,
  ids: string[],
): Promise<void> {
  const sent: Promise<unknown>[] = [];
  for (let at = 0; at < ids.length || sent.length > 0;) {
    while (at < ids.length && sent.length < MEMBERS_IN_FLIGHT) {
      const batch = client.call("members", {
        contentId: folderId,
        files: ids.slice(at, at + MAX_BATCH_IDS),
      });
      // Awaited in turn; one that fails while an earlier one is awaited is not left unhandled.
      batch.catch(() => {});
      sent.push(batch);
      at += MAX_BATCH_IDS;
    }
    await sent.shift();
  }
}

/**
 * Writes a folder's manifest into the home, whole or not at all (a
 * temporary file renamed over it; removed if the write fails). Only the
 * write of the text goes to an I/O thread: the folder and the rename are a
 * system call each, cheaper than a hop to that thread and back on busy cores.
 */
async function writeFolderManifest(home: PeerHome, contentId: string, text: string): Promise<void> {
  const path = home.folderManifestPath(contentId);
  Deno.mkdirSync(join(home.dir, "folders"), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(temporary, text);
    Deno.renameSync(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/**
 * Tells the tracker which files a folder holds (in batches of at most
 * MAX_BATCH_IDS content ids, pipelined on one connection), then publishes
 * it, and records it in the home with its manifest.
 *
 * Given `earlier` (what the home held under the name), the home's record is
 * written while the tracker stores the batches (each costs as much as the
 * other, on its own process), and `earlier` is put back if the tracker
 * refuses; killed in between, the home holds the new folder and the tracker
 * the old (the manifest is in place before the home records the folder):
 * a publish again puts them right. Without it, the folder is
 * recorded once published.
 */
export async function announceFolder(
  home: PeerHome,
  tracker: TrackerEndpoint | TrackerClient,
  folder: DescribedFolder,
  earlier?: EarlierShare,
): Promise<{ replaced: boolean }> {
  const { share } = folder;
  const { ids } = folder;
  const announce = async (client: TrackerClient) => {
    // Sent first: the tracker stores them while this process writes the manifest and the home.
    const told = sendMembers(client, share.contentId, ids);
    told.catch(() => {});
    // Written by an I/O thread while the members batches go out.
    const written = folder.text === null
      ? null
      : writeFolderManifest(home, share.contentId, folder.text);
    written?.catch(() => {});
    let recorded = false;
    try {
      // In place before the home records the folder: a share is never recorded without it.
      await written;
      if (earlier) {
        home.addShare(share, folder.files);
        recorded = true;
      }
      await told;
      const { replaced } = await client.call("publish", {
        name: share.name,
        type: share.type,
        size: share.size,
        contentId: share.contentId,
        files: share.files,
      });
      if (!recorded) home.addShare(share, folder.files);
      return { replaced };
    } catch (error) {
      if (recorded) {
        if (earlier!.share) home.addShare(earlier!.share, earlier!.files);
        else home.removeShare(share.name);
      }
      throw error;
    }
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
  // A root (`publish /`) is a slip: it would be walked into /proc and /dev, and named "".
  if (dirname(resolve(dir)) === resolve(dir)) {
    throw new ShoalError(
      "INVALID_INPUT",
      `${resolve(dir)} is the whole file system; publish a folder inside it`,
    );
  }
  const before = home.share(name);
  const previous = before?.kind === "folder" ? home.folderFiles(name) : [];
  // The session is opened while the folder is hashed (its round trips cost as much as hashing a
  // few thousand small files); a failure to open it is reported after the hashing, as before.
  const opening = connectSession(home, tracker);
  opening.catch(() => {});
  const openedAt = performance.now();
  // Its hashing workers are ended once the folder is announced (or the publish failed).
  using workers = new DisposableStack();
  let folder: DescribedFolder;
  try {
    folder = await describeFolder(name, dir, previous, { ...options, workers });
  } catch (error) {
    opening.then(({ tracker }) => tracker.close(), () => {});
    throw error;
  }
  const session = await opening;
  const earlier = { share: before, files: previous };
  // A connection idle for long may have been dropped by the tracker: a fresh one then.
  if (session.tracker.closed || performance.now() - openedAt > SESSION_KEPT_MS) {
    session.tracker.close();
    const { replaced } = await announceFolder(home, tracker, folder, earlier);
    return { share: folder.share, replaced, skipped: folder.skipped };
  }
  try {
    const { replaced } = await announceFolder(home, session.tracker, folder, earlier);
    return { share: folder.share, replaced, skipped: folder.skipped };
  } finally {
    session.tracker.close();
  }
}
