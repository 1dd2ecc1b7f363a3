/**
 * Folder manifests: a folder is named by the SHA-256 of its manifest, a list
 * of its files (relative path, size, the SHA-256 of every piece) and of its
 * subfolders. A file's own content id follows from its entry (the one it
 * has when shared alone), so identical files are one content whichever
 * share holds them. The manifest travels as its canonical JSON text, in
 * chunks, and nothing in it is trusted until that text matches the id.
 *
 * ```json
 * {"version":1,"files":[{"path":"a/b.txt","size":3,"pieces":["<sha256 hex>"]}],"folders":["a","e"]}
 * ```
 */
import { ShoalError } from "../protocol/errors.ts";
import { type Manifest, MAX_FOLDER_MANIFEST_BYTES, MAX_PIECES } from "../protocol/messages.ts";
import { checkFolderPaths } from "./folder_paths.ts";
import { choosePieceSize, contentIdOf, sha256Hex } from "./manifest.ts";

/** One file of a folder. */
export interface FolderFile {
  /** Relative, `/`-separated. */
  path: string;
  size: number;
  /** SHA-256 of each piece, hex; the piece size follows from the size. */
  pieces: string[];
}

/** A folder's manifest: its files and every subfolder (so empty ones are kept too). */
export interface FolderManifest {
  version: 1;
  files: FolderFile[];
  folders: string[];
}

/** Orders paths one way on every system: by UTF-16 code units, as JavaScript compares. */
const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The file manifest a folder entry stands for: the content the file has when shared alone. */
export function fileManifestOf(file: { size: number; pieces: string[] }): Manifest {
  return {
    version: 1,
    size: file.size,
    pieceSize: choosePieceSize(file.size),
    pieces: file.pieces,
  };
}

/** The content id of a folder entry's file, the one it has when shared alone. */
export function fileContentId(file: { size: number; pieces: string[] }): string {
  return contentIdOf(fileManifestOf(file));
}

/**
 * {@link fileContentId} worked out once per entry (it hashes the entry's
 * piece list): a fetch needs each file's id for `holders`, for every request
 * of it, and for the share it records at the end.
 */
export function contentIdCache(): (file: FolderFile) => string {
  const known = new WeakMap<FolderFile, string>();
  return (file) => {
    let id = known.get(file);
    if (id === undefined) known.set(file, id = fileContentId(file));
    return id;
  };
}

/**
 * The canonical text of a folder manifest (entries sorted by path, keys in a
 * fixed order): what its content id is the SHA-256 of.
 */
export function encodeFolderManifest(manifest: FolderManifest): string {
  // A published folder's are in order already (its walk's): a check, not a sort.
  let files = manifest.files;
  for (let i = 1; i < files.length; i++) {
    if (files[i - 1].path > files[i].path) {
      files = [...files].sort((a, b) => byPath(a.path, b.path));
      break;
    }
  }
  let folders = manifest.folders;
  for (let i = 1; i < folders.length; i++) {
    if (folders[i - 1] > folders[i]) {
      folders = [...folders].sort(byPath);
      break;
    }
  }
  return JSON.stringify({
    version: 1,
    files: files.map(({ path, size, pieces }) => ({ path, size, pieces })),
    folders,
  });
}

/** The content id of a folder manifest's canonical text. */
export function folderContentId(text: string | Uint8Array): string {
  return sha256Hex(text);
}

/** Total bytes of a folder's files. */
export function folderSize(manifest: FolderManifest): number {
  let total = 0;
  for (const file of manifest.files) total += file.size;
  return total;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Parses a folder manifest received from the network, once its bytes matched
 * `contentId`: its shape, every file's piece list, and every path against
 * the hostile-path rules (`checkFolderPaths`). Throws INTEGRITY (or the path
 * rules' error) naming `source`; nothing is written before this returns.
 */
export function parseFolderManifest(
  bytes: Uint8Array,
  contentId: string,
  source: string,
): FolderManifest {
  const refuse = (problem: string) =>
    new ShoalError("INTEGRITY", `refused the folder manifest from ${source}: ${problem}`);
  if (bytes.length > MAX_FOLDER_MANIFEST_BYTES) throw refuse("it is too large");
  if (folderContentId(bytes) !== contentId) throw refuse("it does not match the content id");
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw refuse("it is not UTF-8 JSON");
  }
  const value = raw as Partial<FolderManifest> | null;
  if (
    typeof value !== "object" || value === null || value.version !== 1 ||
    !Array.isArray(value.files) || !Array.isArray(value.folders)
  ) {
    throw refuse("it is not a version 1 folder manifest");
  }
  // Checked in place, not copied: a folder of 100,000 files is parsed once.
  for (const entry of value.files as unknown[]) {
    const file = entry as Partial<FolderFile> | null;
    if (
      typeof file !== "object" || file === null || typeof file.path !== "string" ||
      !Number.isSafeInteger(file.size) || file.size! < 0 || !Array.isArray(file.pieces) ||
      file.pieces.length > MAX_PIECES ||
      file.pieces.length !== Math.ceil(file.size! / choosePieceSize(file.size!)) ||
      !file.pieces.every((piece) => typeof piece === "string" && HEX64.test(piece))
    ) {
      throw refuse(`a file entry is malformed (${JSON.stringify(file).slice(0, 80)})`);
    }
  }
  for (const folder of value.folders as unknown[]) {
    if (typeof folder !== "string") throw refuse("a folder entry is not a path");
  }
  const { files, folders } = value as FolderManifest;
  checkFolderPaths([...files.map((file) => file.path), ...folders], { folders, source });
  return { version: 1, files, folders };
}
