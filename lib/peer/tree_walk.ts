/**
 * The walk of a folder being published: every file and folder under it, in
 * one order on every system, without following a symlink or opening a
 * special file (a FIFO would hang an open for ever).
 */
import { join, resolve, sep as SEP } from "node:path";
import { nextTurn } from "../async/next_turn.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { MAX_DEPTH, MAX_FOLDER_ENTRIES } from "./folder_paths.ts";

/** One file or folder under the walked folder. */
export interface TreeEntry {
  /** Relative to the walked folder, components joined with `/` (never `\`). */
  path: string;
  kind: "file" | "folder";
  /** Bytes for a file; 0 for a folder. */
  size: number;
  /** Last modification, in ms since the epoch, where the system keeps one; null otherwise. */
  mtimeMs: number | null;
  /** `device:inode` as `lstat` saw it, where the system has inodes; null otherwise. */
  fileId: string | null;
}

/** What a walk left out, by kind; see {@link describeSkipped}. */
export interface SkippedCounts {
  symlinks: number;
  fifos: number;
  sockets: number;
  /** Block and character devices. */
  devices: number;
  /** Names that are not valid UTF-8 (they cannot travel in a manifest). */
  badNames: number;
  /** Entries removed between being listed and being looked at. */
  vanished: number;
  /** Partial files of unfinished downloads (`NAME.shoal-part`): not the file they will be. */
  partials: number;
}

/** Options of {@link TreeWalk}. */
export interface TreeWalkOptions {
  /** Stops the walk: the iteration throws CANCELLED. */
  signal?: AbortSignal;
  /** Most entries (files and folders) before the walk is refused. @default {MAX_FOLDER_ENTRIES} */
  maxEntries?: number;
  /** Most components in a path before the walk is refused. @default {MAX_DEPTH} */
  maxDepth?: number;
}

/**
 * The suffix of a download's partial file (`PART_SUFFIX` of downloader.ts, which this
 * module does not import: it stays free of the protocol's dependencies).
 */
const PART_SUFFIX = ".shoal-part";

/** Entries looked at between two turns of the event loop. */
const YIELD_EVERY = 512;

/** No skips: the start of every count. */
export function noneSkipped(): SkippedCounts {
  return { symlinks: 0, fifos: 0, sockets: 0, devices: 0, badNames: 0, vanished: 0, partials: 0 };
}

const SKIP_NOUNS: [keyof SkippedCounts, string, string][] = [
  ["symlinks", "symlink", "symlinks"],
  ["fifos", "FIFO", "FIFOs"],
  ["sockets", "socket", "sockets"],
  ["devices", "device", "devices"],
  ["badNames", "name that is not UTF-8", "names that are not UTF-8"],
  ["vanished", "entry that vanished during the walk", "entries that vanished during the walk"],
  ["partials", "unfinished download (.shoal-part)", "unfinished downloads (.shoal-part)"],
];

/**
 * One line for what a walk skipped, `skipped 2 symlinks, 1 FIFO`, or the
 * empty string when it skipped nothing.
 */
export function describeSkipped(counts: SkippedCounts): string {
  const parts = SKIP_NOUNS
    .filter(([key]) => counts[key] > 0)
    .map(([key, one, many]) => `${counts[key]} ${counts[key] === 1 ? one : many}`);
  return parts.length === 0 ? "" : `skipped ${parts.join(", ")}`;
}

/** A folder's child, looked at, in the order of the walk. */
interface Child {
  /** Sort key: a folder's contents sort as `name/`, after its own entry `name`. */
  key: string;
  /** The entry itself, or (for a folder's second key) the folder to descend into. */
  entry: TreeEntry;
  descend: boolean;
}

/**
 * Walks the folder `root` (which may itself be a symlink to a folder: the
 * user named it), yielding every file and folder under it, empty ones
 * included, sorted by path in UTF-16 code-unit order (JavaScript's `<`), so a
 * folder's entry comes before its contents and `a-b` before `a/c`. Symlinks
 * are never followed, and FIFOs, sockets and devices are never opened: they
 * are counted in {@link skipped}. A tree deeper than `maxDepth` or with more
 * than `maxEntries` entries is refused (INVALID_INPUT) as soon as the walk
 * meets it; an unreadable folder fails it (IO) naming the folder.
 *
 * @example
 * ```ts
 * const walk = new TreeWalk("./course", { signal });
 * for await (const entry of walk) console.log(entry.kind, entry.path, entry.size);
 * const line = describeSkipped(walk.skipped); // "skipped 2 symlinks, 1 FIFO"
 * ```
 */
export class TreeWalk implements AsyncIterable<TreeEntry> {
  /** What the walk has left out so far; complete once the iteration ends. */
  readonly skipped: SkippedCounts = noneSkipped();
  readonly #root: string;
  /** The root and a separator, where `/` is the separator; null where it is not (Windows). */
  readonly #prefix: string | null;
  readonly #signal: AbortSignal | undefined;
  readonly #maxEntries: number;
  readonly #maxDepth: number;
  #entries = 0;
  #looked = 0;

  constructor(root: string, options: TreeWalkOptions = {}) {
    this.#root = resolve(root);
    // Paths below the root joined by hand where `/` is the separator: node's join normalises
    // every one, and the walk makes one an entry.
    this.#prefix = SEP !== "/" ? null : this.#root.endsWith("/") ? this.#root : `${this.#root}/`;
    this.#signal = options.signal;
    this.#maxEntries = options.maxEntries ?? MAX_FOLDER_ENTRIES;
    this.#maxDepth = options.maxDepth ?? MAX_DEPTH;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TreeEntry> {
    for await (const entries of this.chunks()) yield* entries;
  }

  /**
   * The same entries in the same order, a folder's worth at a time (a
   * folder's files, up to the next folder to descend into): a tree of
   * thousands of small files costs a turn of the iteration a folder, not an
   * entry.
   */
  async *chunks(): AsyncGenerator<TreeEntry[]> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.#root);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ShoalError("IO", `no such folder: ${this.#root}`, { cause: error });
      }
      throw toShoalError(error);
    }
    if (!info.isDirectory) {
      throw new ShoalError("INVALID_INPUT", `${this.#root} is not a folder`);
    }
    yield* this.#walk("", 0);
  }

  /**
   * An entry's path (`relative` to the root, `/`-separated, as the walk
   * gives it) as a path on this system.
   */
  pathOf(relative: string): string {
    if (relative === "") return this.#root;
    return this.#prefix === null ? join(this.#root, relative) : this.#prefix + relative;
  }

  #checkAborted(): void {
    if (this.#signal?.aborted) {
      throw new ShoalError("CANCELLED", `stopped walking ${this.#root}`);
    }
  }

  /** The entries of the folder `relative` (`""` for the root) with their contents' keys, in walk order. */
  async #children(relative: string, depth: number): Promise<Child[]> {
    const names: string[] = [];
    try {
      // readDirSync: one call for the folder, where readDir costs an async operation a name.
      for (const { name } of Deno.readDirSync(this.pathOf(relative))) {
        names.push(name);
        if (this.#entries + names.length > this.#maxEntries) throw this.#tooMany();
      }
    } catch (error) {
      if (error instanceof ShoalError) throw error;
      const cause = toShoalError(error);
      throw new ShoalError(
        "IO",
        // Deno's message repeats the path: keep only the reason ("Permission denied").
        `cannot read the folder ${this.pathOf(relative)}: ${
          cause.message.replace(/ \(os error \d+\).*$/s, "")
        }`,
        {
          cause: error,
          hint: "fix its permissions, or move it out of the folder, and publish again",
        },
      );
    }
    const children: Child[] = [];
    for (const name of names) {
      // Every few hundred entries the event loop gets a turn, for a progress bar and Ctrl-C.
      if (++this.#looked % YIELD_EVERY === 0) await nextTurn();
      this.#checkAborted();
      const entry = this.#look(relative === "" ? name : `${relative}/${name}`, depth);
      if (!entry) continue;
      children.push({ key: name, entry, descend: false });
      if (entry.kind === "folder") children.push({ key: `${name}/`, entry, descend: true });
    }
    return children.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }

  async *#walk(relative: string, depth: number): AsyncGenerator<TreeEntry[]> {
    this.#checkAborted();
    let chunk: TreeEntry[] = [];
    for (const child of await this.#children(relative, depth + 1)) {
      if (!child.descend) {
        chunk.push(child.entry);
        continue;
      }
      if (chunk.length > 0) yield chunk;
      chunk = [];
      this.#checkAborted();
      yield* this.#walk(child.entry.path, depth + 1);
    }
    if (chunk.length > 0) yield chunk;
  }

  #tooMany(): ShoalError {
    return new ShoalError(
      "INVALID_INPUT",
      `${this.#root} holds more than ${this.#maxEntries} files and folders, more than a ` +
        "folder share may have",
      { hint: "publish its subfolders as separate shares" },
    );
  }

  /** The entry at `path`, or null when it is skipped (and counted). */
  #look(path: string, depth: number): TreeEntry | null {
    let info: Deno.FileInfo;
    try {
      // lstatSync is three to four times faster than lstat here (no hand-off to
      // another thread per entry).
      info = Deno.lstatSync(this.pathOf(path));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw toShoalError(error);
      // Deno lists a name that is not UTF-8 with U+FFFD, which then names nothing.
      if (path.includes("\uFFFD")) this.skipped.badNames++;
      else this.skipped.vanished++;
      return null;
    }
    if (info.isSymlink) {
      this.skipped.symlinks++;
      return null;
    }
    if (info.isFifo) {
      this.skipped.fifos++;
      return null;
    }
    if (info.isSocket) {
      this.skipped.sockets++;
      return null;
    }
    if (info.isBlockDevice || info.isCharDevice || (!info.isFile && !info.isDirectory)) {
      this.skipped.devices++;
      return null;
    }
    if (info.isFile && path.endsWith(PART_SUFFIX)) {
      // A fetch still writing here (or one stopped): its pieces are not yet the file.
      this.skipped.partials++;
      return null;
    }
    if (depth > this.#maxDepth) {
      throw new ShoalError(
        "INVALID_INPUT",
        `${join(this.#root, path)} is more than ${this.#maxDepth} folders deep inside ` +
          `${this.#root}, more than a folder share may be`,
        { hint: "publish a folder further down, or flatten the tree" },
      );
    }
    if (++this.#entries > this.#maxEntries) throw this.#tooMany();
    return {
      path,
      kind: info.isDirectory ? "folder" : "file",
      size: info.isDirectory ? 0 : info.size,
      mtimeMs: info.mtime?.getTime() ?? null,
      fileId: info.ino === null ? null : `${info.dev}:${info.ino}`,
    };
  }
}
