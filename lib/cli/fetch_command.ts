/** `fetch`, `downloads` and `cancel`: choosing sources, showing progress, summing up. */
import { formatAddress } from "../protocol/address.ts";
import { isAbsolute, relative, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import type { Listing } from "../protocol/messages.ts";
import type { DownloadSummary } from "../peer/downloader.ts";
import {
  checkOutput,
  fetchFile,
  type FetchResult,
  otherOwners,
  otherOwnersOfContent,
  outputPathFor,
  pickSource,
  type Unpublished,
} from "../peer/fetch.ts";
import { cancelByName, unfinishedDownloads } from "../peer/downloads.ts";
import { type AdoptedPartial, piecesOf } from "../peer/partials.ts";
import { parseRateFlag, type PeerContext } from "./peer_context.ts";
import type { ShellHooks } from "./shell_hooks.ts";
import { PeerHome } from "../peer/home.ts";
import { escapeForTerminal, formatSize, plural, printJson, renderTable } from "./output.ts";
import { contentIdOfLink, runFolderFetch } from "./folder_commands.ts";
import { checkFolderOutput, folderOutput } from "../peer/folder_fetch.ts";
import { FetchLock } from "../peer/fetch_lock.ts";
import { listenForInterrupts } from "./interrupts.ts";
import { FOLDER_TYPE } from "../protocol/messages.ts";
import { reportError } from "./errors.ts";
import { DownloadProgress } from "./progress.ts";
import { canAsk, chooseNumber } from "./prompt.ts";
import { asTyped, quoteWord, quoteWords, splitGlobals } from "../invocation.ts";

export interface FetchFlags {
  from?: string;
  output?: string;
  force?: boolean;
  json?: boolean;
  maxDownloadRate?: string;
  /** Globs of a folder's paths to fetch (repeatable). */
  only?: string[];
}

/** The owners of a name, numbered for the chooser. */
export function ownersTable(files: Listing[]): string {
  return renderTable(
    ["no.", "name", "type", "size", "owner", "status"],
    files.map((file, i) => [
      i + 1,
      file.name,
      file.type || "-",
      file.type === FOLDER_TYPE
        ? `${formatSize(file.size)} (${plural(file.files, "file")})`
        : formatSize(file.size),
      file.owner,
      file.online ? "online" : "offline",
    ]),
  );
}

/** What to say under a list the tracker cut short, or null if it is whole. */
export function truncationNote(shown: number, total: number, advice: string): string | null {
  if (total <= shown) return null;
  return `showing ${shown.toLocaleString("en-US")} of ${total.toLocaleString("en-US")}; ${advice}`;
}

/** A path as a person reads it: relative when under the current folder, else absolute. */
function shownPath(path: string): string {
  const inside = relative(Deno.cwd(), path);
  return inside && !inside.startsWith("..") && !isAbsolute(inside) ? inside : path;
}

/** One line for a finished download: size, time, rate, and what each source gave. */
export function summaryLine(summary: DownloadSummary, name: string): string {
  const rate = summary.seconds > 0 ? summary.transferred / summary.seconds : 0;
  const sources = summary.sources.filter((s) => s.pieces > 0)
    .map((s) =>
      `${s.owner}${s.partial ? " (partial)" : ""} ${s.pieces} piece${s.pieces === 1 ? "" : "s"}`
    );
  const dropped = summary.dropped.map((d) => `${d.owner} (${d.reason})`);
  // A dropped source's reason is its own error text: escaped, like all the line.
  return escapeForTerminal([
    `fetched "${name}" to ${shownPath(summary.path)}: ${formatSize(summary.size)} in ${
      summary.seconds.toFixed(2)
    } s (${formatSize(rate)}/s)`,
    sources.length
      ? ` from ${sources.length} source${sources.length === 1 ? "" : "s"}: ${sources.join(", ")}`
      : "",
    summary.resumed > 0 ? `; ${formatSize(summary.resumed)} resumed from before` : "",
    dropped.length ? `; dropped ${dropped.join(", ")}` : "",
  ].join(""));
}

/** What a finished fetch adds about sharing: nothing when shared and published. */
export function sharingNote({ shared, unpublished }: FetchResult, name: string): string {
  if (!shared) return `; not shared: you already share another file named "${name}"`;
  return unpublished ? `; ${unpublishedNote(unpublished)}` : "";
}

function unpublishedNote({ tracker, reason, pending }: Unpublished): string {
  if (!pending) {
    return `the tracker at ${tracker} did not take it (${reason}), so it is not published`;
  }
  return `the tracker at ${tracker} is unreachable, so it will be published there ` +
    "when `peer.ts serve` (or any other command) next connects";
}

/** One line for an earlier partial file a fetch took over, or found gone. */
function partialNote(partial: AdoptedPartial, name: string): string {
  return partial.kind === "moved"
    ? `resuming "${name}" from ${partial.from} (${partial.pieces} of ${partial.total} pieces), ` +
      `moved to ${partial.to}`
    : `the partial file of "${name}" (${partial.from}) is gone; starting over`;
}

/**
 * The command that resumes an interrupted fetch: the one typed, when it was
 * typed on the command line; rebuilt from the options in the shell.
 */
function resumeCommand(name: string, flags: FetchFlags, from: string | undefined, shell: boolean) {
  // As typed on the command line; rebuilt in the shell (and where the arguments are not this
  // process's, as when a test runs the program in process), `peer.ts` only outside the shell.
  const typed = splitGlobals(Deno.args).rest;
  if (!shell && typed[0] === "fetch") return `peer.ts ${quoteWords(typed)}`;
  return (shell ? "" : "peer.ts ") + quoteWords([
    "fetch",
    name,
    ...(from === undefined ? [] : ["--from", from]),
    ...(flags.output === undefined ? [] : ["--output", flags.output]),
    ...(flags.force ? ["--force"] : []),
    ...(flags.json ? ["--json"] : []),
    ...(flags.only ?? []).flatMap((glob) => ["--only", glob]),
    ...(flags.maxDownloadRate === undefined ? [] : ["--max-download-rate", flags.maxDownloadRate]),
  ]);
}

/** The error a fetch stopped by Ctrl-C (or SIGTERM) ends with: what is kept, how to resume. */
function interruption(home: PeerHome, chosen: Listing, command: string): ShoalError {
  const record = home.download(chosen.contentId);
  if (!record) {
    return new ShoalError(
      "CANCELLED",
      `interrupted before any piece was kept; run \`${command}\` to start again`,
    );
  }
  const { pieces, total } = piecesOf(record);
  return new ShoalError(
    "CANCELLED",
    `interrupted: ${pieces} of ${total} pieces kept in ${record.partPath}; ` +
      `run \`${command}\` to resume`,
    { hint: `\`peer.ts cancel ${quoteWord(record.name)}\` deletes them` },
  );
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
 * Runs the choice of a source; where nobody else is online but you share
 * the file yourself, "every owner is offline" would leave you wondering why
 * your own serving copy does not count: the error says so.
 */
async function withOwnCopyNoted<T>(
  mine: { name: string; path: string } | null,
  choose: () => Promise<T>,
): Promise<T> {
  try {
    return await choose();
  } catch (error) {
    if (!mine || !(error instanceof ShoalError) || error.code !== "UNREACHABLE") throw error;
    throw new ShoalError(
      "UNREACHABLE",
      `every other owner of "${mine.name}" is offline; you share it yourself ` +
        `(yours is ${mine.path}), and your own copy is no source`,
      { hint: error.hint },
    );
  }
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
  const maxDownloadRate = parseRateFlag("max-download-rate", flags.maxDownloadRate);
  // With --from, ask for that owner only: a long list may not reach it.
  const link = contentIdOfLink(name);
  const found = link
    ? await otherOwnersOfContent(home, tracker, link, flags.from)
    : await otherOwners(home, tracker, name, flags.from);
  const { listed, total } = found;
  // --only is for folders: a file of the same name by someone else is not a choice.
  const folders = found.owners.filter((file) => file.type === FOLDER_TYPE);
  const owners = flags.only?.length && folders.length > 0 ? folders : found.owners;
  const folder = owners[0].type === FOLDER_TYPE;
  if (!folder && flags.only?.length) {
    throw new ShoalError("INVALID_INPUT", `"${owners[0].name}" is a file: --only is for folders`);
  }
  // Say so now if the file is already here, before asking anything.
  if (!folder) {
    const output = await outputPathFor(owners[0], flags.output);
    // The file in the way is your own copy of it (fetched before, or yours): nothing to fetch.
    const have = flags.force ? null : home.shareByContent(owners[0].contentId);
    const there = have && resolve(have.path) === resolve(output) &&
      await Deno.lstat(output).then(() => true, () => false);
    if (have && there) {
      throw new ShoalError(
        "IO",
        `${output} already exists and is "${owners[0].name}": you share it as ` +
          `"${have.name}", so there is nothing to fetch`,
        { hint: "`peer.ts view` lists your shares" },
      );
    }
    await checkOutput(output, flags.force);
    FetchLock.check(home, owners[0].contentId, owners[0].name);
  } else {
    const output = folderOutput(owners[0], flags.output);
    FetchLock.check(home, owners[0].contentId, owners[0].name);
    await checkFolderOutput(home, owners[0].contentId, output, flags.force);
  }
  if (!flags.json) {
    console.log(ownersTable(owners));
    const note = truncationNote(listed, total, "choose one with --from <username>");
    if (note) console.log(note);
  }
  // Your own copy is no source, and not in the table: with the others offline, say so.
  const mine = listed > found.owners.length ? home.share(owners[0].name) : null;
  const { chosen, onlyChosen } = await withOwnCopyNoted(
    mine && flags.from === undefined ? { name: owners[0].name, path: mine.path } : null,
    () =>
      flags.from === undefined && !flags.json && canAsk() ? askForSource(owners) : Promise.resolve({
        chosen: pickSource(owners, flags.from),
        onlyChosen: flags.from !== undefined,
      }),
  );
  if (chosen.type === FOLDER_TYPE) {
    const resume = resumeCommand(
      chosen.name,
      flags,
      onlyChosen ? chosen.owner : undefined,
      !!shell,
    );
    return await runFolderFetch({ tracker, home }, chosen, onlyChosen, flags, resume, shell);
  }
  const onPartial = (partial: AdoptedPartial) => console.error(partialNote(partial, chosen.name));
  const options = {
    onlyChosen,
    output: flags.output,
    overwrite: flags.force,
    onPartial,
    maxDownloadRate,
  };
  const command = resumeCommand(chosen.name, flags, onlyChosen ? chosen.owner : undefined, !!shell);
  if (shell && !flags.json) {
    // The command's home closes when it returns: the background work opens its own.
    const dir = home.dir;
    shell.startBackground(chosen.name, async (signal) => {
      using own = PeerHome.open(dir);
      const result = await fetchFile(own, tracker, chosen, {
        ...options,
        signal,
        warn: (line) => console.error(escapeForTerminal(line)),
      }).catch((error) => {
        // Paused: said as a Ctrl-C outside the shell says it.
        if (signal.aborted) throw interruption(own, chosen, command);
        throw error;
      });
      return asTyped(summaryLine(result.summary, chosen.name) + sharingNote(result, chosen.name));
    });
    console.log(
      `fetching "${
        escapeForTerminal(chosen.name)
      }" in the background; \`downloads\` shows how far it got`,
    );
    return;
  }
  // The name is the tracker's: escaped, as it is drawn over and over.
  const progress = new DownloadProgress(
    escapeForTerminal(chosen.name),
    !flags.json && Deno.stderr.isTerminal(),
  );
  const result = await untilInterrupted(
    (signal) =>
      fetchFile(home, tracker, chosen, {
        ...options,
        signal,
        onProgress: (p) => progress.update(p),
        onServing: (address) =>
          console.error(
            `serving the pieces you have to other downloaders on ${
              formatAddress(address)
            } while this fetch runs`,
          ),
        warn: (line) => console.error(escapeForTerminal(line)),
      }),
    () => interruption(home, chosen, command),
    progress,
    shell?.signal,
  );
  const { summary, shared, unpublished } = result;
  if (flags.json) {
    const { manifest: _, ...rest } = summary;
    return printJson({
      name: chosen.name,
      ...rest,
      shared,
      published: shared && !unpublished,
      publishPending: unpublished?.pending ?? false,
      owners,
    });
  }
  console.log(asTyped(summaryLine(summary, chosen.name) + sharingNote(result, chosen.name)));
}

/**
 * Runs a download with a progress bar until it ends, or until Ctrl-C or
 * SIGTERM stops it: then the verified pieces stay for a resume and the error
 * says how many and how to resume. A second Ctrl-C leaves at once. The
 * terminal is given back as it was (cursor shown, raw mode off) on every
 * path. In the shell, which owns Ctrl-C, its `signal` stops the download
 * instead, and the shell stays.
 */
async function untilInterrupted<V>(
  work: (signal: AbortSignal) => Promise<V>,
  interrupted: () => ShoalError,
  progress: DownloadProgress,
  shellSignal?: AbortSignal,
): Promise<V> {
  const stop = new AbortController();
  const onSignal = () => {
    if (!stop.signal.aborted) return stop.abort();
    progress.stop();
    Deno.exit(reportError(interrupted()));
  };
  // In the shell, which owns Ctrl-C, its signal; else the process's, for as long as this runs.
  const listeners = shellSignal ? null : listenForInterrupts(onSignal);
  const ended = new AbortController();
  shellSignal?.addEventListener("abort", () => stop.abort(), { once: true, signal: ended.signal });
  if (shellSignal?.aborted) stop.abort();
  try {
    return await work(stop.signal);
  } catch (error) {
    if (stop.signal.aborted) throw interrupted();
    throw error;
  } finally {
    ended.abort();
    listeners?.stop(stop.signal.aborted);
    progress.stop();
  }
}

/**
 * `downloads`: the unfinished downloads, each with the absolute path of its
 * partial file and whether that file is still on disk.
 */
export async function listDownloads(
  { home }: PeerContext,
  flags: { json?: boolean },
  running: string[] = [],
) {
  const rows = await unfinishedDownloads(home, running);
  if (flags.json) return printJson(rows);
  // A background fetch has no record until its manifest arrives: it is running all the same.
  const starting = running.filter((name) => !rows.some((row) => row.name === name));
  for (const name of starting) {
    console.log(`"${escapeForTerminal(name)}" is starting (no piece yet); \`pause\` stops it`);
  }
  if (rows.length === 0) {
    if (starting.length === 0) console.log("no unfinished downloads");
    return;
  }
  const where = (onDisk: boolean | null) =>
    onDisk ? "" : onDisk === false ? " (missing)" : " (folder unknown)";
  console.log(renderTable(
    ["no.", "name", "done", "size", "partial file", "last active"],
    rows.map((row, i) => [
      i + 1,
      row.running ? `${row.name} (running)` : row.name,
      `${row.size ? Math.floor((row.verified / row.size) * 100) : 100}%`,
      formatSize(row.size),
      // A folder's is a folder: shown as one, as `ls` shows empty folders.
      row.partPath + (row.folder ? "/" : "") + where(row.onDisk),
      row.updatedAt,
    ]),
  ));
  for (const row of rows.filter((row) => row.onDisk === false)) {
    console.log(asTyped(
      `${row.folder ? "the folder" : "the partial file"} of "${row.name}" is gone: ` +
        `\`peer.ts cancel ${quoteWord(row.name)}\` ` +
        "forgets it, or fetch it again to start over",
    ));
  }
}

/** `cancel`: forgets a download by name and deletes its partial file, wherever it is. */
export async function cancel({ home }: PeerContext, typed: string, patienceMs = 0) {
  for (const { name, partPath, file, folder } of await cancelByName(home, typed, { patienceMs })) {
    if (folder === "staged") {
      console.log(
        file === "deleted"
          ? `cancelled "${name}" and deleted its unfinished folder ${partPath}`
          : `cancelled "${name}"; its unfinished folder ${partPath} was already gone`,
      );
      continue;
    }
    if (folder) {
      console.log(
        `cancelled "${name}"` +
          (file === "deleted" ? ` and deleted its partial files in ${partPath}` : "") +
          `; the files it finished stay in ${partPath}`,
      );
      continue;
    }
    console.log(
      file === "deleted"
        ? `cancelled "${name}" and deleted its partial file ${partPath}`
        : file === "missing"
        ? `cancelled "${name}"; its partial file ${partPath} was already gone`
        : `cancelled "${name}"; its partial file ${partPath} was recorded without its folder ` +
          "by an older version: delete it yourself in the folder where you fetched",
    );
  }
}
