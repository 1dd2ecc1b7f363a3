import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { quoteWord } from "../invocation.ts";
import type { Manifest } from "../protocol/messages.ts";
import { Bitfield } from "./bitfield.ts";
import type { PeerHome } from "./home.ts";
import { bytesHeld, checkPieceLayout } from "./manifest.ts";
import { fetchManifest } from "./manifest_fetch.ts";
import { PartFile } from "./part_file.ts";
import type { ServedContent } from "./catalog.ts";
import {
  type DroppedSource,
  type SourceList,
  type SourceReport,
  Swarm,
  type SwarmLimits,
  type SwarmOptions,
  type SwarmProgress,
} from "./swarm.ts";
import type { RateLimiter } from "./rate.ts";

/** How often the record of verified pieces is written while pieces arrive. */
const RECORD_EVERY_MS = 100;

/** Suffix of a download in progress; never mistaken for the finished file. */
export const PART_SUFFIX = ".shoal-part";

/** The outcome of a finished download. */
export interface DownloadSummary {
  path: string;
  contentId: string;
  manifest: Manifest;
  size: number;
  seconds: number;
  /** Bytes received over the network in this run. */
  transferred: number;
  /** Bytes already verified from an earlier, interrupted run. */
  resumed: number;
  sources: SourceReport[];
  dropped: DroppedSource[];
}

/**
 * Bounds against hostile sources, beyond the swarm's own; each has a default
 * (tests use small values).
 */
export interface DownloadLimits extends SwarmLimits {
  /** Largest piece size accepted from a manifest. @default {MAX_PIECE_BYTES} (64 MiB) */
  maxPieceBytes?: number;
  /** Sources asked for the manifest at once. @default {4} */
  manifestConcurrency?: number;
  /** Time one source has to send the manifest, in milliseconds. @default {30000} */
  manifestDeadlineMs?: number;
}

/** Options of {@link download}. */
export interface DownloadOptions {
  home: PeerHome;
  contentId: string;
  /** The published name and type, recorded so `downloads` can list it. */
  name: string;
  type: string;
  /** Where the finished file goes. */
  output: string;
  /** The listing the fetch was chosen from: the content's size must be the size it lists. */
  listing: { owner: string; size: number };
  /** Sources to start with (complete owners and partial ones), with a ticket. */
  sources: SourceList;
  /** Asks the tracker again for sources (and a fresh ticket), as sources come and go. */
  findSources: () => Promise<SourceList>;
  /** True with --insecure-plaintext; otherwise sources are reached over TLS only. */
  plaintext: boolean;
  /** Called while downloading so this peer can serve the pieces it has verified. */
  onPartial?: (content: ServedContent | null) => void;
  onProgress?: (progress: SwarmProgress) => void;
  /** Stops the download, keeping its verified pieces for a resume. */
  signal?: AbortSignal;
  limits?: DownloadLimits;
  /** The process's download budget, shared by every source's connection. @default {none} */
  downloadLimiter?: RateLimiter | null;
}

/**
 * Reads piece bodies through the process's download budget. A budget below
 * the rate a source must keep up lowers that floor (to a 64th of the budget,
 * as many sources may share it), so that a limit this peer set itself does
 * not make its sources look too slow.
 */
function paceFor(
  limiter: RateLimiter | null,
  limits: DownloadLimits,
): Pick<SwarmOptions, "pace" | "minPieceBytesPerSecond"> {
  if (!limiter) return {};
  const floor = limits.minPieceBytesPerSecond ?? 64 * 1024;
  return {
    pace: (bytes) => limiter.take(bytes),
    minPieceBytesPerSecond: Math.max(1, Math.min(floor, Math.floor(limiter.bytesPerSecond / 64))),
  };
}

/**
 * Refuses, before anything is written, a content whose manifest no honest
 * publisher makes or whose size is not the one its listing shows (say, a
 * "1000 B" file that is 512 MiB). The manifest matches its content id, so
 * every source would give the same one: the fault is the content's.
 */
function checkContent(
  manifest: Manifest,
  { name, listing, limits }: DownloadOptions,
  from: string,
): void {
  const hint = `fetch another owner's copy: \`peer.ts fetch "${name}" --from <username>\``;
  try {
    checkPieceLayout(manifest, limits?.maxPieceBytes);
  } catch (error) {
    const problem = toShoalError(error).message;
    throw new ShoalError("INTEGRITY", `refusing "${name}": ${problem} (${from})`, { hint });
  }
  if (manifest.size !== listing.size) {
    throw new ShoalError(
      "INTEGRITY",
      `refusing "${name}": ${listing.owner} lists it as ${listing.size} B, but its content is ` +
        `${manifest.size} B (${from})`,
      { hint },
    );
  }
}

/**
 * Downloads a content into `output`, from every source at once. Verified
 * pieces go into a `.shoal-part` file recorded in the home, so an interrupted
 * download resumes where it stopped; the file is renamed into place only once
 * every piece has verified and is on disk.
 *
 * @example
 * ```ts
 * const summary = await download({ home, contentId, name, type, output, sources, findSources });
 * ```
 */
export async function download(options: DownloadOptions): Promise<DownloadSummary> {
  const { home, contentId, output } = options;
  const started = performance.now();
  const record = home.download(contentId);
  const { limits } = options;
  let manifest: Manifest;
  if (record) {
    manifest = record.manifest;
    checkContent(manifest, options, "manifest kept from an earlier run");
  } else {
    const fetched = await fetchManifest(contentId, options.sources, {
      plaintext: options.plaintext,
      concurrency: limits?.manifestConcurrency,
      deadlineMs: limits?.manifestDeadlineMs,
    });
    manifest = fetched.manifest;
    checkContent(manifest, options, `manifest from ${fetched.source.owner}`);
  }
  // An earlier partial file elsewhere was moved here beforehand (adoptPartial), or names no
  // folder we know (an older version's relative path): then what it held is verified afresh here.
  const partPath = output + PART_SUFFIX;

  const part = await PartFile.open(partPath, manifest);
  const count = manifest.pieces.length;
  let have: Bitfield;
  try {
    have = record ? await part.verify(new Bitfield(count, record.have)) : new Bitfield(count);
  } catch (error) {
    await part.close();
    throw toShoalError(error);
  }
  const resumed = bytesHeld(manifest, have);
  const now = new Date().toISOString();
  home.saveDownload({
    contentId,
    name: options.name,
    type: options.type,
    partPath,
    manifest,
    have: have.bytes,
    startedAt: record?.startedAt ?? now,
    updatedAt: now,
  });

  options.onPartial?.({
    manifest,
    have,
    read: async (index, into) => {
      if (!await part.read(index, into)) {
        throw new ShoalError("NOT_FOUND", `piece ${index} is not here yet`);
      }
    },
  });
  let recordedAt = performance.now();
  const saveProgress = () => {
    home.updateDownload(contentId, have.bytes);
    recordedAt = performance.now();
  };
  const swarm = new Swarm({
    contentId,
    manifest,
    have,
    store: (index, bytes) => part.write(index, bytes),
    findSources: options.findSources,
    plaintext: options.plaintext,
    signal: options.signal,
    ...limits,
    ...paceFor(options.downloadLimiter ?? null, limits ?? {}),
    onProgress: (progress) => {
      // The record trails the disk by at most RECORD_EVERY_MS; a resume re-hashes what it claims.
      if (performance.now() - recordedAt >= RECORD_EVERY_MS) saveProgress();
      options.onProgress?.(progress);
    },
  });
  try {
    const report = await swarm.run(options.sources);
    await part.finish();
    await part.close();
    await Deno.rename(partPath, output);
    home.removeDownload(contentId);
    return {
      path: output,
      contentId,
      manifest,
      size: manifest.size,
      seconds: (performance.now() - started) / 1000,
      transferred: report.transferred,
      resumed,
      sources: report.sources,
      dropped: report.dropped,
    };
  } catch (caught) {
    saveProgress();
    await part.close();
    const error = toShoalError(caught);
    throw new ShoalError(
      error.code,
      `${error.message}; ${have.count} of ${count} pieces are kept in ${partPath}: ` +
        `run the same fetch again to resume, or \`peer.ts cancel ${quoteWord(options.name)}\``,
      { cause: error },
    );
  } finally {
    options.onPartial?.(null);
  }
}
