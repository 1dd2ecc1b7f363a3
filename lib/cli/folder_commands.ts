/** Folder shares on the command line: publishing a folder, `ls`, fetching a folder. */
import { basename, isAbsolute, relative, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { FOLDER_TYPE, type Listing } from "../protocol/messages.ts";
import {
  fetchFolder,
  fetchFolderManifest,
  type FolderFetchResult,
  folderOutput,
} from "../peer/folder_fetch.ts";
import type { FolderProgress } from "../peer/folder_download.ts";
import type { RemovedOutside } from "../peer/unselected.ts";
import { listenForInterrupts } from "./interrupts.ts";
import { publishFolder } from "../peer/folder_publish.ts";
import { parseFolderManifest } from "../peer/folder_manifest.ts";
import { unfinishedFolderPlace } from "../peer/folder_paths.ts";
import { PeerHome } from "../peer/home.ts";
import { otherOwners, otherOwnersOfContent, pickSource } from "../peer/fetch.ts";
import { connectSession } from "../peer/tracker_link.ts";
import { asTyped, quoteWord } from "../invocation.ts";
import {
  escapeForTerminal,
  formatSize,
  plural,
  printJson,
  renderTable,
  replacedNote,
} from "./output.ts";
import { DownloadProgress, HashProgress } from "./progress.ts";
import { reportError } from "./errors.ts";
import { parseRateFlag, type PeerContext } from "./peer_context.ts";
import type { ShellHooks } from "./shell_hooks.ts";

/** The link `fetch` takes instead of a name: `shoal:<content id>`. */
export function linkOf(contentId: string): string {
  return `shoal:${contentId}`;
}

/** The content id a `shoal:` link names, or null for a plain name. */
export function contentIdOfLink(text: string): string | null {
  const match = /^shoal:([0-9a-f]{64})$/i.exec(text.trim());
  if (match) return match[1].toLowerCase();
  // A cut link (the 12 digits `publish` shows beside "content") is no name either: say which.
  const cut = /^shoal:(.*)$/i.exec(text.trim());
  if (cut) {
    const digits = cut[1].length;
    throw new ShoalError(
      "INVALID_INPUT",
      `${escapeForTerminal(text.trim())} is not a whole link: a shoal: link holds the 64 ` +
        `hex digits of a content id${
          /^[0-9a-f]*$/i.test(cut[1]) ? ` (this one has ${digits})` : ""
        }`,
      { hint: "copy the whole link that `publish` (or `view --json`) printed for its owner" },
    );
  }
  return null;
}

/**
 * Runs `work` with an abort signal that Ctrl-C (or SIGTERM) fires, or the
 * shell's signal there. A second Ctrl-C runs `again` (which leaves at once),
 * when given.
 */
export async function untilCtrlC<V>(
  work: (signal: AbortSignal) => Promise<V>,
  shell?: AbortSignal,
  again?: () => void,
) {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted && again) again();
    stop.abort();
  };
  // In the shell, which owns Ctrl-C, its signal; else the process's, for as long as this runs.
  const listeners = shell ? null : listenForInterrupts(onSignal);
  const ended = new AbortController();
  shell?.addEventListener("abort", onSignal, { once: true, signal: ended.signal });
  try {
    return await work(stop.signal);
  } finally {
    ended.abort();
    listeners?.stop(stop.signal.aborted);
  }
}

/** `publish` of a directory: hashes it with a progress bar, then publishes it. */
export async function runPublishFolder(
  { tracker, home }: PeerContext,
  path: string,
  name: string | undefined,
  shell?: ShellHooks,
) {
  const progress = new HashProgress(escapeForTerminal(name ?? path));
  const before = home.share(name ?? basename(resolve(path)));
  try {
    const { share, replaced, skipped } = await untilCtrlC(
      (signal) =>
        publishFolder(home, tracker, path, name, {
          signal,
          onProgress: (p) => progress.update(p),
        }).catch((error) => {
          if (signal.aborted) {
            throw new ShoalError("CANCELLED", "stopped hashing; nothing was published");
          }
          throw error;
        }),
      shell?.signal,
    );
    progress.stop();
    if (skipped) console.error(skipped);
    console.log(escapeForTerminal(
      `${replaced ? "republished" : "published"} the folder "${share.name}" (${
        plural(share.files ?? 0, "file")
      }, ${formatSize(share.size)}, content ${share.contentId.slice(0, 12)}): ` +
        linkOf(share.contentId) + replacedNote(before, share) +
        // Published again as it was: say so, so that a change not seen is not taken as shared.
        (before?.path === share.path && before.contentId === share.contentId
          ? "; nothing in it changed since it was last published"
          : ""),
    ));
  } finally {
    progress.stop();
  }
}

/** Finds a folder listing by name or `shoal:` link, as fetch does. */
async function chooseListing(
  { tracker, home }: PeerContext,
  name: string,
  from?: string,
): Promise<Listing> {
  const contentId = contentIdOfLink(name);
  if (contentId) {
    // As fetch finds the owners of a link, with the same errors.
    const { owners } = await otherOwnersOfContent(home, tracker, contentId, from);
    return pickSource(owners, from);
  }
  const { owners } = await otherOwners(home, tracker, name, from);
  // Only a folder can be listed: a file of the same name by someone else is not a choice.
  const folders = owners.filter((file) => file.type === FOLDER_TYPE);
  return pickSource(folders.length > 0 ? folders : owners, from);
}

/** The folder this home shares under `name` (as the tracker lists it), if its manifest is kept. */
function ownFolder(home: PeerHome, name: string): Listing & { path: string } | null {
  const share = home.share(name);
  const owner = home.session()?.username;
  if (!share || share.kind !== "folder" || !owner) return null;
  try {
    Deno.statSync(home.folderManifestPath(share.contentId));
  } catch {
    return null;
  }
  return {
    path: share.path,
    owner,
    name: share.name,
    type: FOLDER_TYPE,
    size: share.size,
    contentId: share.contentId,
    publishedAt: share.publishedAt,
    online: true,
    address: null,
    files: share.files ?? 0,
  };
}

/** `ls <name>`: a remote folder's files (path, size), without fetching them. */
export async function runLs(
  context: PeerContext,
  name: string,
  flags: { json?: boolean; from?: string },
) {
  const listing = await chooseListing(context, name, flags.from).catch((error) => {
    // Nobody else's to list (only you share it, or the others are offline): your own is at hand.
    const own = flags.from === undefined ? ownFolder(context.home, name) : null;
    if (own && error instanceof ShoalError && ["NOT_FOUND", "UNREACHABLE"].includes(error.code)) {
      const why = error.code === "NOT_FOUND" ? "nobody else shares it" : error.message.replace(
        /^every owner of (".*") is offline$/,
        "everyone else sharing $1 is offline",
      );
      console.error(escapeForTerminal(`listing your own "${own.name}" (${own.path}): ${why}`));
      return own;
    }
    throw error;
  });
  if (listing.type !== "folder") {
    throw new ShoalError("INVALID_INPUT", `"${listing.name}" is a file, not a folder`, {
      hint: `\`peer.ts fetch ${quoteWord(listing.name)} --from ${quoteWord(listing.owner)}\` ` +
        "fetches it",
    });
  }
  const { tracker, home } = context;
  const kept = await Deno.readFile(home.folderManifestPath(listing.contentId)).catch(() => null);
  let manifest;
  if (kept) manifest = parseFolderManifest(kept, listing.contentId, "this peer's home");
  else {
    const { tracker: client, username } = await connectSession(home, tracker);
    try {
      const { sources, ticket } = await client.call("sources", { contentId: listing.contentId });
      const usable = sources.filter((s) => s.owner.toLowerCase() !== username.toLowerCase());
      ({ manifest } = await fetchFolderManifest(
        listing.contentId,
        { sources: usable, ticket },
        tracker.plaintext,
        listing.name,
      ));
    } finally {
      client.close();
    }
  }
  if (flags.json) {
    return printJson({
      name: listing.name,
      contentId: listing.contentId,
      files: manifest.files.map((file) => ({ path: file.path, size: file.size })),
      folders: manifest.folders,
    });
  }
  // Empty folders are part of the tree a fetch makes: listed too, after the files.
  const holding = new Set<string>();
  for (const path of [...manifest.files.map((file) => file.path), ...manifest.folders]) {
    for (let at = path.lastIndexOf("/"); at > 0; at = path.lastIndexOf("/", at - 1)) {
      holding.add(path.slice(0, at));
    }
  }
  const empty = manifest.folders.filter((folder) => !holding.has(folder));
  console.log(renderTable(
    ["path", "size"],
    [
      ...manifest.files.map((file) => [file.path, formatSize(file.size)]),
      ...empty.map((folder) => [`${folder}/`, "empty folder"]),
    ],
  ));
  const total = manifest.files.reduce((sum, file) => sum + file.size, 0);
  console.log(
    `${plural(manifest.files.length, "file")}, ${formatSize(total)}` +
      (empty.length ? `; ${plural(empty.length, "empty folder")}` : ""),
  );
}

/** A path as a person reads it: relative when under the current folder. */
function shownPath(path: string): string {
  const inside = relative(Deno.cwd(), path);
  return inside && !inside.startsWith("..") && !isAbsolute(inside) ? inside : path;
}

/** One line for a fetched folder. */
export function folderSummaryLine(result: FolderFetchResult, name: string): string {
  const fetched = result.size - result.resumed - result.kept.bytes;
  const rate = result.seconds > 0 ? fetched / result.seconds : 0;
  const sources = result.sources.map((s) => `${s.owner} ${plural(s.pieces, "piece")}`);
  const dropped = result.dropped.map((d) => `${d.owner} (${d.reason})`);
  return escapeForTerminal([
    `fetched the folder "${name}" to ${shownPath(result.output)}: ${
      plural(result.files, "file")
    }, ` +
    `${formatSize(result.size)} in ${result.seconds.toFixed(2)} s` +
    // Nothing fetched now (all of it resumed, or there already): no rate to speak of.
    (fetched > 0 ? ` (${formatSize(rate)}/s)` : ""),
    // Worded as a file's fetch words it.
    sources.length ? ` from ${plural(sources.length, "source")}: ${sources.join(", ")}` : "",
    result.resumed > 0 ? `; ${formatSize(result.resumed)} resumed from before` : "",
    result.kept.files > 0
      ? `; ${plural(result.kept.files, "file")} (${formatSize(result.kept.bytes)}) already ` +
        "there with the same content, kept"
      : "",
    result.movedFrom ? ` (moved here from ${result.movedFrom})` : "",
    result.removedOutside ? `; ${removedLine(result.removedOutside)}` : "",
    result.unpublished
      ? `; shared here but not published: ${result.unpublished}; ` +
        `\`peer.ts publish ${quoteWord(name)} ${quoteWord(result.output)}\` publishes it ` +
        "once the tracker is back"
      : "",
    result.sharedElsewhere
      ? `; not shared: you already share another "${name}" ` +
        `(${result.sharedElsewhere}; \`peer.ts publish ${quoteWord(name)} ` +
        `${quoteWord(result.output)}\` shares this one instead)`
      : "",
    dropped.length ? `; dropped ${dropped.join(", ")}` : "",
  ].join(""));
}

/** What a fetch narrowed by `--only` removed of an earlier, wider run's files. */
function removedLine({ files, bytes, partial }: RemovedOutside): string {
  const what = [
    files > 0 ? `${plural(files, "file")} (${formatSize(bytes)}) it had fetched` : "",
    partial > 0 ? `${plural(partial, "partial file")}` : "",
  ].filter(Boolean).join(" and ");
  return `removed ${what} outside --only, left by an earlier, wider fetch of it`;
}

/** The options of a folder fetch. */
export interface FolderFetchFlags {
  from?: string;
  output?: string;
  force?: boolean;
  json?: boolean;
  only?: string[];
  maxDownloadRate?: string;
}

/** Fetches a chosen folder listing with a progress bar; in the shell, in the background. */
export async function runFolderFetch(
  { tracker, home }: PeerContext,
  chosen: Listing,
  onlyChosen: boolean,
  flags: FolderFetchFlags,
  resumeCommand: string,
  shell?: ShellHooks,
) {
  const options = {
    output: flags.output,
    overwrite: flags.force,
    only: flags.only,
    onlyChosen,
    maxDownloadRate: parseRateFlag("max-download-rate", flags.maxDownloadRate),
    resumeCommand,
  };
  let last: FolderProgress | undefined;
  // Where this fetch writes, as it recorded (before it did: where it would have).
  const keptIn = (home: PeerHome) => {
    const record = home.folderDownload(chosen.contentId);
    const output = folderOutput(chosen, flags.output);
    return record?.output === output ? unfinishedFolderPlace(record) : output;
  };
  const interruption = (home: PeerHome) => {
    const kept = last
      ? `${last.filesDone} of ${plural(last.totalFiles, "file")} done, ` +
        `${formatSize(last.verifiedBytes)} of ${formatSize(last.totalBytes)} verified, `
      : "";
    return new ShoalError(
      "CANCELLED",
      `interrupted: ${kept}kept in ${keptIn(home)}; ` +
        `run \`${resumeCommand}\` to resume`,
      { hint: `\`peer.ts cancel ${quoteWord(chosen.name)}\` deletes the partial files` },
    );
  };
  if (shell && !flags.json) {
    const dir = home.dir;
    shell.startBackground(chosen.name, async (signal) => {
      using own = PeerHome.open(dir);
      const result = await fetchFolder(own, tracker, chosen, {
        ...options,
        signal,
        onProgress: (p) => last = p,
      }).catch((error) => {
        // Paused: said as a Ctrl-C outside the shell says it.
        if (signal.aborted) throw interruption(own);
        throw error;
      });
      return asTyped(folderSummaryLine(result, chosen.name));
    });
    console.log(
      `fetching the folder "${
        escapeForTerminal(chosen.name)
      }" in the background; \`downloads\` shows how far it got`,
    );
    return;
  }
  const progress = new DownloadProgress(
    escapeForTerminal(chosen.name),
    !flags.json && Deno.stderr.isTerminal(),
  );
  try {
    const result = await untilCtrlC(
      (signal) =>
        fetchFolder(home, tracker, chosen, {
          ...options,
          signal,
          onProgress: (p) => {
            last = p;
            progress.update(p);
          },
        }).catch((error) => {
          if (signal.aborted) throw interruption(home);
          throw error;
        }),
      shell?.signal,
      // A second Ctrl-C leaves at once, as a file's fetch does: verified pieces are on disk.
      shell ? undefined : () => {
        progress.stop();
        Deno.exit(reportError(interruption(home)));
      },
    );
    progress.stop();
    if (flags.json) return printJson({ name: chosen.name, type: "folder", ...result });
    console.log(asTyped(folderSummaryLine(result, chosen.name)));
  } finally {
    progress.stop();
  }
}
