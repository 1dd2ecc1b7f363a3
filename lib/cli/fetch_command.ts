/** `fetch`, `downloads` and `cancel`: choosing sources, showing progress, summing up. */
import { ShoalError } from "../protocol/errors.ts";
import type { Listing } from "../protocol/messages.ts";
import { cancelDownload, type DownloadSummary } from "../peer/downloader.ts";
import { checkOutput, fetchFile, listOwners, outputPathFor, pickSource } from "../peer/fetch.ts";
import { bytesHeld } from "../peer/manifest.ts";
import { Bitfield } from "../peer/bitfield.ts";
import { notLoggedIn } from "../peer/tracker_link.ts";
import type { PeerContext } from "./peer_context.ts";
import type { ShellHooks } from "./peer_program.ts";
import { PeerHome } from "../peer/home.ts";
import { formatSize, printJson, renderTable } from "./output.ts";
import { DownloadProgress } from "./progress.ts";
import { canAsk, chooseNumber } from "./prompt.ts";

export interface FetchFlags {
  from?: string;
  output?: string;
  force?: boolean;
  json?: boolean;
}

/** The owners of a name, numbered for the chooser. */
export function ownersTable(files: Listing[]): string {
  return renderTable(
    ["no.", "name", "type", "size", "owner", "status"],
    files.map((file, i) => [
      i + 1,
      file.name,
      file.type || "-",
      formatSize(file.size),
      file.owner,
      file.online ? "online" : "offline",
    ]),
  );
}

/** One line for a finished download: size, time, rate, and what each source gave. */
export function summaryLine(summary: DownloadSummary, name: string): string {
  const rate = summary.seconds > 0 ? summary.transferred / summary.seconds : 0;
  const sources = summary.sources.filter((s) => s.pieces > 0)
    .map((s) =>
      `${s.owner}${s.partial ? " (partial)" : ""} ${s.pieces} piece${s.pieces === 1 ? "" : "s"}`
    );
  const dropped = summary.dropped.map((d) => `${d.owner} (${d.reason})`);
  return [
    `fetched "${name}" to ${summary.path}: ${formatSize(summary.size)} in ${
      summary.seconds.toFixed(2)
    } s (${formatSize(rate)}/s)`,
    sources.length
      ? ` from ${sources.length} source${sources.length === 1 ? "" : "s"}: ${sources.join(", ")}`
      : "",
    summary.resumed > 0 ? `; ${formatSize(summary.resumed)} resumed from before` : "",
    dropped.length ? `; dropped ${dropped.join(", ")}` : "",
  ].join("");
}

/**
 * Asks which owner to fetch from, on a terminal. Only online owners are
 * offered: they come first in the table (the tracker lists them first), so
 * their numbers are 1 to the count of them. 0, the default, means every
 * source of the content; it is offered only when the online owners agree on
 * it. With nobody online there is nothing to ask: it says so.
 */
export async function askForSource(
  owners: Listing[],
  choose: typeof chooseNumber = chooseNumber,
): Promise<{ chosen: Listing; onlyChosen: boolean }> {
  const online = owners.filter((file) => file.online);
  if (online.length === 0 || owners.slice(0, online.length).some((file) => !file.online)) {
    // Nobody to offer (or a table not in the tracker's order): no question, the usual choice.
    return { chosen: pickSource(owners), onlyChosen: false };
  }
  const oneContent = new Set(online.map((f) => f.contentId)).size === 1;
  if (oneContent) console.log("0 = every online source at once");
  const number = await choose(
    "Fetch from owner no.",
    oneContent ? 0 : 1,
    online.length,
    oneContent ? 0 : 1,
  );
  if (number === 0) return { chosen: pickSource(owners), onlyChosen: false };
  return { chosen: pickSource(owners, online[number - 1].owner), onlyChosen: true };
}

/**
 * `fetch`: list the owners, choose (asking on a terminal), download with a
 * progress bar, sum up. In the shell the download runs in the background.
 */
export async function runFetch(
  { tracker, home }: PeerContext,
  name: string,
  flags: FetchFlags,
  shell?: ShellHooks,
) {
  const me = home.session()?.username.toLowerCase();
  const everyone = await listOwners(home, tracker, name);
  // Our own copy is no source: offer only the others.
  const owners = everyone.filter((file) => file.owner.toLowerCase() !== me);
  if (owners.length === 0) {
    throw new ShoalError("NOT_FOUND", `you are the only one sharing "${name}"`);
  }
  // Say so now if the file is already here, before asking anything.
  await checkOutput(await outputPathFor(owners[0], flags.output), flags.force);
  if (!flags.json) console.log(ownersTable(owners));
  const { chosen, onlyChosen } = flags.from === undefined && !flags.json && canAsk()
    ? await askForSource(owners)
    : { chosen: pickSource(owners, flags.from), onlyChosen: flags.from !== undefined };
  const options = { onlyChosen, output: flags.output, overwrite: flags.force };
  if (shell && !flags.json) {
    // The command's home closes when it returns: the background work opens its own.
    const dir = home.dir;
    shell.startBackground(chosen.name, async (signal) => {
      using own = PeerHome.open(dir);
      const { summary, shared } = await fetchFile(own, tracker, chosen, { ...options, signal });
      return summaryLine(summary, chosen.name) + (shared ? "" : " (not shared: name taken)");
    });
    console.log(`fetching "${chosen.name}" in the background; \`downloads\` shows how far it got`);
    return;
  }
  const progress = new DownloadProgress(chosen.name, !flags.json && Deno.stderr.isTerminal());
  let result;
  try {
    result = await fetchFile(home, tracker, chosen, {
      ...options,
      onProgress: (p) => progress.update(p),
    });
  } finally {
    progress.stop();
  }
  const { summary, shared } = result;
  if (flags.json) {
    const { manifest: _, ...rest } = summary;
    return printJson({ name: chosen.name, ...rest, shared, owners });
  }
  console.log(summaryLine(summary, chosen.name));
  if (!shared) console.log(`not shared: you already share another file named "${name}"`);
}

export function listDownloads(
  { home }: PeerContext,
  flags: { json?: boolean },
  running: string[] = [],
) {
  if (!home.session()) throw notLoggedIn();
  const rows = home.downloads().map((record) => {
    const have = new Bitfield(record.manifest.pieces.length, record.have);
    return {
      name: record.name,
      contentId: record.contentId,
      size: record.manifest.size,
      verified: bytesHeld(record.manifest, have),
      partPath: record.partPath,
      running: running.includes(record.name),
      startedAt: record.startedAt,
      updatedAt: record.updatedAt,
    };
  });
  if (flags.json) return printJson(rows);
  if (rows.length === 0) return console.log("no unfinished downloads");
  console.log(renderTable(
    ["no.", "name", "done", "size", "partial file", "last active"],
    rows.map((row, i) => [
      i + 1,
      row.running ? `${row.name} (running)` : row.name,
      `${row.size ? Math.floor((row.verified / row.size) * 100) : 100}%`,
      formatSize(row.size),
      row.partPath,
      row.updatedAt,
    ]),
  ));
}

export async function cancel({ home }: PeerContext, name: string) {
  if (!home.session()) throw notLoggedIn();
  const matches = home.downloads().filter((record) => record.name === name);
  if (matches.length === 0) {
    throw new ShoalError(
      "NOT_FOUND",
      `no unfinished download named "${name}"; see peer.ts downloads`,
    );
  }
  for (const record of matches) await cancelDownload(home, record.contentId);
  console.log(`cancelled "${name}" and deleted its partial file`);
}
