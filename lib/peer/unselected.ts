/**
 * What a folder fetch narrowed by `--only` does with the files an earlier,
 * wider run of it left (a whole fetch interrupted, then resumed with
 * `--only`): the folder put in place holds exactly the new selection, and
 * what was removed for that is counted, for the fetch to say.
 */
import { PART_SUFFIX } from "./downloader.ts";
import type { FolderFile } from "./folder_manifest.ts";
import { resolveInside } from "./folder_paths.ts";

/** What a fetch narrower than an earlier run of it removed of that run's files outside it. */
export interface RemovedOutside {
  /** Whole files (verified by that run), and their bytes. */
  files: number;
  bytes: number;
  /** Files cut short or partial (`NAME.shoal-part`). */
  partial: number;
}

/**
 * Removes from `staging`, a staging folder about to become its output, what
 * an earlier run of this fetch (a wider `--only`, or none) left outside the
 * files this run selects, so that the folder put in place holds exactly the
 * selection: every such file (whole, cut short or partial) and the folders
 * that leaves empty. Nothing but the manifest's own paths, and only through
 * no link (resolveInside), as `cancel` deletes. A folder fetched into
 * (`--force`) is never pruned: it was there before the fetch, and its
 * partial files stay for a later fetch with `--force` to take up.
 */
export async function dropUnselected(
  staging: string,
  outside: readonly FolderFile[],
  emptyFolders: readonly string[],
): Promise<RemovedOutside> {
  const removed: RemovedOutside = { files: 0, bytes: 0, partial: 0 };
  const folders = new Set(emptyFolders);
  for (const file of outside) {
    const path = await resolveInside(staging, file.path).catch(() => null);
    if (path === null) continue;
    for (let at = file.path.indexOf("/"); at > 0; at = file.path.indexOf("/", at + 1)) {
      folders.add(file.path.slice(0, at));
    }
    if (await Deno.remove(path + PART_SUFFIX).then(() => true, () => false)) removed.partial++;
    const there = await Deno.lstat(path).catch(() => null);
    if (!there?.isFile || !await Deno.remove(path).then(() => true, () => false)) continue;
    if (there.size === file.size) {
      removed.files++;
      removed.bytes += there.size;
    } else removed.partial++;
  }
  // Deepest first; one that still holds anything (of the selection, or not the fetch's) stays.
  for (const folder of [...folders].sort((a, b) => b.length - a.length)) {
    const path = await resolveInside(staging, folder).catch(() => null);
    if (path !== null) await Deno.remove(path).catch(() => {});
  }
  return removed;
}
