/**
 * The peer's unfinished downloads as `downloads` and `cancel` see them: what
 * each has verified, where its partial file is and whether it is still
 * there; and cancelling them by name.
 */
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import type { FolderDownloadRecord, PeerHome } from "./home.ts";
import { PART_SUFFIX } from "./downloader.ts";
import { parseFolderManifest } from "./folder_manifest.ts";
import { resolveInside, unfinishedFolderPlace } from "./folder_paths.ts";
import { bytesHeld } from "./manifest.ts";
import { matchingNames, spellings } from "./name_match.ts";
import { cancelDownload, type CancelledDownload, partialExists } from "./partials.ts";
import { notLoggedIn } from "./tracker_link.ts";
import { FetchLock } from "./fetch_lock.ts";
import { delay } from "../async/delay.ts";

/** One unfinished download. */
export interface UnfinishedDownload {
  name: string;
  contentId: string;
  size: number;
  /** Bytes in verified pieces. */
  verified: number;
  /** The partial file's absolute path (relative when an older version recorded it). */
  partPath: string;
  /** False when the partial file is gone; null when the record names no folder. */
  onDisk: boolean | null;
  /** Whether it is running now (in the shell's background, or a fetch in another process). */
  running: boolean;
  /**
   * A folder download: `partPath` is the folder the tree is written under
   * (`OUTPUT.shoal-part` until a fresh fetch's folder is whole).
   */
  folder: boolean;
  startedAt: string;
  updatedAt: string;
}

/**
 * The unfinished downloads recorded in the home, each checked on disk;
 * `running` names the ones running now in the shell's background (one a
 * fetch in another process runs counts as running too). Needs a login, as every command
 * that shows what the account fetched.
 */
export async function unfinishedDownloads(
  home: PeerHome,
  running: string[] = [],
): Promise<UnfinishedDownload[]> {
  if (!home.session()) throw notLoggedIn();
  const folders = await Promise.all(
    home.folderDownloads().map(async (record) => ({
      name: record.name,
      contentId: record.contentId,
      size: record.size,
      verified: Math.min(record.doneBytes, record.size),
      // A fresh fetch's files are in its staging folder until the whole folder is there.
      partPath: unfinishedFolderPlace(record),
      onDisk: await Deno.stat(unfinishedFolderPlace(record))
        .then((info) => info.isDirectory, () => false),
      running: running.includes(record.name) || FetchLock.isHeld(home, record.contentId),
      startedAt: record.startedAt,
      updatedAt: record.updatedAt,
      folder: true,
    })),
  );
  const files = await Promise.all(
    home.downloads().map(async (record) => ({
      name: record.name,
      contentId: record.contentId,
      size: record.manifest.size,
      verified: bytesHeld(
        record.manifest,
        new Bitfield(record.manifest.pieces.length, record.have),
      ),
      partPath: record.partPath,
      onDisk: await partialExists(record),
      running: running.includes(record.name) || FetchLock.isHeld(home, record.contentId),
      startedAt: record.startedAt,
      updatedAt: record.updatedAt,
      folder: false,
    })),
  );
  return [...files, ...folders];
}

/**
 * Forgets every unfinished download named `typed` (the exact spelling, else
 * in any case, as fetch finds names) and deletes its partial file, wherever
 * it is; NOT_FOUND when there is none, INVALID_INPUT when several spellings match.
 */
export async function cancelByName(
  home: PeerHome,
  typed: string,
  { patienceMs = 0 }: { patienceMs?: number } = {},
): Promise<CancelledDownload[]> {
  if (!home.session()) throw notLoggedIn();
  const matches = matchingNames(home.downloads(), typed, (record) => record.name);
  const folders = matchingNames(home.folderDownloads(), typed, (record) => record.name);
  const names = spellings([...matches, ...folders], (record) => record.name);
  if (names.length > 1) {
    throw new ShoalError(
      "INVALID_INPUT",
      `"${typed}" matches downloads named ${names.map((n) => `"${n}"`).join(", ")}`,
      { hint: "cancel one by its exact spelling" },
    );
  }
  if (matches.length === 0 && folders.length === 0) {
    throw new ShoalError(
      "NOT_FOUND",
      `no unfinished download named "${typed}"; list them with \`peer.ts downloads\``,
    );
  }
  // A fetch running now (another terminal's) would go on writing into what is deleted, and end
  // in an error about a file gone missing: it is stopped first, by the user. The lock is held
  // until the deletion is done, so a fetch starting meanwhile is refused rather than let write.
  const locks: FetchLock[] = [];
  try {
    const names = new Map(
      [...matches, ...folders].map((record) => [record.contentId, record.name]),
    );
    for (const [contentId, name] of names) {
      locks.push(await lockWhenNotFetched(home, contentId, name, patienceMs));
    }
    const cancelled: CancelledDownload[] = [];
    for (const record of matches) cancelled.push(await cancelDownload(home, record.contentId));
    for (const record of folders) cancelled.push(await cancelFolderDownload(home, record));
    return cancelled;
  } finally {
    for (const lock of locks) lock.release();
  }
}

/**
 * Forgets a folder download and deletes its partial files (the `.shoal-part`
 * of each file not yet complete; the files already complete stay), or the
 * staging folder of a fresh fetch (none of it was in place yet).
 */
async function cancelFolderDownload(
  home: PeerHome,
  record: FolderDownloadRecord,
): Promise<CancelledDownload> {
  const place = unfinishedFolderPlace(record);
  let found = false;
  if (record.staged) {
    // A fresh fetch's files are all in the staging folder it made, none in place yet: it goes
    // whole. Only a folder the record says this fetch made: never one beside an output it wrote into.
    if ((await Deno.lstat(place).catch(() => null))?.isDirectory) {
      await Deno.remove(place, { recursive: true }).catch((error) => {
        const { message } = toShoalError(error);
        throw new ShoalError("IO", `could not delete ${place}: ${message}`, {
          hint: "the download is still recorded: fix that and cancel it again",
        });
      });
      found = true;
    }
  } else {
    const text = await Deno.readFile(home.folderManifestPath(record.contentId)).catch(() => null);
    const manifest = text && parseFolderManifest(text, record.contentId, "this peer's home");
    for (const file of manifest ? manifest.files : []) {
      // Only under the recorded output, through no link: resolveInside refuses any.
      const path = await resolveInside(record.output, file.path).catch(() => null);
      if (!path) continue;
      await Deno.remove(path + PART_SUFFIX).then(() => found = true, () => {});
    }
  }
  home.removeFolderDownload(record.contentId);
  if (!home.folderByContent(record.contentId)) {
    await Deno.remove(home.folderManifestPath(record.contentId)).catch(() => {});
  }
  return {
    name: record.name,
    partPath: place,
    file: found ? "deleted" : "missing",
    folder: record.staged ? "staged" : true,
  };
}

/**
 * Takes the fetch lock of `contentId`, waiting up to `patienceMs` (a
 * download the shell paused a moment ago is still letting go) for no fetch
 * of it to run from this home; else fails with BUSY naming the process that runs it.
 */
async function lockWhenNotFetched(
  home: PeerHome,
  contentId: string,
  name: string,
  patienceMs: number,
): Promise<FetchLock> {
  const tries = Math.max(1, Math.ceil(patienceMs / 50));
  for (let i = 1;; i++) {
    try {
      return FetchLock.acquire(home, contentId, name);
    } catch (error) {
      if (!(error instanceof ShoalError) || error.code !== "BUSY") throw error;
      if (i >= tries) {
        throw new ShoalError(
          "BUSY",
          `"${name}" is being fetched right now (${FetchLock.holder(home, contentId)}); ` +
            "stop that fetch (Ctrl-C, or `pause` in the shell), then cancel it",
        );
      }
      await delay(50);
    }
  }
}
