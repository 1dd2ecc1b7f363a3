import { dirname, join, resolve } from "node:path";
import { type Address, formatAddress } from "../protocol/address.ts";
import { distance } from "fastest-levenshtein";
import { quoteWord } from "../invocation.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { certificateClaim } from "../identity/certificate.ts";
import { FOLDER_TYPE, HEARTBEAT_MS, type Listing, type Source } from "../protocol/messages.ts";
import { download, type DownloadSummary, PART_SUFFIX } from "./downloader.ts";
import type { PeerHome, Share } from "./home.ts";
import { type AdoptedPartial, adoptPartial } from "./partials.ts";
import { FetchLock } from "./fetch_lock.ts";
import { publishCanWait } from "./pending_publish.ts";
import { PartialCatalog } from "./catalog.ts";
import { loadConfig } from "./config.ts";
import { identityOf } from "./manifest.ts";
import { PieceServer } from "./piece_server.ts";
import { DEFAULT_SERVE_HOST } from "../defaults.ts";
import { advertisedHost, peerIdentity } from "./serve.ts";
import { checkName, fileTypeOf } from "./shares.ts";
import type { SourceList, SwarmProgress } from "./swarm.ts";
import { parseRate, processBudget } from "./rate.ts";
import {
  connectSession,
  type TrackerClient,
  type TrackerEndpoint,
  trackerName,
  withSession,
} from "./tracker_link.ts";

/**
 * The owners of a file with this name (only `owner`, if given), online ones
 * first: as many as the tracker's reply carries, and how many there are in all.
 */
export async function listOwners(
  home: PeerHome,
  tracker: TrackerEndpoint,
  name: string,
  owner?: string,
): Promise<{ owners: Listing[]; total: number }> {
  checkName(name);
  const { files, total, near } = await withSession(home, tracker, async (client) => {
    const found = await client.call("lookup", { name, owner });
    // Nobody shares that name: perhaps a typo of one shared.
    const near = found.files.length === 0 && owner === undefined
      ? await nearestName(client, name)
      : null;
    return { ...found, near };
  });
  if (files.length === 0 && owner !== undefined) {
    throw new ShoalError("NOT_FOUND", `${owner} does not share "${name}"`, {
      hint: `\`peer.ts search ${quoteWord(name)}\` shows who does`,
    });
  }
  if (files.length === 0) {
    throw new ShoalError(
      "NOT_FOUND",
      `"${name}" not found: nobody publishes a file or folder by that name` +
        (near === null ? "" : `; did you mean "${near}"?`),
      {
        hint: near === null
          ? "`peer.ts search <part of the name>` lists the files and folders shared under names like it"
          : `\`peer.ts fetch ${quoteWord(near)}\` fetches that one; \`peer.ts search ${
            quoteWord(near)
          }\` shows who shares it`,
      },
    );
  }
  return { owners: files, total };
}

/** Edits (letters added, dropped or changed) a name may be from the one typed to be suggested. */
const MOST_EDITS = 2;

/**
 * The shared name closest to `name`, a likely typo of it (at most
 * {@link MOST_EDITS} letters apart, and fewer than half of it), or null:
 * looked for among the names that share its first or last three letters,
 * as `search` finds them. A search that fails suggests nothing.
 */
async function nearestName(client: TrackerClient, name: string): Promise<string | null> {
  const parts = name.length <= 3 ? [name] : [...new Set([name.slice(0, 3), name.slice(-3)])];
  const names = new Set<string>();
  try {
    for (const text of parts) {
      for (const file of (await client.call("search", { text })).files) names.add(file.name);
    }
  } catch {
    return null;
  }
  const typed = name.toLowerCase();
  let best: { name: string; edits: number } | null = null;
  for (const candidate of names) {
    const edits = distance(typed, candidate.toLowerCase());
    if (edits > MOST_EDITS || edits * 2 >= name.length) continue;
    if (!best || edits < best.edits) best = { name: candidate, edits };
  }
  return best?.name ?? null;
}

/**
 * The owners of a name other than the user logged in here (our own copy is
 * no source), as {@link listOwners} finds them; `listed` is how many the
 * tracker's reply carried, ours included. NOT_FOUND when only we share it.
 */
export async function otherOwners(
  home: PeerHome,
  tracker: TrackerEndpoint,
  name: string,
  owner?: string,
): Promise<{ owners: Listing[]; listed: number; total: number }> {
  const me = home.session()?.username.toLowerCase();
  if (owner !== undefined && owner.toLowerCase() === me) throw fromYourself(owner, name);
  const { owners: everyone, total } = await listOwners(home, tracker, name, owner);
  const owners = everyone.filter((file) => file.owner.toLowerCase() !== me);
  if (owners.length === 0) {
    const mine = home.share(everyone[0]?.name ?? name);
    throw new ShoalError(
      "NOT_FOUND",
      `you are the only one sharing "${name}"${mine ? `: yours is ${mine.path}` : ""}; ` +
        "there is nobody to fetch it from",
      { hint: "`peer.ts view` lists your shares" },
    );
  }
  return { owners, listed: everyone.length, total };
}

/** `--from` naming the user logged in here: their own copy is no source. */
function fromYourself(owner: string, name: string): ShoalError {
  return new ShoalError("INVALID_INPUT", `--from ${owner} is you: your own copy is no source`, {
    hint: `drop --from to take it from every other owner (\`peer.ts search ${
      quoteWord(name)
    }\` shows who shares it)`,
  });
}

/**
 * The other owners of a content id (a `shoal:` link), as {@link otherOwners}
 * finds them for a name.
 */
export async function otherOwnersOfContent(
  home: PeerHome,
  tracker: TrackerEndpoint,
  contentId: string,
  owner?: string,
): Promise<{ owners: Listing[]; listed: number; total: number }> {
  const me = home.session()?.username.toLowerCase();
  if (owner !== undefined && owner.toLowerCase() === me) {
    throw fromYourself(owner, `shoal:${contentId}`);
  }
  const { files, total } = await withSession(
    home,
    tracker,
    (client) => client.call("lookupContent", { contentId }),
  );
  const owners = files.filter((file) =>
    file.owner.toLowerCase() !== me &&
    (owner === undefined || file.owner.toLowerCase() === owner.toLowerCase())
  );
  if (owners.length === 0) {
    const mine = files.some((file) => file.owner.toLowerCase() === me);
    throw new ShoalError(
      "NOT_FOUND",
      mine && owner === undefined
        ? `you are the only one sharing shoal:${contentId}; there is nobody to fetch it from`
        : `nobody${mine ? " else" : ""} publishes shoal:${contentId}${
          owner === undefined ? "" : ` as ${owner}`
        }`,
      {
        hint: mine && owner === undefined
          ? "`peer.ts view` lists your shares"
          : "check the link; its owner may have changed or unpublished it since",
      },
    );
  }
  return { owners, listed: files.length, total };
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
    if (!chosen) {
      throw new ShoalError("NOT_FOUND", `${from} does not share "${name}"`, {
        hint: `drop --from to fetch from whoever shares it (\`peer.ts search ${
          quoteWord(name)
        }\` shows who does)`,
      });
    }
    if (!chosen.online) {
      throw new ShoalError("UNREACHABLE", `${chosen.owner} is offline`, {
        hint: `run it again once they serve (\`peer.ts search ${quoteWord(name)}\` shows who is ` +
          "online), or drop --from",
      });
    }
    return chosen;
  }
  const online = owners.filter((file) => file.online);
  if (online.length === 0) {
    throw new ShoalError("UNREACHABLE", `every owner of "${name}" is offline`, {
      hint: `run it again once one of them serves (\`peer.ts search ${quoteWord(name)}\` shows ` +
        "who is online)",
    });
  }
  const contents = new Set(online.map((file) => file.contentId));
  if (contents.size > 1) {
    const kinds = online.slice(0, 5).map((file) =>
      `${file.owner} (${file.type === FOLDER_TYPE ? "folder" : file.type || "file"})`
    );
    throw new ShoalError(
      "AMBIGUOUS",
      `${online.length} owners share different contents named "${name}": ${kinds.join(", ")}${
        online.length > 5 ? ", ..." : ""
      }; choose one with --from <username>`,
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
  if (info?.isDirectory) return join(output, fileName);
  // A trailing slash names a folder: one that is missing is a mistake, not a file name.
  if (/[\\/]$/.test(output)) {
    throw new ShoalError("IO", `cannot save to ${output}: no such folder`, {
      hint: `create it first (mkdir -p ${output}), or give --output a file name`,
    });
  }
  return output;
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
  // Only a folder that is not there is "does not exist"; a refusal (a folder under /proc, which
  // the narrow permissions cannot open) is reported as what it is.
  const isFolder = await Deno.stat(folder).then((info) => info.isDirectory, (error) => {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  });
  if (!isFolder) {
    throw new ShoalError("IO", `cannot save to ${output}: the folder ${folder} does not exist`, {
      hint: `create it first (mkdir -p ${folder}), or give --output an existing folder`,
    });
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
  /**
   * Where this fetch serves the pieces it has verified to other
   * downloaders, while it runs. @default {config `serve.host`, else serve's default}
   */
  serveHost?: string;
  /** Told once, when this fetch starts serving its verified pieces, where it does. */
  onServing?: (address: Address) => void;
  /** Where the piece server's warnings go. @default {console.error} */
  warn?: (line: string) => void;
  /** Told when an earlier partial file of this content is taken over (or found gone). */
  onPartial?: (partial: AdoptedPartial) => void;
  /** Download budget of the process, bytes a second (`fetch --max-download-rate`). @default {none} */
  maxDownloadRate?: number | null;
}

/** Why a fetched share is not (yet) published on the tracker. */
export interface Unpublished {
  /** The tracker, `host:port` (its addresses, comma-separated, when it has several). */
  tracker: string;
  reason: string;
  /** True when it is published once the tracker is reachable (by `serve` or any command). */
  pending: boolean;
}

/** The outcome of {@link fetchFile}. */
export interface FetchResult {
  summary: DownloadSummary;
  /** Whether the file joined this peer's shares (not when another file has its name). */
  shared: boolean;
  /** Set when the tracker could not be told about the new share. */
  unpublished: Unpublished | null;
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
): Promise<FetchResult> {
  // Absolute, so the download record means this file from any folder.
  const output = resolve(await outputPathFor(chosen, options.output));
  await checkOutput(output, options.overwrite);
  // Held until the fetch ends: a second fetch of this file from this home (which would take its
  // partial file over) stops here, and `cancel` does not delete the partial file under it.
  using _lock = FetchLock.acquire(home, chosen.contentId, chosen.name);
  let { tracker: client, username } = await connectSession(home, tracker);
  const contentId = chosen.contentId;
  const isUsable = (source: Source) =>
    source.owner.toLowerCase() !== username.toLowerCase() &&
    (!options.onlyChosen || source.owner === chosen.owner);
  /** Lists this download as a partial source on the connection; set once it serves. */
  let relist = (_: TrackerClient) => Promise.resolve();
  const askSources = async (): Promise<SourceList> => {
    // Pinned to one owner, ask for that owner only: a long list may not reach it.
    const owner = options.onlyChosen ? chosen.owner : undefined;
    const { sources, ticket } = await client.call("sources", { contentId, owner });
    return { sources: sources.filter(isUsable), ticket };
  };
  const findSources = async (): Promise<SourceList> => {
    try {
      return await askSources();
    } catch (caught) {
      if (!client.closed) throw caught;
      // The tracker went away: its other addresses (or it, back), with the same session.
      const fresh = await connectSession(home, tracker, { lost: client.address });
      client.close();
      client = fresh.tracker;
      await relist(client);
      return await askSources();
    }
  };

  // While downloading, this peer serves the pieces of this content it has verified (a partial
  // source): only those, only while the fetch runs, and only where `serve` would listen.
  const partials = new PartialCatalog();
  const identity = await peerIdentity(home, tracker);
  const config = loadConfig(home.dir);
  const uploadRate = config["serve.upload-rate"];
  const server = new PieceServer(partials, {
    username: () => username,
    tls: identity,
    warn: options.warn,
    // The process's uploads share serve's budget and slots, as set in the config.
    uploadLimiter: processBudget("upload", uploadRate ? parseRate(String(uploadRate)) : null),
    uploadSlots: config["serve.upload-slots"] === undefined
      ? undefined
      : Number(config["serve.upload-slots"]),
  });
  const heartbeat = setInterval(() => client.call("heartbeat", {}).catch(() => {}), HEARTBEAT_MS);
  try {
    const host = options.serveHost ?? String(config["serve.host"] ?? DEFAULT_SERVE_HOST);
    const address = await server.listen({ host, port: 0 });
    const configured = config["serve.advertise"];
    const advertise = advertisedHost(
      configured === undefined ? undefined : String(configured),
      host,
      address,
    );
    // Serving our pieces to others is a favour: without the tracker the download goes on alone.
    relist = (on) =>
      on.call("downloading", {
        contentId,
        host: advertise,
        port: address.port,
        ...certificateClaim(identity, username),
      }).then(({ ticketKey }) => server.trustTicketKey(ticketKey), () => {});
    await relist(client);
    options.onServing?.(address);
    const sources = await findSources();
    const adopted = await adoptPartial(home, contentId, output + PART_SUFFIX);
    if (adopted) options.onPartial?.(adopted);
    const summary = await download({
      home,
      contentId,
      name: chosen.name,
      type: chosen.type,
      output,
      listing: chosen,
      sources,
      findSources,
      plaintext: tracker.plaintext,
      onPartial: (content) => partials.set(contentId, content),
      onProgress: options.onProgress,
      signal: options.signal,
      downloadLimiter: processBudget("download", options.maxDownloadRate),
    });
    const existing = home.share(chosen.name);
    if (existing && existing.contentId !== contentId) {
      return { summary, shared: false, unpublished: null };
    }
    const path = await Deno.realPath(output);
    const { mtimeMs, fileId } = identityOf(await Deno.lstat(path));
    const share: Share = {
      name: chosen.name,
      path,
      type: chosen.type,
      size: summary.size,
      mtimeMs,
      fileId,
      contentId,
      manifest: summary.manifest,
      publishedAt: new Date().toISOString(),
    };
    // Shared here first: the download is done and verified whatever the tracker says.
    home.addShare(share);
    return {
      summary,
      shared: true,
      unpublished: await publishFetched(home, tracker, client, share),
    };
  } finally {
    clearInterval(heartbeat);
    await server.close();
    client.close();
  }
}

/**
 * Tells the tracker about a fetched share. The tracker may have gone away
 * during the download: then once more on a fresh connection, and if it is
 * still unreachable (or the session needs a new login) the share is kept
 * pending in the home, to be published when `serve` or any command next
 * reaches it.
 */
async function publishFetched(
  home: PeerHome,
  tracker: TrackerEndpoint,
  client: TrackerClient,
  share: Share,
): Promise<Unpublished | null> {
  const params = {
    name: share.name,
    type: share.type,
    size: share.size,
    contentId: share.contentId,
  };
  try {
    await client.call("publish", params);
    return null;
  } catch {
    // The download's connection may be gone with the tracker that held it: try a fresh one.
  }
  try {
    await withSession(home, tracker, (fresh) => fresh.call("publish", params));
    return null;
  } catch (caught) {
    const error = toShoalError(caught);
    const pending = publishCanWait(error.code);
    if (pending) {
      home.addPendingPublish({
        // Under the first address: any of the tracker's addresses publishes it (publishPending).
        tracker: formatAddress(tracker.addresses[0]),
        name: share.name,
        contentId: share.contentId,
        since: new Date().toISOString(),
        reason: error.message,
      });
    }
    return { tracker: trackerName(tracker), reason: error.message, pending };
  }
}
