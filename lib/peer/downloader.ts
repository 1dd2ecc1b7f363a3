import { type Address, formatAddress, parseAddress } from "../protocol/address.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { type Listing, type Manifest, PEER_METHODS } from "../protocol/messages.ts";
import { pieceLength, sha256Hex, verifyManifest } from "./manifest.ts";
import { PEER_AGENT } from "./tracker_link.ts";

/** Requests kept in flight on one source connection, so the pipe never idles. */
const PIPELINE_DEPTH = 8;

/** Suffix of a download in progress; never mistaken for the finished file. */
export const PART_SUFFIX = ".shoal-part";

/** What one source contributed to a download. */
export interface SourceReport {
  owner: string;
  address: string;
  pieces: number;
  bytes: number;
}

/** The outcome of a finished download. */
export interface DownloadSummary {
  path: string;
  contentId: string;
  manifest: Manifest;
  size: number;
  seconds: number;
  /** Bytes received over the network in this run. */
  transferred: number;
  sources: SourceReport[];
}

/** Options of {@link download}. */
export interface DownloadOptions {
  /** The chosen source, as the tracker listed it (online, with an address). */
  source: Listing;
  /** Where the finished file goes. */
  output: string;
  /** Called after each verified piece. */
  onProgress?: (received: number, total: number) => void;
}

/**
 * Downloads a file from one peer: fetches and checks the manifest against the
 * content id, then pipelines piece requests, verifies each piece's SHA-256
 * before writing it, and renames the `.shoal-part` file into place only once
 * every piece has verified.
 *
 * @example
 * ```ts
 * const summary = await download({ source: listing, output: "plan.pdf" });
 * ```
 */
export async function download(options: DownloadOptions): Promise<DownloadSummary> {
  const { source, output } = options;
  if (!source.online || source.address === null) {
    throw new ShoalError("UNREACHABLE", `${source.owner} is offline`);
  }
  const started = performance.now();
  const address: Address = parseAddress(source.address);
  using peer = await ProtocolClient.connect(address, PEER_METHODS, { agent: PEER_AGENT });
  const { manifest } = await peer.call("manifest", { contentId: source.contentId });
  verifyManifest(manifest, source.contentId);

  const partPath = output + PART_SUFFIX;
  const report: SourceReport = {
    owner: source.owner,
    address: formatAddress(address),
    pieces: 0,
    bytes: 0,
  };
  try {
    await writeVerifiedPieces(peer, source.contentId, manifest, partPath, report, options);
    await Deno.rename(partPath, output);
  } catch (caught) {
    await Deno.remove(partPath).catch(() => {});
    const error = toShoalError(caught);
    throw new ShoalError(error.code, `download from ${source.owner} failed: ${error.message}`, {
      cause: error,
    });
  }
  return {
    path: output,
    contentId: source.contentId,
    manifest,
    size: manifest.size,
    seconds: (performance.now() - started) / 1000,
    transferred: report.bytes,
    sources: [report],
  };
}

async function writeVerifiedPieces(
  peer: ProtocolClient<typeof PEER_METHODS>,
  contentId: string,
  manifest: Manifest,
  partPath: string,
  report: SourceReport,
  options: DownloadOptions,
): Promise<void> {
  using file = await Deno.open(partPath, { write: true, create: true, truncate: true });
  const count = manifest.pieces.length;
  const inFlight: Promise<{ body: Uint8Array }>[] = [];
  let requested = 0;
  try {
    for (let index = 0; index < count; index++) {
      while (requested < count && requested < index + PIPELINE_DEPTH) {
        inFlight.push(peer.callWithBody("piece", { contentId, index: requested++ }));
      }
      const { body } = await inFlight.shift()!;
      if (
        body.length !== pieceLength(manifest, index) || sha256Hex(body) !== manifest.pieces[index]
      ) {
        throw new ShoalError("INTEGRITY", `piece ${index} failed its hash check`);
      }
      await file.seek(index * manifest.pieceSize, Deno.SeekMode.Start);
      await writeAll(file, body);
      report.pieces++;
      report.bytes += body.length;
      options.onProgress?.(report.bytes, manifest.size);
    }
  } finally {
    // After a failure, requests still in flight fail with the connection: nobody awaits them.
    for (const pending of inFlight) pending.catch(() => {});
  }
  // Nothing is renamed into place before it is on disk.
  await file.sync();
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
