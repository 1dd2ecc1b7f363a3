/**
 * Where the partial file of an unfinished download is, and what to do with it
 * when a fetch, `downloads` or `cancel` is typed in another folder than the
 * fetch that started it. The home records each partial file by its absolute
 * path; these functions keep that record and the disk in step.
 */
import { quoteWord } from "../invocation.ts";
import { dirname, isAbsolute } from "node:path";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import type { DownloadRecord, PeerHome } from "./home.ts";

/** What became of an earlier partial file when a fetch of the same content starts. */
export type AdoptedPartial =
  | { kind: "moved"; from: string; to: string; pieces: number; total: number }
  | { kind: "vanished"; from: string };

/** Verified pieces a record claims, and the piece count of its content. */
export function piecesOf(record: DownloadRecord): { pieces: number; total: number } {
  const total = record.manifest.pieces.length;
  return { pieces: new Bitfield(total, record.have).count, total };
}

/** Whether a record's partial file is on disk; null when the record does not say where. */
export async function partialExists(record: DownloadRecord): Promise<boolean | null> {
  if (!isAbsolute(record.partPath)) return null;
  return await Deno.lstat(record.partPath).then((info) => info.isFile, () => false);
}

/**
 * Brings an earlier partial file of this content to `partPath`, where a new
 * fetch of it writes, so the fetch resumes it wherever it was typed. Returns
 * null when there is nothing to move. A partial file that cannot be moved
 * (another file system, a file already at `partPath`) is left where it is,
 * and the error says where it is and how to resume it there.
 */
export async function adoptPartial(
  home: PeerHome,
  contentId: string,
  partPath: string,
): Promise<AdoptedPartial | null> {
  const record = home.download(contentId);
  // A relative path from an older version names no folder we know: the download starts afresh.
  if (!record || record.partPath === partPath || !isAbsolute(record.partPath)) return null;
  const from = record.partPath;
  if (!await partialExists(record)) {
    // Start afresh at the new place; whatever is at the old path (if anything) is not ours.
    home.movePartial(contentId, partPath);
    return { kind: "vanished", from };
  }
  const { pieces, total } = piecesOf(record);
  const cannot = (why: string) =>
    new ShoalError(
      "IO",
      `an unfinished download of "${record.name}" (${pieces} of ${total} pieces) is in ${from}, ` +
        `and ${why}`,
      {
        hint: `resume it there with --output ${dirname(from)}, or delete it with ` +
          `\`peer.ts cancel ${quoteWord(record.name)}\``,
      },
    );
  if (await Deno.lstat(partPath).then(() => true, () => false)) {
    throw cannot(`${partPath} is in the way`);
  }
  try {
    await Deno.rename(from, partPath);
  } catch (error) {
    throw cannot(`it cannot be moved to ${partPath}: ${toShoalError(error).message}`);
  }
  home.movePartial(contentId, partPath);
  return { kind: "moved", from, to: partPath, pieces, total };
}

/** What `cancel` did with a download's partial file. */
export interface CancelledDownload {
  name: string;
  partPath: string;
  /** "deleted", "missing" (already gone), or "unknown" (a record that names no folder). */
  file: "deleted" | "missing" | "unknown";
  /**
   * A folder download: `partPath` is its output folder, whose finished files
   * stay; or (`"staged"`) a fresh fetch's staging folder, deleted whole.
   */
  folder?: boolean | "staged";
}

/** Forgets an unfinished download and deletes its partial file, wherever it is. */
export async function cancelDownload(
  home: PeerHome,
  contentId: string,
): Promise<CancelledDownload> {
  const record = home.download(contentId);
  if (!record) {
    throw new ShoalError("NOT_FOUND", "no such unfinished download; see peer.ts downloads");
  }
  let file: CancelledDownload["file"] = "unknown";
  // A relative path would be resolved against the folder `cancel` runs in: the wrong file.
  if (isAbsolute(record.partPath)) {
    file = await Deno.remove(record.partPath).then(
      () => "deleted" as const,
      (error) => {
        if (error instanceof Deno.errors.NotFound) return "missing" as const;
        throw toShoalError(error);
      },
    );
  }
  home.removeDownload(contentId);
  return { name: record.name, partPath: record.partPath, file };
}
