/**
 * What says a file on disk is still the one that was hashed. Imports
 * nothing, so the workers that hash and place files use it too.
 */

/**
 * Which file it is (`device:inode`, null where the system has no inode
 * numbers), its size and modification time. A symbolic link swapped in, or
 * another file renamed over it with the same size and time, changes `fileId`.
 */
export interface FileIdentity {
  fileId: string | null;
  size: number;
  mtimeMs: number;
}

/** The identity of a file as `Deno.lstat` (or `stat`) sees it. */
export function identityOf(info: Deno.FileInfo): FileIdentity {
  return {
    fileId: info.ino === null ? null : `${info.dev}:${info.ino}`,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
  };
}
