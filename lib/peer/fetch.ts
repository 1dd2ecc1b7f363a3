import { join } from "node:path";
import type { Address } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";
import type { Listing } from "../protocol/messages.ts";
import { download, type DownloadSummary } from "./downloader.ts";
import type { PeerHome } from "./home.ts";
import { announceShare, checkName, fileTypeOf } from "./shares.ts";
import { connectSession } from "./tracker_link.ts";

/** Every owner of a file with this name, online ones first. */
export async function listOwners(
  home: PeerHome,
  tracker: Address,
  name: string,
): Promise<Listing[]> {
  checkName(name);
  const { tracker: client } = await connectSession(home, tracker);
  using _ = client;
  const { files } = await client.call("lookup", { name });
  if (files.length === 0) {
    throw new ShoalError("NOT_FOUND", `"${name}" not found: nobody publishes a file by that name`);
  }
  return files;
}

/**
 * Picks a source without asking: the one `from` names, or the only online
 * content. Fails with AMBIGUOUS when online owners share different contents
 * under this name, since only a person can choose between them.
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
 * Downloads a chosen file and adds it to this peer's shares, so the fetcher
 * becomes a source too. Refuses to overwrite an existing file unless asked.
 */
export async function fetchFile(
  home: PeerHome,
  tracker: Address,
  source: Listing,
  options: {
    output?: string;
    overwrite?: boolean;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<{ summary: DownloadSummary; shared: boolean }> {
  const output = await outputPathFor(source, options.output);
  if (!options.overwrite && await Deno.lstat(output).then(() => true, () => false)) {
    throw new ShoalError("IO", `${output} already exists; use --output PATH or --force`);
  }
  const summary = await download({ source, output, onProgress: options.onProgress });
  const existing = home.share(source.name);
  if (existing && existing.contentId !== source.contentId) return { summary, shared: false };
  const stat = await Deno.stat(output);
  await announceShare(home, tracker, {
    name: source.name,
    path: await Deno.realPath(output),
    type: source.type,
    size: summary.size,
    mtimeMs: stat.mtime?.getTime() ?? 0,
    contentId: source.contentId,
    manifest: summary.manifest,
    publishedAt: new Date().toISOString(),
  });
  return { summary, shared: true };
}
