/**
 * Putting whole verified files in place (a folder's files of one piece, at
 * most 256 KiB, and empty ones) without ever writing through a link planted
 * at either path: the bytes go to `<path>.shoal-part`, created exclusively
 * (`O_CREAT|O_EXCL` never follows a link at the path; whatever is there, a
 * leftover of an earlier run or a planted link, is removed and the create
 * tried again), and the part file is then renamed over `<path>` (a rename
 * replaces a link at its target, never follows it). A file so appears under
 * its name only whole, and a fetch killed in between leaves only a part file.
 * Where nobody looks until the whole folder is there (a fetch's staging
 * folder), the part path is the path itself and there is no rename.
 *
 * With synchronous calls while the disk answers fast: measured on a folder
 * of 10,000 files of 16 KiB (two cores, the source on the same machine, both
 * busy), the asynchronous create and rename (each handed to an I/O thread,
 * its answer back to the event loop) cost the fetcher more CPU than the
 * kernel's own work; synchronous, a file costs the kernel's create, write and
 * rename and little else. (The files of `pieces` batches are mostly placed
 * on a worker: batch_placer.ts.) A disk slow to create files (an ext4 after
 * many deletions, a network file system) would stall the event loop on each,
 * so while files take long there they go asynchronously, several at once.
 */
import { toShoalError } from "../protocol/errors.ts";

/**
 * Writes `bytes` to `partPath` (created exclusively, replacing whatever is
 * there) and renames it to `path` (unless they are one); a failure (disk
 * full, permission) is a ShoalError naming the path.
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
    if (partPath !== path) Deno.renameSync(partPath, path);
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
    if (partPath !== path) await Deno.rename(partPath, path);
  } catch (error) {
    throw toShoalError(error);
  }
}

/**
 * Milliseconds a file may take on average, written synchronously, before the
 * next ones go asynchronously: a local disk here takes 0.04 to 0.1 (its
 * kernel work); where a file takes much longer, a fetch is faster with the
 * files on I/O threads, 16 at once (an ext4 without a journal walking the
 * inodes freed in the last minutes, 0.5 to 2 ms a file: 10,000 files of
 * 16 KiB fetched into a loop-mounted one just after 30,000 deletions took
 * 10 to 11 s so, 13 s synchronously; a network file system, a round trip
 * or more a file).
 */
const SLOW_MS = 0.25;
/** Milliseconds on average under which files go synchronously again. */
const FAST_MS = 0.125;
/** While files go asynchronously, one in this many is written synchronously, to time it. */
const PROBE_EVERY = 128;

/**
 * Puts whole files in place for one download: synchronously while the disk
 * answers fast, asynchronously (the caller keeping several under way) while
 * it answers slowly, timing one file now and then to tell.
 *
 * @example
 * ```ts
 * const files = new WholeFiles();
 * await files.place("/out/a.txt.shoal-part", "/out/a.txt", bytes);
 * ```
 */
export class WholeFiles {
  /** Milliseconds a file took synchronously, on average over the last few timed. */
  #averageMs = 0;
  #slow = false;
  /** Files placed asynchronously since the last one timed. */
  #untimed = 0;
  readonly #slowMs: number;
  readonly #fastMs: number;

  /** The averages past which files go asynchronously and back (tests only; defaults 0.25, 0.125). */
  constructor(options: { slowMs?: number; fastMs?: number } = {}) {
    this.#slowMs = options.slowMs ?? SLOW_MS;
    this.#fastMs = options.fastMs ?? FAST_MS;
  }

  /** Whether files go asynchronously now (the disk answered slowly). */
  get slow(): boolean {
    return this.#slow;
  }

  /** Writes `bytes` to `partPath`, then renames it to `path` (see {@link placeWholeSync}). */
  place(partPath: string, path: string, bytes: Uint8Array): Promise<void> {
    if (this.#slow && ++this.#untimed < PROBE_EVERY) return placeWhole(partPath, path, bytes);
    this.#untimed = 0;
    const started = performance.now();
    try {
      placeWholeSync(partPath, path, bytes);
    } catch (error) {
      return Promise.reject(error);
    }
    this.observe(performance.now() - started);
    return Promise.resolve();
  }

  /**
   * Counts a file placed synchronously in `tookMs`, here or on a worker
   * (each of a batch there at its batch's average).
   */
  observe(tookMs: number): void {
    // Timed files are rare while slow: each weighs more then.
    this.#averageMs += (tookMs - this.#averageMs) / (this.#slow ? 4 : 32);
    if (!this.#slow && this.#averageMs > this.#slowMs) this.#slow = true;
    else if (this.#slow && this.#averageMs < this.#fastMs) this.#slow = false;
  }
}
