/**
 * The paths of a folder share, checked as untrusted input: a folder manifest
 * comes from the network, and every path in it becomes a file or a folder on
 * the fetcher's disk. {@link checkFolderPaths} refuses a list that breaks any
 * rule before anything is written; {@link resolveInside} turns one checked
 * path into an absolute path under the output folder, refusing to go through
 * a symlink or a file that is already there.
 */
import { join, resolve } from "node:path";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { escapeHidden, HIDDEN_CHARACTER, MAX_NAME_BYTES } from "../protocol/validate.ts";

/**
 * The suffix of a fetched file's partial download beside it (`PART_SUFFIX` of
 * downloader.ts; publishing skips such files, and no path of a folder may end so).
 */
const PART_SUFFIX = ".shoal-part";

/** Most UTF-8 bytes in one component (a file or folder name): what most disks hold. */
export const MAX_COMPONENT_BYTES = 255;
/** Most UTF-8 bytes in a whole relative path (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Most components in one path: `a/b/c` has depth 3. */
export const MAX_DEPTH = 64;
/** Most entries (files and folders) in one folder share. */
export const MAX_FOLDER_ENTRIES = 1_000_000;

/** Characters that reorder text on screen: bidi marks, embeddings, overrides and isolates. */
const TEXT_DIRECTION = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
/** C0 controls (but NUL, named on its own), DEL and C1 controls. */
const CONTROL = /\p{Cc}/u;
/** A first component Windows reads as a drive (`C:`, `c:notes`), which makes the path absolute there. */
const DRIVE = /^[A-Za-z]:/;

/** `U+202E`: how a rule names a character that may not show. */
function codePointOf(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Bytes of `text` in UTF-8, counted without encoding it (a folder has many paths). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3; // a lone surrogate too: it is encoded as U+FFFD
  }
  return bytes;
}

/**
 * The rule one relative path breaks, or null if it keeps them all: not
 * absolute (`/x`, or a drive `C:` as Windows reads it), no `\` (a separator on
 * Windows), no empty, `.` or `..` component, no NUL, control, text-direction
 * or other invisible character ({@link HIDDEN_CHARACTER}), no component over
 * {@link MAX_COMPONENT_BYTES}, no path over {@link MAX_PATH_BYTES} bytes of
 * UTF-8, no more than {@link MAX_DEPTH} components. Rules that need the whole
 * list (duplicates, case collisions, file-and-folder) are in
 * {@link checkFolderPaths}.
 */
export function folderPathProblem(path: string): string | null {
  if (path === "") return "is empty";
  if (PLAIN.test(path)) return plainPathProblem(path);
  // One test for every hidden character first: a folder has many paths, nearly all clean.
  const hidden = HIDDEN_CHARACTER.exec(path);
  if (hidden) {
    if (path.includes("\0")) return "contains a NUL character";
    const control = CONTROL.exec(path);
    if (control) return `contains the control character ${codePointOf(control[0])}`;
    const direction = TEXT_DIRECTION.exec(path);
    if (direction) {
      return `contains the text-direction character ${
        codePointOf(direction[0])
      } (it can show a name reversed)`;
    }
    return `contains the invisible character ${codePointOf(hidden[0])} (it can disguise a name)`;
  }
  if (path.startsWith("/")) return ABSOLUTE;
  if (DRIVE.test(path)) return DRIVE_LETTER;
  if (path.includes("\\")) return "contains '\\', which Windows reads as a folder separator";
  const components = path.split("/");
  for (const component of components) {
    if (component === "") return EMPTY_COMPONENT;
    if (component === ".") return DOT_COMPONENT;
    if (component === "..") return DOT_DOT_COMPONENT;
    if (utf8Length(component) > MAX_COMPONENT_BYTES) return LONG_NAME;
  }
  if (utf8Length(path) > MAX_PATH_BYTES) return LONG_PATH;
  if (components.length > MAX_DEPTH) return TOO_DEEP;
  return null;
}

const ABSOLUTE = "is absolute (paths in a folder are relative to it)";
const DRIVE_LETTER = "starts with a drive letter, which Windows reads as absolute";
const EMPTY_COMPONENT = "has an empty component ('//', or '/' at the end)";
const DOT_COMPONENT = "has a '.' component";
const DOT_DOT_COMPONENT = "has a '..' component (it would climb out of the folder)";
const LONG_NAME = `has a name over ${MAX_COMPONENT_BYTES} bytes of UTF-8`;
const LONG_PATH = `is over ${MAX_PATH_BYTES} bytes of UTF-8`;
const TOO_DEEP = `is more than ${MAX_DEPTH} folders deep`;

/**
 * Printable ASCII but the backslash (most paths): no character is hidden and each is one
 * byte of UTF-8, so {@link plainPathProblem} checks it without a copy.
 */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

/** {@link folderPathProblem} of a non-empty {@link PLAIN} path: the same rules in the same order. */
function plainPathProblem(path: string): string | null {
  if (path.charCodeAt(0) === SLASH) return ABSOLUTE;
  if (DRIVE.test(path)) return DRIVE_LETTER;
  let depth = 0;
  for (let start = 0; start <= path.length; depth++) {
    let end = path.indexOf("/", start);
    if (end === -1) end = path.length;
    const length = end - start;
    if (length === 0) return EMPTY_COMPONENT;
    if (length <= 2 && path.charCodeAt(start) === DOT) {
      if (length === 1) return DOT_COMPONENT;
      if (path.charCodeAt(start + 1) === DOT) return DOT_DOT_COMPONENT;
    }
    if (length > MAX_COMPONENT_BYTES) return LONG_NAME;
    start = end + 1;
  }
  if (path.length > MAX_PATH_BYTES) return LONG_PATH;
  if (depth > MAX_DEPTH) return TOO_DEEP;
  return null;
}

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * How a path is spelled on a disk that ignores letter case and Unicode
 * normalisation (macOS, Windows): two paths with the same key are one file there.
 */
export function collisionKey(path: string): string {
  // Printable ASCII is its own normal form: lower case is all there is to do (most paths).
  if (PRINTABLE_ASCII.test(path)) return path.toLowerCase();
  return path.normalize("NFC").toLowerCase().normalize("NFC");
}

const PRINTABLE_ASCII = /^[ -~]*$/;

/** Options of {@link checkFolderPaths}. */
export interface FolderPathOptions {
  /**
   * Paths of the list that are folders (a manifest's empty folders); every
   * other path is a file. A folder may hold other paths; a file may not.
   * @default {[]}
   */
  folders?: Iterable<string>;
  /** Who sent the list, named in the error (`alice at 10.0.0.5:7000`). */
  source?: string;
}

/** Characters of a path a message shows before and after an ellipsis. */
const SHOWN_HEAD = 100;
const SHOWN_TAIL = 60;

/** A path as a message quotes it: hidden characters escaped, a very long one shortened in the middle. */
function shown(path: string): string {
  const escaped = escapeHidden(path);
  if (escaped.length <= SHOWN_HEAD + SHOWN_TAIL + 1) return escaped;
  return `${escaped.slice(0, SHOWN_HEAD)}…${escaped.slice(-SHOWN_TAIL)}`;
}

/**
 * The error for a refused path: code UNSAFE_PATH, the rule and the path (its
 * hidden characters escaped), and the source when known.
 */
export function unsafePath(path: string, rule: string, source?: string): ShoalError {
  const from = source ? ` from ${escapeHidden(source)}` : "";
  return new ShoalError(
    "UNSAFE_PATH",
    `refused a folder${from}: the path "${shown(path)}" ${rule}`,
    { hint: "nothing was written; the folder cannot be fetched safely as its owner published it" },
  );
}

/**
 * Checks every path of a folder before anything is written: each keeps the
 * rules of {@link folderPathProblem}; no path appears twice; no two differ
 * only in letter case or Unicode normalisation (NFC/NFD), as they would be
 * one file on macOS and Windows ({@link collisionKey}); no file name over
 * `MAX_NAME_BYTES` (244: a file is fetched beside itself as `NAME.shoal-part`,
 * which must fit in 255, as for a single-file share); no file is also a
 * folder of another path (`a` and `a/b`, in any case); no name ending in
 * `.shoal-part` (in any case: `a` is fetched through `a.shoal-part`); at most
 * {@link MAX_FOLDER_ENTRIES} entries. Throws UNSAFE_PATH naming the first
 * path that breaks a rule, and the rule.
 *
 * @example
 * ```ts
 * checkFolderPaths(["notes/a.txt", "notes/b.txt"], { folders: ["empty"] });
 * checkFolderPaths(["../etc/passwd"]); // throws UNSAFE_PATH: has a '..' component
 * ```
 */
export function checkFolderPaths(
  paths: readonly string[],
  options: FolderPathOptions = {},
): void {
  const { source } = options;
  if (paths.length > MAX_FOLDER_ENTRIES) {
    throw new ShoalError(
      "UNSAFE_PATH",
      `refused a folder${source ? ` from ${escapeHidden(source)}` : ""}: it has ${paths.length} ` +
        `entries, more than the ${MAX_FOLDER_ENTRIES} a folder share may have`,
    );
  }
  const folders = new Set(options.folders ?? []);
  const byKey = new Map<string, string>();
  for (const path of paths) {
    const plain = path !== "" && PLAIN.test(path);
    const problem = plain ? plainPathProblem(path) : folderPathProblem(path);
    if (problem) throw unsafePath(path, problem, source);
    const key = plain ? path.toLowerCase() : collisionKey(path);
    const other = byKey.get(key);
    if (other === path) throw unsafePath(path, "appears twice", source);
    if (other !== undefined) {
      throw unsafePath(
        path,
        `differs from "${
          shown(other)
        }" only in letter case or Unicode normalisation (they would be one file on macOS and Windows)`,
        source,
      );
    }
    byKey.set(key, path);
    if (key.includes(PART_SUFFIX) && key.split("/").some((name) => name.endsWith(PART_SUFFIX))) {
      throw unsafePath(
        path,
        `is named as a download in progress ("${PART_SUFFIX}"), which a folder share never ` +
          "holds: fetching it would replace another file's partial download, or be replaced by it",
        source,
      );
    }
    if (!folders.has(path)) {
      const start = path.lastIndexOf("/") + 1;
      const nameBytes = plain ? path.length - start : utf8Length(path.slice(start));
      if (nameBytes > MAX_NAME_BYTES) {
        throw unsafePath(
          path,
          `has a file name over ${MAX_NAME_BYTES} bytes of UTF-8 (a download in progress adds ` +
            ".shoal-part to it, and a disk holds 255)",
          source,
        );
      }
    }
  }
  // Every folder that holds a path, by key, with one path inside it. Each
  // folder is added once, so a deep list costs its length, not its depth squared.
  const holders = new Map<string, string>();
  for (const [key, path] of byKey) {
    let end = key.lastIndexOf("/");
    while (end > 0) {
      const folder = key.slice(0, end);
      if (holders.has(folder)) break;
      holders.set(folder, path);
      end = folder.lastIndexOf("/");
    }
  }
  for (const [key, path] of byKey) {
    if (folders.has(path)) continue;
    const inside = holders.get(key);
    if (inside !== undefined) {
      throw unsafePath(
        path,
        `is a file and also a folder of "${shown(inside)}"`,
        source,
      );
    }
  }
}

/** What is already at a component, as far as the checks need; null when nothing is. */
type Found = { isSymlink: boolean; isDirectory: boolean } | null;

/**
 * The absolute path of `relativePath` under `root`, after checking each of
 * its components that `lookup` finds already there: none may be a symlink,
 * and all but the last must be folders.
 */
async function checkedPath(
  root: string,
  relativePath: string,
  lookup: (parent: string, name: string) => Found | Promise<Found>,
): Promise<string> {
  const problem = folderPathProblem(relativePath);
  if (problem) throw unsafePath(relativePath, problem);
  const components = relativePath.split("/");
  let parent = "";
  for (let depth = 0; depth < components.length; depth++) {
    const name = components[depth];
    const found = await lookup(parent, name);
    // Nothing there: nothing below it can be there either.
    if (!found) break;
    const here = parent === "" ? name : `${parent}/${name}`;
    if (found.isSymlink) {
      throw unsafePath(
        relativePath,
        `would be written through "${shown(here)}", a symlink already in ${root}`,
      );
    }
    if (depth < components.length - 1 && !found.isDirectory) {
      throw unsafePath(
        relativePath,
        `needs "${shown(here)}" to be a folder, but a file is already there in ${root}`,
      );
    }
    parent = here;
  }
  return join(root, ...components);
}

/** `lstat` of a path inside the output folder: what is there, or null. */
function lstatFound(path: string): Found {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw toShoalError(error);
  }
}

/**
 * The absolute path where `relativePath` (a path {@link checkFolderPaths}
 * accepted) is written under `outputDir`. Refuses with UNSAFE_PATH when a
 * part of it that already exists inside `outputDir` is a symlink (a file or
 * folder could land outside, wherever the link points) or, above the last
 * component, is not a folder. `outputDir` itself is the user's choice and
 * may be a symlink. For the many paths of a folder, {@link resolveAllInside}
 * does the same with one listing per folder instead of an `lstat` per component.
 *
 * @example
 * ```ts
 * const target = await resolveInside("./course", "slides/week 1.pdf");
 * ```
 */
export function resolveInside(outputDir: string, relativePath: string): Promise<string> {
  const root = resolve(outputDir);
  return checkedPath(root, relativePath, (parent, name) => lstatFound(join(root, parent, name)));
}

/**
 * {@link resolveInside} for every path of a folder at once, in order. Each
 * folder already in `outputDir` is listed once, so a fetch into a new or
 * half-fetched folder costs one `readDir` per folder rather than an `lstat`
 * (a failing one, for a file not there yet: tens of microseconds) per
 * component of every path. A name is matched as a disk that ignores case and
 * normalisation would ({@link collisionKey}), its exact spelling first: on
 * macOS `docs/x` goes through a symlink `Docs`.
 *
 * @example
 * ```ts
 * const targets = await resolveAllInside(output, manifest.files.map((file) => file.path));
 * ```
 */
export async function resolveAllInside(
  outputDir: string,
  relativePaths: readonly string[],
): Promise<string[]> {
  const root = resolve(outputDir);
  const listings = new Map<string, Map<string, Deno.DirEntry[]> | null>();
  const listing = async (folder: string) => {
    if (listings.has(folder)) return listings.get(folder)!;
    let byKey: Map<string, Deno.DirEntry[]> | null = new Map();
    try {
      for await (const entry of Deno.readDir(join(root, folder))) {
        const key = collisionKey(entry.name);
        const same = byKey.get(key);
        if (same) same.push(entry);
        else byKey.set(key, [entry]);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory)) {
        throw toShoalError(error);
      }
      byKey = null;
    }
    listings.set(folder, byKey);
    return byKey;
  };
  const lookup = async (parent: string, name: string): Promise<Found> => {
    const same = (await listing(parent))?.get(collisionKey(name));
    if (!same) return null;
    const entry = same.find((candidate) => candidate.name === name) ?? same[0];
    // A file system that does not say an entry's kind in its listing: ask.
    if (!entry.isFile && !entry.isDirectory && !entry.isSymlink) {
      return lstatFound(join(root, parent, entry.name));
    }
    return entry;
  };
  const resolved: string[] = [];
  for (const path of relativePaths) resolved.push(await checkedPath(root, path, lookup));
  return resolved;
}

/**
 * The folder a fresh folder fetch builds beside its output (`OUTPUT.shoal-part`)
 * and renames to it once every file in it verified: nothing appears under
 * the output's name until the whole folder is there, and no file needs a
 * rename of its own.
 */
export function stagingFolder(output: string): string {
  return output + PART_SUFFIX;
}

/**
 * Where the files of an unfinished folder fetch are: its staging folder
 * while it builds one (`staged`: the output did not exist when it started),
 * else the output it writes into.
 */
export function unfinishedFolderPlace(record: { output: string; staged: boolean }): string {
  return record.staged ? stagingFolder(record.output) : record.output;
}
