import { dirname, join } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { HEARTBEAT_MS, type Listing, type Source } from "../protocol/messages.ts";
import { download, type DownloadSummary } from "./downloader.ts";
import type { PeerHome } from "./home.ts";
import { combineCatalogs, PartialCatalog } from "./catalog.ts";
import { PieceServer } from "./piece_server.ts";
import { ShareCatalog } from "./share_catalog.ts";
import { peerIdentity } from "./serve.ts";
import type { SourceList } from "./swarm.ts";
import { checkName, fileTypeOf } from "./shares.ts";
import type { SwarmProgress } from "./swarm.ts";
import { connectSession, type TrackerEndpoint, withSession } from "./tracker_link.ts";

/** Every owner of a file with this name, online ones first. */
export async function listOwners(
  home: PeerHome,
  tracker: TrackerEndpoint,
  name: string,
): Promise<Listing[]> {
  checkName(name);
  const { files } = await withSession(home, tracker, (client) => client.call("lookup", { name }));
  if (files.length === 0) {
    throw new ShoalError("NOT_FOUND", `"${name}" not found: nobody publishes a file by that name`);
  }
  return files;
}

/**
 * Picks what to fetch without asking: the one `from` names, or the only
 * online content. Fails with AMBIGUOUS when online owners share different
 * contents under this name, since only a person can choose between them.
 */
export function pickSource(owners: Listing[], from?: string): Listing {
  const name = owners[0]?.name ?? "";
  if (from !== undefined) {
    const chosen = owners.find((file) => file.owner.toLowerCase() === from.toLowerCase());
    if (!chosen) throw new ShoalError("NOT_FOUND", `${from} does not share "${name}"`);
    if (!chosen.online) throw new ShoalError("UNREACHABLE", `${chosen.owner} is offline`);
    return chosen;
  }
  const online = owners.filter((file) => file.online);
  if (online.length === 0) {
    throw new ShoalError("UNREACHABLE", `every owner of "${name}" is offline`);
  }
  const contents = new Set(online.map((file) => file.contentId));
  if (contents.size > 1) {
    throw new ShoalError(
      "AMBIGUOUS",
      `${online.length} owners share different files named "${name}"; choose one with --from <username>`,
    );
  }
  return online[0];
}

/**
 * Where a fetched file goes: `output` (a file, or a folder to put it in), by
 * default the current folder; the published name, plus the type's extension
 * when the name has none (`plan` → `plan.pdf`).
 */
export async function outputPathFor(listing: Listing, output?: string): Promise<string> {
  let fileName = checkName(listing.name);
  if (fileTypeOf(fileName) === "" && listing.type !== "") fileName += `.${listing.type}`;
  if (output === undefined) return fileName;
  const info = await Deno.stat(output).catch(() => null);
  return info?.isDirectory ? join(output, fileName) : output;
}

/**
 * Refuses an output path that exists (unless overwriting) or whose folder
 * does not, before any byte is fetched.
 */
export async function checkOutput(output: string, overwrite = false): Promise<void> {
  if (!overwrite && await Deno.lstat(output).then(() => true, () => false)) {
    throw new ShoalError("IO", `${output} already exists; use --output PATH or --force`);
  }
  const folder = dirname(output);
  if (!await Deno.stat(folder).then((info) => info.isDirectory, () => false)) {
    throw new ShoalError("IO", `cannot save to ${output}: the folder ${folder} does not exist`);
  }
}

/** Options of {@link fetchFile}. */
export interface FetchOptions {
  /** Take the bytes only from this listing's owner, instead of from every source. */
  onlyChosen?: boolean;
  output?: string;
  overwrite?: boolean;
  onProgress?: (progress: SwarmProgress) => void;
  /** Stops the download, keeping its verified pieces for a resume. */
  signal?: AbortSignal;
}

/**
 * Downloads a chosen file, from every online source of its content unless
 * pinned to the chosen owner, serving its verified pieces to other
 * downloaders meanwhile. The finished file joins this peer's shares, so the
 * fetcher becomes a source too. Refuses to overwrite a file unless asked.
 */
export async function fetchFile(
  home: PeerHome,
  tracker: TrackerEndpoint,
  chosen: Listing,
  options: FetchOptions = {},
): Promise<{ summary: DownloadSummary; shared: boolean }> {
  const output = await outputPathFor(chosen, options.output);
  await checkOutput(output, options.overwrite);
  const { tracker: client, username } = await connectSession(home, tracker);
  const contentId = chosen.contentId;
  const isUsable = (source: Source) =>
    source.owner.toLowerCase() !== username.toLowerCase() &&
    (!options.onlyChosen || source.owner === chosen.owner);
  const findSources = async (): Promise<SourceList> => {
    const { sources, ticket } = await client.call("sources", { contentId });
    return { sources: sources.filter(isUsable), ticket };
  };

  // While downloading, this peer serves the pieces it has verified (a partial source).
  const partials = new PartialCatalog();
  const identity = await peerIdentity(home, tracker);
  const server = new PieceServer(combineCatalogs(partials, new ShareCatalog(home)), {
    username: () => username,
    tls: identity,
  });
  const heartbeat = setInterval(() => client.call("heartbeat", {}).catch(() => {}), HEARTBEAT_MS);
  try {
    const { port } = server.listen({ host: "0.0.0.0", port: 0 });
    const { ticketKey } = await client.call("downloading", {
      contentId,
      port,
      certificate: identity?.certificate,
    });
    await server.trustTicketKey(ticketKey);
    const summary = await download({
      home,
      contentId,
      name: chosen.name,
      type: chosen.type,
      output,
      listing: chosen,
      sources: await findSources(),
      findSources,
      plaintext: tracker.plaintext,
      onPartial: (content) => partials.set(contentId, content),
      onProgress: options.onProgress,
      signal: options.signal,
    });
    const existing = home.share(chosen.name);
    if (existing && existing.contentId !== contentId) return { summary, shared: false };
    const stat = await Deno.stat(output);
    const share = {
      name: chosen.name,
      path: await Deno.realPath(output),
      type: chosen.type,
      size: summary.size,
      mtimeMs: stat.mtime?.getTime() ?? 0,
      contentId,
      manifest: summary.manifest,
      publishedAt: new Date().toISOString(),
    };
    await client.call("publish", {
      name: share.name,
      type: share.type,
      size: share.size,
      contentId,
    });
    home.addShare(share);
    return { summary, shared: true };
  } finally {
    clearInterval(heartbeat);
    await server.close();
    client.close();
  }
}
