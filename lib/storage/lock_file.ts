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

  /**
   * Whether any process (this one too) holds the lock at `path`, found by
   * looking, never by taking it: a look that took it, however briefly, would
   * make a {@link tryAcquire} at that moment fail as if the lock were held.
   * On Linux it reads the kernel's table of locks (`/proc/locks`); where
   * there is none to read, it falls back to taking and releasing the lock,
   * which has that flaw.
   */
  static isHeld(path: string): boolean {
    let file: Deno.FileInfo;
    try {
      file = Deno.statSync(path);
    } catch {
      // No lock file: never taken, so not now (and nothing is made to find out).
      return false;
    }
    const table = Deno.build.os === "linux" ? readLockTable() : null;
    if (table !== null && file.dev !== null && file.ino !== null) {
      return heldInTable(table, file.dev, file.ino);
    }
    let lock;
    try {
      lock = LockFile.tryAcquire(path, `pid ${Deno.pid}`);
    } catch {
      return false;
    }
    lock?.release();
    return lock === null;
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

/** The text of the kernel's table of file locks, or null where it cannot be read. */
function readLockTable(): string | null {
  try {
    return Deno.readTextFileSync("/proc/locks");
  } catch {
    return null;
  }
}

/**
 * Whether the table (`/proc/locks`) lists a lock held (not waited for) on
 * the file `ino` of device `dev`. A line reads
 * `1: FLOCK  ADVISORY  WRITE 27846 fe:00:2146338 0 EOF`; one with `->`
 * before its type is a process blocked waiting for that lock, which does not hold it.
 */
export function heldInTable(table: string, dev: number, ino: number): boolean {
  // Linux's dev_t: the minor number's low 8 bits, the major's 12, the minor's next 12, then the major's rest.
  const id = BigInt(dev);
  const major = ((id >> 8n) & 0xfffn) | ((id >> 32n) & ~0xfffn);
  const minor = (id & 0xffn) | ((id >> 12n) & ~0xffn);
  for (const line of table.split("\n")) {
    const place = line.match(/^\s*\d+:\s+\w+\s+\S+\s+\S+\s+\S+\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/);
    if (
      place && BigInt(`0x${place[1]}`) === major && BigInt(`0x${place[2]}`) === minor &&
      place[3] === String(ino)
    ) return true;
  }
  return false;
}
