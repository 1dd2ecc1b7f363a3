/**
 * Fetching a folder share: its manifest (in chunks, verified against the
 * folder's content id, every path checked before anything is written), the
 * sources of each of its files (owners of the folder, and owners of each
 * file however they share it), then the files themselves, a whole folder or
 * the part `--only` names, resumable.
 */
import { processBudget, type RateLimiter } from "./rate.ts";
import { dirname, join, resolve } from "node:path";
import { parseAddress } from "../protocol/address.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import {
  BATCHED_BELOW_BYTES,
  type Listing,
  MAX_FOLDER_MANIFEST_BYTES,
  PEER_METHODS,
  type Source,
} from "../protocol/messages.ts";
import { FolderDownload, type FolderProgress, type PlannedFile } from "./folder_download.ts";
import {
  contentIdCache,
  fileManifestOf,
  folderContentId,
  type FolderFile,
  type FolderManifest,
  parseFolderManifest,
} from "./folder_manifest.ts";
import { findHolders } from "./folder_holders.ts";
import { resolveAllInside, stagingFolder, unfinishedFolderPlace } from "./folder_paths.ts";
import { checkFreeSpace } from "./disk_space.ts";
import { BatchPlacer } from "./batch_placer.ts";
import { FetchLock } from "./fetch_lock.ts";
import { dropUnselected, type RemovedOutside } from "./unselected.ts";
import { quoteWord } from "../invocation.ts";
import { announceFolder, sendMembers } from "./folder_publish.ts";
import type { FolderFileRecord, PeerHome, Share } from "./home.ts";
import { type FileIdentity, hashFile, identityOf, openRegularFile } from "./manifest.ts";
import { hashSmallFile, SMALL_FILE_BYTES } from "./small_file_hash.ts";
import type { SourceList, SourceReport } from "./swarm.ts";
import { checkName } from "./shares.ts";
import {
  connectSession,
  PEER_AGENT,
  type TrackerClient,
  type TrackerEndpoint,
  trackerName,
} from "./tracker_link.ts";

/**
 * Gets a folder's manifest from the first source that gives one matching
 * its content id, in chunks (a big folder's manifest is many frames);
 * UNREACHABLE naming each source's problem when none does. The manifest's
 * paths are checked (`parseFolderManifest`) before it is returned.
 */
export async function fetchFolderManifest(
  contentId: string,
  { sources, ticket }: SourceList,
  plaintext: boolean,
  name?: string,
): Promise<{ manifest: FolderManifest; text: Uint8Array }> {
  const problems: string[] = [];
  for (const source of sources) {
    let text: Uint8Array;
    try {
      text = await readManifest(source, contentId, ticket, plaintext);
      if (folderContentId(text) !== contentId) {
        throw new ShoalError("INTEGRITY", "its manifest does not match the content id");
      }
    } catch (error) {
      problems.push(`${source.owner}: ${toShoalError(error).message}`);
      continue;
    }
    // A manifest that matches its content id but breaks a rule is the folder's own fault:
    // every source would send the same, so it is refused at once.
    return { manifest: parseFolderManifest(text, contentId, describe(source)), text };
  }
  throw new ShoalError(
    "UNREACHABLE",
    problems.length
      ? `no source gave the folder's manifest (${problems.join("; ")})`
      : "no source is online",
    {
      hint: "run it again once one of its owners serves it " +
        `(\`peer.ts search ${
          name === undefined ? "<name>" : quoteWord(name)
        }\` shows who is online)`,
    },
  );
}

function describe(source: Source): string {
  return `${source.owner} at ${source.address}`;
}

async function readManifest(
  source: Source,
  contentId: string,
  ticket: string,
  plaintext: boolean,
): Promise<Uint8Array> {
  if (!plaintext && !source.certificate) {
    throw new ShoalError("CERTIFICATE_MISMATCH", "no TLS certificate vouched for by the tracker");
  }
  using peer = await ProtocolClient.connect(parseAddress(source.address), PEER_METHODS, {
    expect: "peer",
    agent: PEER_AGENT,
    tls: plaintext || !source.certificate
      ? undefined
      : { certificate: source.certificate, whose: "the one the tracker vouched for" },
  });
  let text: Uint8Array | null = null;
  let offset = 0;
  // Bounded: each round moves on by a non-empty chunk, up to a total fixed by the first reply.
  for (let round = 0; round < MAX_FOLDER_MANIFEST_BYTES; round++) {
    const { result, body } = await peer.callWithBody(
      "folder",
      { contentId, offset, ticket },
      undefined,
      { deadlineMs: 30_000 },
    );
    text ??= new Uint8Array(result.total);
    if (result.total !== text.length || body.length !== result.length) {
      throw new ShoalError("INTEGRITY", `${describe(source)} changed the manifest's length`);
    }
    if (offset + body.length > text.length) {
      throw new ShoalError("INTEGRITY", `${describe(source)} sent more than the manifest's length`);
    }
    text.set(body, offset);
    offset += body.length;
    if (offset === text.length) return text;
    if (body.length === 0) throw new ShoalError("INTEGRITY", `${describe(source)} sent nothing`);
  }
  throw new ShoalError("INTEGRITY", `${describe(source)} never finished the manifest`);
}

/** Turns a `--only` glob into a test: `*` within a name, `**` across folders, `?` one character. */
export function globMatcher(patterns: string[]): (path: string) => boolean {
  if (patterns.length === 0) return () => true;
  const expressions = patterns.map((pattern) => {
    let source = "";
    // Compared in NFC: a glob typed on a keyboard (NFC) matches a name stored in NFD. No two
    // paths of a manifest differ only in normalisation, so none is taken for another.
    const cleaned = pattern.normalize("NFC").replace(/^\.?\/+/, "").replace(/\/+$/, "");
    for (let i = 0; i < cleaned.length; i++) {
      const c = cleaned[i];
      if (c === "*" && cleaned[i + 1] === "*") {
        source += ".*";
        i++;
        if (cleaned[i + 1] === "/") i++;
      } else if (c === "*") source += "[^/]*";
      else if (c === "?") source += "[^/]";
      else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
    // A pattern naming a folder takes everything in it.
    return new RegExp(`^${source}(/.*)?$`, "u");
  });
  return (path) => {
    const nfc = path.normalize("NFC");
    return expressions.some((expression) => expression.test(nfc));
  };
}

/** Options of {@link fetchFolder}. */
export interface FolderFetchOptions {
  /** The folder to write the tree under. @default {./<name>} */
  output?: string;
  /** Write into an existing folder, replacing files of the same paths. */
  overwrite?: boolean;
  /** Globs of paths to fetch; all of them when empty. */
  only?: string[];
  /** Take the files only from the chosen listing's owner. */
  onlyChosen?: boolean;
  onProgress?: (progress: FolderProgress) => void;
  signal?: AbortSignal;
  /** The process's download budget, bytes a second (`--max-download-rate`). @default {none} */
  maxDownloadRate?: number | null;
  /** The command that resumes this fetch, for the error that stops it. @default {none} */
  resumeCommand?: string;
}

/** The outcome of {@link fetchFolder}. */
export interface FolderFetchResult {
  output: string;
  files: number;
  size: number;
  /**
   * From the folder's sources known to its files in place, as a file's
   * download counts (its manifest included; the tracker's login and the
   * share recorded after it not).
   */
  seconds: number;
  /** Bytes verified from an earlier run. */
  resumed: number;
  /**
   * Files (and their bytes) already at the output with the content they
   * should have, fetched over with `--force` (an earlier version of the
   * folder, say): kept, not fetched again.
   */
  kept: { files: number; bytes: number };
  sources: SourceReport[];
  dropped: { owner: string; address: string; reason: string }[];
  /** Whether the whole folder joined this peer's shares. */
  shared: boolean;
  /**
   * Where this home already shares something else under the folder's name,
   * which is why the fetched folder is not shared.
   */
  sharedElsewhere?: string;
  /**
   * Why the tracker was not told of the folder shared here (unreachable, or
   * it refused): then nobody is sent here for it until it is published again.
   */
  unpublished?: string;
  /** The staging folder of an earlier fetch to another output that this one took over. */
  movedFrom?: string;
  /**
   * What an earlier run of this fetch had written outside this run's
   * `--only`, removed so the folder holds exactly the selection.
   */
  removedOutside?: RemovedOutside;
}

/** Where a folder fetch writes: `--output`, else `./<name>`; absolute. */
export function folderOutput(listing: Listing, output?: string): string {
  return resolve(output ?? checkName(listing.name));
}

/**
 * Refuses an output folder that cannot be written: a file (or anything not
 * a folder) there or at its staging folder, or either of them there but not
 * left by an interrupted fetch of this very content, without `overwrite`
 * (one left by a fetch of another version of the folder is named as such).
 * Says where the files go (`into`: the output when it exists, else its
 * staging folder), what is there, and whether this fetch resumes one.
 *
 * A fetch resumes only where it wrote: one that built a staging folder,
 * whose output then appeared (made by someone else meanwhile), is refused
 * even with `overwrite` (its files are not in that output, and none there
 * may be taken as fetched); one that wrote into its output, which is gone
 * since, starts afresh.
 */
export async function checkFolderOutput(
  home: PeerHome,
  contentId: string,
  output: string,
  overwrite?: boolean,
): Promise<{ existing: Deno.FileInfo | null; resuming: boolean; into: string }> {
  const record = home.folderDownload(contentId);
  const staging = stagingFolder(output);
  const atOutput = await Deno.lstat(output).catch(() => null);
  const atStaging = await Deno.lstat(staging).catch(() => null);
  let resuming = record?.output === output;
  if (resuming && record!.staged && atOutput && atStaging) {
    throw new ShoalError(
      "IO",
      `${output} appeared while "${record!.name}" was fetched into ${staging}, where its files are`,
      {
        hint:
          `move ${output} away and run the same fetch again to finish it and put it in place, ` +
          `or \`peer.ts cancel ${quoteWord(record!.name)}\` to delete ${staging}`,
      },
    );
  }
  // Its files went with the output it wrote into: none of them is at a staging folder there now.
  if (resuming && !record!.staged && !atOutput) resuming = false;
  const into = atOutput ? output : staging;
  const existing = atOutput ?? atStaging;
  if (existing?.isSymlink) {
    // Never written through: a link may lead anywhere.
    throw new ShoalError(
      "IO",
      `${into} is a symbolic link, and a fetch writes through none; ` +
        "fetch to another place with --output PATH",
    );
  }
  if (existing && !existing.isDirectory) {
    throw new ShoalError(
      "IO",
      `${into} is not a folder; ` +
        (into === output ? "fetch to another place with --output PATH" : "move it away first"),
    );
  }
  if (existing && !resuming && !overwrite) {
    const other = home.folderDownloads().find((record) =>
      record.output === output && record.contentId !== contentId
    );
    throw new ShoalError(
      "IO",
      `${into} already exists` +
        (other ? `, with an unfinished fetch of another version of "${other.name}" in it` : "") +
        "; fetch to another folder with --output PATH, or into this one with --force " +
        "(files of the same paths are replaced" +
        (into === output ? ")" : `; it becomes ${output} once the folder is whole)`),
    );
  }
  return { existing, resuming, into };
}

/**
 * Takes over the unfinished fetch of the same folder headed for another
 * output, as a file's fetch typed in another folder takes its partial file:
 * its staging folder is renamed to this output's and its record follows, so
 * this fetch resumes from what it holds instead of leaving it on disk,
 * forgotten (the record is one per folder). Refused, naming it, where that
 * cannot be done: it wrote into a folder that was there, this output (or its
 * staging folder) is taken, or the rename fails (another file system).
 * Returns where it was, or null when there was none or it is gone.
 */
export async function adoptUnfinished(
  home: PeerHome,
  contentId: string,
  output: string,
): Promise<string | null> {
  const record = home.folderDownload(contentId);
  if (!record || record.output === output) return null;
  const place = unfinishedFolderPlace(record);
  if (!(await Deno.lstat(place).then((info) => info.isDirectory, () => false))) return null;
  const refuse = (why: string) =>
    new ShoalError("IO", `an unfinished fetch of "${record.name}" is in ${place}; ${why}`, {
      hint: `fetch with --output ${quoteWord(record.output)} to finish it there, ` +
        `or \`peer.ts cancel ${quoteWord(record.name)}\` to delete it first`,
    });
  if (!record.staged) throw refuse("its files are among those of a folder that was there");
  const staging = stagingFolder(output);
  for (const taken of [output, staging]) {
    if (await Deno.lstat(taken).then(() => true, () => false)) {
      throw refuse(`it cannot be moved here, as ${taken} is there`);
    }
  }
  try {
    await Deno.mkdir(dirname(staging), { recursive: true });
    await Deno.rename(place, staging);
  } catch (error) {
    throw refuse(`it cannot be moved to ${staging} (${toShoalError(error).message})`);
  }
  home.saveFolderDownload({ ...record, output });
  return place;
}

/**
 * Makes the folder a fetch writes into (`into` of {@link checkFolderOutput}):
 * one that was not there is made by this call itself, not found made (a
 * link planted there since it was checked, to a folder elsewhere, fails
 * it), and one that was must still be a folder, not a link.
 */
export async function makeFolderOutput(into: string, wasThere: boolean): Promise<void> {
  if (!wasThere) {
    await Deno.mkdir(dirname(into), { recursive: true }).catch((error) => {
      // A file where a folder above the output should be: not something that appeared.
      if (
        error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotADirectory
      ) {
        throw new ShoalError(
          "IO",
          `cannot make ${dirname(into)}: a part of that path is a file, not a folder; ` +
            "fetch to another place with --output PATH",
        );
      }
      throw toShoalError(error);
    });
  }
  try {
    if (!wasThere) await Deno.mkdir(into);
    if (!(await Deno.lstat(into)).isDirectory) {
      throw new ShoalError("IO", `${into} is no longer a folder (replaced since it was checked)`);
    }
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new ShoalError("IO", `${into} appeared while the fetch started; run it again`);
    }
    throw toShoalError(error);
  }
}

/**
 * Renames a fetched folder's staging folder to its output. Refused when
 * something took that name meanwhile (a rename would replace an empty
 * folder there, and fails on anything else): IO, saying so.
 */
async function moveIntoPlace(staging: string, output: string): Promise<void> {
  const appeared = () => Deno.lstat(output).then(() => true, () => false);
  const taken = () =>
    new ShoalError("IO", `${output} appeared while the folder was fetched, and is not replaced`);
  if (await appeared()) throw taken();
  try {
    await Deno.rename(staging, output);
  } catch (error) {
    // Made between the look above and the rename: a file or link there fails it.
    if (await appeared()) throw taken();
    throw toShoalError(error);
  }
}

/**
 * Fetches a folder (all of it, or the files `only` names) under its output
 * folder from every online source of each file. Resumes an interrupted
 * fetch of the same folder to the same place: files already renamed into
 * place are kept, partial files re-verified.
 */
export async function fetchFolder(
  home: PeerHome,
  tracker: TrackerEndpoint,
  chosen: Listing,
  options: FolderFetchOptions = {},
): Promise<FolderFetchResult> {
  let started = performance.now();
  // Held until the fetch ends: a second fetch of this folder from this home stops here.
  using _lock = FetchLock.acquire(home, chosen.contentId, chosen.name);
  // A worker verifies and writes the small files of batches while this thread reads the next
  // ones; started first, it is ready by the time the first batch comes.
  using placer =
    chosen.files >= PLACER_FROM_FILES && chosen.size / chosen.files < BATCHED_BELOW_BYTES
      ? new BatchPlacer()
      : null;
  const contentId = chosen.contentId;
  const output = folderOutput(chosen, options.output);
  const movedFrom = await adoptUnfinished(home, contentId, output);
  const record = home.folderDownload(contentId);
  const { existing, resuming, into } = await checkFolderOutput(
    home,
    contentId,
    output,
    options.overwrite,
  );
  const { tracker: client, username } = await connectSession(home, tracker);
  try {
    const usable = (source: Source) =>
      source.owner.toLowerCase() !== username.toLowerCase() &&
      (!options.onlyChosen || source.owner === chosen.owner);
    const owners = await client.call("sources", {
      contentId,
      owner: options.onlyChosen ? chosen.owner : undefined,
    });
    // Timed from here, as a file's download is: from its sources known to its files in place.
    started = performance.now();
    const folderSources = { sources: owners.sources.filter(usable), ticket: owners.ticket };
    // Its text stays in the home only: a big folder's is not held through the download.
    const manifest = await cachedManifest(home, contentId, folderSources, tracker, chosen.name);
    const idOf = contentIdCache();
    const wanted = globMatcher(options.only ?? []);
    const chosenFiles = manifest.files.filter((file) => wanted(file.path));
    // A glob that takes nothing is a typo more often than not: say which, before any byte.
    const idle = (options.only ?? []).filter((glob) => {
      const takes = globMatcher([glob]);
      return !manifest.files.some((file) => takes(file.path)) && !manifest.folders.some(takes);
    });
    if (idle.length > 0) {
      throw new ShoalError(
        "NOT_FOUND",
        `nothing in "${chosen.name}" matches ${
          idle.map((glob) => `--only ${quoteWord(glob)}`).join(", ")
        }`,
        { hint: `\`peer.ts ls ${quoteWord(chosen.name)}\` lists its files and empty folders` },
      );
    }
    const total = chosenFiles.reduce((sum, file) => sum + file.size, 0);
    // Refused before anything is made or recorded; a resume, or a fetch over a folder there
    // (--force: an earlier version, say), is checked below, net of what is there already.
    if (!resuming && existing === null) await checkFreeSpace(output, total);
    // Written over (--force): an unfinished fetch of another version there is this one now.
    for (const stale of home.folderDownloads()) {
      if (stale.output === output && stale.contentId !== contentId) {
        home.removeFolderDownload(stale.contentId);
      }
    }
    const now = new Date().toISOString();
    // A fresh fetch is built in its staging folder, renamed to the output once whole.
    const staged = into !== output;
    home.saveFolderDownload({
      contentId,
      name: chosen.name,
      output,
      only: options.only ?? [],
      size: total,
      files: chosenFiles.length,
      doneBytes: resuming && record ? record.doneBytes : 0,
      staged,
      startedAt: resuming && record ? record.startedAt : now,
      updatedAt: now,
    });
    await makeFolderOutput(into, existing !== null).catch((error) => {
      // Nothing was made: nothing is left to resume or cancel (a resumed one stays as it was).
      if (!resuming) home.removeFolderDownload(contentId);
      throw error;
    });
    // Folders first (empty ones too), each checked not to pass through a link already there.
    const folders = new Set<string>();
    const wantedFolders = options.only?.length
      ? manifest.folders.filter((folder) => wanted(folder))
      : manifest.folders;
    for (const folder of wantedFolders) folders.add(folder);
    for (const file of chosenFiles) {
      for (let at = file.path.indexOf("/"); at > 0; at = file.path.indexOf("/", at + 1)) {
        folders.add(file.path.slice(0, at));
      }
    }
    // Each folder is resolved once, refusing a link already there; its files go inside it.
    const placed = new Map<string, string>([["", into]]);
    const sorted = [...folders].sort();
    const resolved = await resolveAllInside(into, sorted);
    // Made without a turn of the event loop each: a hundred folders in ~2 ms rather than ~8.
    for (const [i, folder] of sorted.entries()) {
      Deno.mkdirSync(resolved[i], { recursive: true });
      placed.set(folder, resolved[i]);
    }
    const placeOf = (relative: string) => {
      const at = relative.lastIndexOf("/");
      // A link at the file's own name is never followed: it is replaced by the rename.
      return join(placed.get(at < 0 ? "" : relative.slice(0, at))!, relative.slice(at + 1));
    };
    const planned: PlannedFile[] = [];
    // A whole folder becomes a share: each file's identity is read as it lands, not all at the end.
    const identifyAsDone = !options.only?.length;
    const identities = new Map<FolderFile, FileIdentity>();
    let resumedBytes = 0;
    // Written over (--force) a folder that was there: a file there with its content already stays.
    const overwriting = existing !== null && !resuming;
    const kept = { files: 0, bytes: 0 };
    for (const file of chosenFiles) {
      if (resuming && staged) {
        const there = await Deno.lstat(placeOf(file.path)).catch(() => null);
        // Renamed into place only once verified: a file of its size there is done.
        if (there?.isFile && there.size === file.size) {
          resumedBytes += file.size;
          continue;
        }
      } else if (existing !== null) {
        // In a folder that was there (resumed or not), a file of its size may be the one this
        // fetch was to replace (an earlier version's): only its content says it is done.
        const identity = await heldAlready(placeOf(file.path), file, options.signal);
        if (identity) {
          if (overwriting) {
            kept.files++;
            kept.bytes += file.size;
          } else resumedBytes += file.size;
          if (identifyAsDone) identities.set(file, identity);
          continue;
        }
      }
      planned.push(file);
    }
    if (resuming || existing !== null) {
      await checkFreeSpace(output, total - resumedBytes - kept.bytes).catch((error) => {
        // No file written yet: nothing to resume or cancel (a resumed one stays as it was).
        if (!resuming) home.removeFolderDownload(contentId);
        throw error;
      });
    }
    // What needs no transfer: resumed, or already there.
    const alreadyBytes = resumedBytes + kept.bytes;
    let doneBytes = alreadyBytes;
    // Verified bytes, partial files' pieces too: what `downloads` shows as done.
    let verifiedBytes = alreadyBytes;
    const recordProgress = () =>
      home.updateFolderDownload(contentId, Math.max(doneBytes, verifiedBytes));
    let recordedAt = 0;
    const download = new FolderDownload({
      files: planned,
      contentIdOf: idOf,
      place: placeOf,
      placer: placer ?? undefined,
      direct: staged,
      plaintext: tracker.plaintext,
      signal: options.signal,
      ...paced(processBudget("download", options.maxDownloadRate)),
      onProgress: (progress) => {
        verifiedBytes = progress.verifiedBytes + alreadyBytes;
        options.onProgress?.({
          ...progress,
          verifiedBytes,
          totalBytes: total,
          filesDone: progress.filesDone + (chosenFiles.length - planned.length),
          totalFiles: chosenFiles.length,
        });
        if (performance.now() - recordedAt > 1000) {
          recordProgress();
          recordedAt = performance.now();
        }
      },
      onFileDone: (index, identity) => {
        doneBytes += planned[index].size;
        if (identifyAsDone) {
          const file = planned[index];
          try {
            identities.set(file, identity ?? identityOf(Deno.lstatSync(placeOf(file.path))));
          } catch {
            // Read again when the share is recorded, which says what is wrong with it.
          }
        }
        if (performance.now() - recordedAt > 200) {
          recordProgress();
          recordedAt = performance.now();
        }
      },
      findSources: (remaining) =>
        findHolders(client, contentId, planned, idOf, remaining, usable, options.onlyChosen),
    });
    // Partial files are left only where this fetch (or one killed) wrote before.
    if (existing) { for (let i = 0; i < planned.length; i++) await resumePart(download, i); }
    // Pieces of partial files that verified again: resumed, not fetched now.
    const resumedPieceBytes = download.verifiedBytes;
    let sources: SourceReport[];
    /** Every file is verified in `into`: all that may be left is the rename to the output. */
    let fetched = false;
    let removed: RemovedOutside = { files: 0, bytes: 0, partial: 0 };
    // Ends the lookups of more sources that the download may no longer need.
    const lookups = new AbortController();
    try {
      const everyone = planned.map((_, i) => i);
      // The holders of most files may come while the folder's own owners already send.
      const first = await findHolders(
        client,
        contentId,
        planned,
        idOf,
        everyone,
        usable,
        options.onlyChosen,
        { owners, found: (more) => download.addSources(more), until: lookups.signal },
      );
      sources = await download.run(first);
      fetched = true;
      // Only a staging folder an earlier run of this fetch made (resumed): one that was there
      // before it (fetched into with --force) keeps its other files, as an output fetched into does.
      if (staged && resuming && existing && chosenFiles.length < manifest.files.length) {
        removed = await dropUnselected(
          into,
          manifest.files.filter((file) => !wanted(file.path)),
          manifest.folders.filter((folder) => !folders.has(folder)),
        );
      }
      if (staged) await moveIntoPlace(into, output);
    } catch (caught) {
      lookups.abort();
      recordProgress();
      const error = toShoalError(caught);
      const resume = options.resumeCommand ? `\`${options.resumeCommand}\`` : "the same fetch";
      const cancel = `\`peer.ts cancel ${quoteWord(chosen.name)}\``;
      // All that is left is the rename: in the way of it, something that took the output's name.
      const taken = fetched && await Deno.lstat(output).then(() => true, () => false);
      throw new ShoalError(
        error.code,
        `${error.message}; the ${
          fetched ? "whole folder is" : "files fetched so far are kept"
        } in ${into}`,
        {
          cause: error,
          hint: fetched
            ? `${taken ? `move ${output} away and ` : ""}run ${resume} again to put the ` +
              `folder in place, or ${cancel} to delete it`
            : `${error.hint ? `${error.hint}, then ` : ""}run ${resume} again to resume, ` +
              `or ${cancel} to delete the partial files`,
        },
      );
    }
    const seconds = (performance.now() - started) / 1000;
    lookups.abort();
    home.removeFolderDownload(contentId);
    const whole = !options.only?.length;
    // Not shared where this home shares something else under the name: said, not taken over.
    const other = whole ? home.share(chosen.name) : null;
    const sharedElsewhere = other && other.contentId !== chosen.contentId ? other : null;
    let unpublished: string | null = null;
    if (whole && !sharedElsewhere) {
      const contentIds = manifest.files.map(idOf);
      unpublished = await shareFetched(
        home,
        tracker,
        client,
        chosen,
        output,
        manifest,
        contentIds,
        identities,
      );
    }
    return {
      output,
      ...(movedFrom ? { movedFrom } : {}),
      ...(removed.files + removed.partial > 0 ? { removedOutside: removed } : {}),
      files: chosenFiles.length,
      size: total,
      seconds,
      resumed: resumedBytes + resumedPieceBytes,
      kept,
      sources,
      dropped: download.dropped,
      shared: whole && !sharedElsewhere,
      ...(sharedElsewhere ? { sharedElsewhere: sharedElsewhere.path } : {}),
      ...(unpublished ? { unpublished } : {}),
    };
  } finally {
    client.close();
  }
}

/**
 * The identity of the file at `path` when it already holds `file`'s content
 * (its size, then every piece's SHA-256, as a fetch verifies them), else
 * null: a folder fetched with `--force` over an earlier version of itself
 * takes again only what changed. A file that cannot be read is fetched.
 */
async function heldAlready(
  path: string,
  file: FolderFile,
  signal?: AbortSignal,
): Promise<FileIdentity | null> {
  const there = await Deno.lstat(path).catch(() => null);
  if (!there?.isFile || there.size !== file.size) return null;
  const same = (pieces: string[]) =>
    pieces.length === file.pieces.length && pieces.every((piece, i) => piece === file.pieces[i]);
  try {
    if (file.size <= SMALL_FILE_BYTES) {
      // One piece, read with one synchronous call: a folder holds thousands of them.
      const hashed = hashSmallFile(path, identityOf(there), null);
      return hashed && same(hashed.manifest.pieces) ? hashed.identity : null;
    }
    const { file: handle, identity } = await openRegularFile(path);
    try {
      const manifest = await hashFile(handle, identity.size, path, signal);
      return same(manifest.pieces) ? identity : null;
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (signal?.aborted) throw error;
    return null;
  }
}

/** Takes over a file's partial download from an earlier run, if it left one. */
async function resumePart(download: FolderDownload, index: number): Promise<void> {
  try {
    await download.resumeFrom(index);
  } catch {
    // An unusable partial file is fetched afresh.
  }
}

/** The folder's manifest from the home (kept by an earlier run or share), else from a source. */
async function cachedManifest(
  home: PeerHome,
  contentId: string,
  sources: SourceList,
  tracker: TrackerEndpoint,
  name: string,
): Promise<FolderManifest> {
  const path = home.folderManifestPath(contentId);
  const kept = await Deno.readFile(path).catch(() => null);
  if (kept) {
    try {
      return parseFolderManifest(kept, contentId, "this peer's home");
    } catch {
      // Damaged: fetched again.
    }
  }
  const fetched = await fetchFolderManifest(contentId, sources, tracker.plaintext, name);
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(temporary, fetched.text);
  await Deno.rename(temporary, path);
  return fetched.manifest;
}

/** Files from which a fetch of mostly small files writes them on a worker. */
const PLACER_FROM_FILES = 256;

/** Files whose identity is read between two turns of the event loop while a share is recorded. */
const IDENTITIES_PER_TURN = 256;

/**
 * Records a whole fetched folder as this peer's share, so it serves it too,
 * and tells the tracker; a tracker that cannot be told leaves it shared here.
 * The tracker stores the folder's members while this process reads its
 * files' identities and records them in the home (for 10,000 files each
 * takes a tenth of a second or so), and the folder is published only once
 * both are done: nobody is sent here before this peer serves it.
 */
async function shareFetched(
  home: PeerHome,
  tracker: TrackerEndpoint,
  session: TrackerClient,
  chosen: Listing,
  output: string,
  manifest: FolderManifest,
  contentIds: string[],
  placed: Map<FolderFile, FileIdentity>,
): Promise<string | null> {
  const mine = home.share(chosen.name);
  if (mine && mine.contentId !== chosen.contentId) return null;
  const ids = [...new Set(contentIds)];
  // Sent first: the tracker works on them while the files' identities are read below.
  const told = session.closed
    ? Promise.reject(new ShoalError("UNREACHABLE", "the tracker closed the session"))
    : sendMembers(session, chosen.contentId, ids);
  told.catch(() => {});
  const root = identityOf(await Deno.lstat(output));
  const share: Share = {
    name: chosen.name,
    path: await Deno.realPath(output),
    type: chosen.type,
    size: chosen.size,
    mtimeMs: root.mtimeMs,
    fileId: root.fileId,
    contentId: chosen.contentId,
    manifest: { version: 1, size: 0, pieceSize: 262144, pieces: [] },
    publishedAt: new Date().toISOString(),
    kind: "folder",
    files: manifest.files.length,
  };
  // Each file's identity as it lies in place (serving notices a file changed by it): as read when
  // the download renamed it into place, else now (a file an earlier run left). One lstat in
  // IDENTITIES_PER_TURN is awaited: the event loop then writes the batches for the tracker.
  const identities: FileIdentity[] = [];
  for (const [i, file] of manifest.files.entries()) {
    const path = join(output, file.path);
    identities.push(
      i % IDENTITIES_PER_TURN === 0
        ? identityOf(await Deno.lstat(path))
        : placed.get(file) ?? identityOf(Deno.lstatSync(path)),
    );
  }
  // Made one at a time as the home stores them: a folder of 100,000 files holds no list of them.
  function* files(): Generator<FolderFileRecord> {
    for (const [i, file] of manifest.files.entries()) {
      yield {
        relative: file.path,
        path: join(output, file.path),
        size: file.size,
        mtimeMs: identities[i].mtimeMs,
        fileId: identities[i].fileId,
        contentId: contentIds[i],
        manifest: fileManifestOf(file),
      };
    }
  }
  home.addShare(share, files());
  try {
    await told;
    await session.call("publish", {
      name: share.name,
      type: share.type,
      size: share.size,
      contentId: share.contentId,
      files: share.files,
    });
  } catch (caught) {
    // A session the tracker closed while the files came: told again on a new one.
    const folder = { share, files: files(), ids, text: null, skipped: null };
    const failed = session.closed
      ? await announceFolder(home, tracker, folder).then(() => null, toShoalError)
      : toShoalError(caught);
    // Unpublished otherwise: still shared from this home, and served once published again.
    if (failed?.code === "UNREACHABLE") return failed.message;
    if (failed) return `the tracker at ${trackerName(tracker)} refused it: ${failed.message}`;
  }
  return null;
}

/**
 * Reads paced by the download budget, with a longer grace per piece: a limit
 * this peer set itself must not make its sources look too slow.
 */
function paced(
  limiter: RateLimiter | null,
): { pace?: (bytes: number) => Promise<void>; pieceGraceMs?: number } {
  if (!limiter) return {};
  return {
    pace: (bytes) => limiter.take(bytes),
    pieceGraceMs: 10_000 + Math.ceil(64 * 1024 * 1024 / limiter.bytesPerSecond * 1000),
  };
}
