/**
 * An exclusive OS lock on a file that says who holds it: what keeps a second
 * process started by mistake (a tracker on the same database, a fetch of the
 * same folder) from writing what the first one writes. The OS releases it if
 * the process dies; the file stays, and the next holder overwrites it.
 */
import { ShoalError } from "../protocol/errors.ts";

/**
 * A held lock file.
 *
 * @example
 * ```ts
 * const lock = LockFile.tryAcquire("tracker.db.lock", `pid ${Deno.pid}`);
 * if (!lock) throw new Error(`held by ${LockFile.holder("tracker.db.lock")}`);
 * ```
 */
export class LockFile implements Disposable {
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Takes the lock at `path` and writes `note` into it (who holds it), or
   * returns null where another process (or another open of it here) holds
   * it. Fails with IO when the file cannot be opened.
   */
  static tryAcquire(path: string, note: string): LockFile | null {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (error) {
      throw new ShoalError("IO", `cannot open the lock file ${path}: ${(error as Error).message}`);
    }
    if (!file.tryLockSync(true)) {
      file.close();
      return null;
    }
    const lock = new LockFile(file);
    lock.note(note);
    return lock;
  }

  /** What the holder of the lock at `path` wrote about itself ("pid unknown" if nothing). */
  static holder(path: string): string {
    try {
      return Deno.readTextFileSync(path).trim().slice(0, 200) || "pid unknown";
    } catch {
      return "pid unknown";
    }
  }

  /** Replaces what the file says of its holder. */
  note(text: string): void {
    this.#file.truncateSync(0);
    this.#file.seekSync(0, Deno.SeekMode.Start);
    this.#file.writeSync(new TextEncoder().encode(`${text}\n`));
  }

  /** Releases the lock; the file stays. */
  release(): void {
    try {
      this.#file.unlockSync();
    } finally {
      this.#file.close();
    }
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
