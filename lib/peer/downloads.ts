/**
 * The peer's unfinished downloads as `downloads` and `cancel` see them: what
 * each has verified, where its partial file is and whether it is still
 * there; and cancelling them by name.
 */
import { ShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import type { PeerHome } from "./home.ts";
import { bytesHeld } from "./manifest.ts";
import { matchingNames, spellings } from "./name_match.ts";
import { cancelDownload, type CancelledDownload, partialExists } from "./partials.ts";
import { notLoggedIn } from "./tracker_link.ts";

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
  /** Whether it is running now (in the shell's background). */
  running: boolean;
  startedAt: string;
  updatedAt: string;
}

/**
 * The unfinished downloads recorded in the home, each checked on disk;
 * `running` names the ones running now. Needs a login, as every command
 * that shows what the account fetched.
 */
export async function unfinishedDownloads(
  home: PeerHome,
  running: string[] = [],
): Promise<UnfinishedDownload[]> {
  if (!home.session()) throw notLoggedIn();
  return await Promise.all(
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
      running: running.includes(record.name),
      startedAt: record.startedAt,
      updatedAt: record.updatedAt,
    })),
  );
}

/**
 * Forgets every unfinished download named `typed` (the exact spelling, else
 * in any case, as fetch finds names) and deletes its partial file, wherever
 * it is; NOT_FOUND when there is none, INVALID_INPUT when several spellings match.
 */
export async function cancelByName(home: PeerHome, typed: string): Promise<CancelledDownload[]> {
  if (!home.session()) throw notLoggedIn();
  const matches = matchingNames(home.downloads(), typed, (record) => record.name);
  const names = spellings(matches, (record) => record.name);
  if (names.length > 1) {
    throw new ShoalError(
      "INVALID_INPUT",
      `"${typed}" matches downloads named ${names.map((n) => `"${n}"`).join(", ")}`,
      { hint: "cancel one by its exact spelling" },
    );
  }
  if (matches.length === 0) {
    throw new ShoalError(
      "NOT_FOUND",
      `no unfinished download named "${typed}"; list them with \`peer.ts downloads\``,
    );
  }
  const cancelled: CancelledDownload[] = [];
  for (const record of matches) cancelled.push(await cancelDownload(home, record.contentId));
  return cancelled;
}
