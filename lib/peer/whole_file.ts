/**
 * Putting whole verified files in place (a folder's files of one piece, at
 * most 256 KiB, and empty ones) without ever writing through a link planted
 * at either path: the bytes go to `<path>.shoal-part`, created exclusively
 * (`O_CREAT|O_EXCL` never follows a link at the path; whatever is there, a
 * leftover of an earlier run or a planted link, is removed and the create
 * tried again), and the part file is then renamed over `<path>` (a rename
 * replaces a link at its target, never follows it). A file so appears under
 * its name only whole, and a fetch killed in between leaves only a part file.
 *
 * With synchronous calls while the disk answers fast: measured on a folder
 * of 10,000 files of 16 KiB (two cores, the source on the same machine, both
 * busy), the asynchronous create and rename (each handed to an I/O thread,
 * its answer back to the event loop) cost the fetcher more CPU than the
 * kernel's own work, and so did a worker given batches of files (copies,
 * messages, its heap); synchronous, a file costs the kernel's create, write
 * and rename and little else. A disk slow to answer (a network file system)
 * would stall the event loop on each file, so once files take long there
 * the rest go asynchronously, several at once.
 */
import { toShoalError } from "../protocol/errors.ts";

/**
 * Writes `bytes` to `partPath` (created exclusively, replacing whatever is
 * there) and renames it to `path`; a failure (disk full, permission) is a
 * ShoalError naming the path.
 */
export function placeWholeSync(partPath: string, path: string, bytes: Uint8Array): void {
  try {
    try {
      Deno.writeFileSync(partPath, bytes, { createNew: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      Deno.removeSync(partPath);
      Deno.writeFileSync(partPath, bytes, { createNew: true });
    }
    Deno.renameSync(partPath, path);
  } catch (error) {
    throw toShoalError(error);
  }
}

/** {@link placeWholeSync} with asynchronous calls (each on an I/O thread). */
export async function placeWhole(partPath: string, path: string, bytes: Uint8Array): Promise<void> {
  try {
    try {
      await Deno.writeFile(partPath, bytes, { createNew: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      await Deno.remove(partPath);
      await Deno.writeFile(partPath, bytes, { createNew: true });
    }
    await Deno.rename(partPath, path);
  } catch (error) {
    throw toShoalError(error);
  }
}

/**
 * Milliseconds a file may take on average, written synchronously, before the
 * rest go asynchronously: a local disk takes some 0.05 (a few tenths when
 * busy), a network file system a round trip or more.
 */
const SLOW_MS = 2;

/**
 * Puts whole files in place for one download: synchronously while the disk
 * answers fast, asynchronously (the caller keeping several under way) once
 * it turned out slow.
 *
 * @example
 * ```ts
 * const files = new WholeFiles();
 * await files.place("/out/a.txt.shoal-part", "/out/a.txt", bytes);
 * ```
 */
export class WholeFiles {
  /** Milliseconds a file took, on average over the last few. */
  #averageMs = 0;
  #slow = false;
  readonly #slowMs: number;

  /** `slowMs`: the average past which files go asynchronously (tests only; default 2). */
  constructor(options: { slowMs?: number } = {}) {
    this.#slowMs = options.slowMs ?? SLOW_MS;
  }

  /** Whether files go asynchronously now (the disk answered slowly). */
  get slow(): boolean {
    return this.#slow;
  }

  /** Writes `bytes` to `partPath`, then renames it to `path` (see {@link placeWholeSync}). */
  place(partPath: string, path: string, bytes: Uint8Array): Promise<void> {
    if (this.#slow) return placeWhole(partPath, path, bytes);
    const started = performance.now();
    try {
      placeWholeSync(partPath, path, bytes);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#averageMs += (performance.now() - started - this.#averageMs) / 16;
    if (this.#averageMs > this.#slowMs) this.#slow = true;
    return Promise.resolve();
  }
}
