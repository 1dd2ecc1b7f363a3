/**
 * Free space on the disk a download will land on, so a fetch that cannot fit
 * is refused before its first byte. Deno has no `statfs` of its own; its
 * `node:fs` has one (`statfs`, measured here under Deno 2.9.6 to agree with
 * `df`).
 */
import { statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";

/**
 * Bytes an unprivileged user may still write on the file system holding
 * `path` (or, when `path` does not exist yet, its nearest existing parent);
 * null when the system cannot tell.
 */
export async function freeBytes(path: string): Promise<number | null> {
  let current = resolve(path);
  // Bounded: each step is one folder up, and the root is its own parent.
  for (;;) {
    try {
      const stats = await statfs(current);
      return Number(stats.bavail) * Number(stats.bsize);
    } catch (error) {
      const code = (error as { code?: string }).code;
      const parent = dirname(current);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || parent === current) return null;
      current = parent;
    }
  }
}

/** `1.5 GiB`: sizes in the refusal, beside the exact bytes. */
function sizeText(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Refuses (IO) when `neededBytes` more bytes do not fit on the disk of
 * `path`, saying how much is needed and how much is free. Does nothing when
 * the system cannot tell the free space: the write then fails on its own.
 *
 * @example
 * ```ts
 * await checkFreeSpace("./course", totalBytes - bytesAlreadyHere);
 * ```
 */
export async function checkFreeSpace(path: string, neededBytes: number): Promise<void> {
  if (neededBytes <= 0) return;
  const free = await freeBytes(path);
  if (free === null || neededBytes <= free) return;
  throw new ShoalError(
    "IO",
    `not enough disk space in ${resolve(path)}: ${sizeText(neededBytes)} needed ` +
      `(${neededBytes} bytes), ${sizeText(free)} free (${free} bytes)`,
    { hint: "free some space, or fetch to another disk with --output" },
  );
}
