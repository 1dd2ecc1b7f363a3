/**
 * One tracker per database: an exclusive OS lock on a file beside it, which
 * says who holds it. A second tracker started by mistake (another terminal,
 * another port) stops before it writes anything; the one-shot admin commands
 * only read the database and take no lock.
 */
import { type Address, formatAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";

/**
 * The lock of one tracker database, held from before the store is opened
 * until the tracker stops. The OS releases it if the process dies.
 *
 * @example
 * ```ts
 * using lock = DatabaseLock.acquire("tracker.db");
 * const bound = await tracker.listen({ host: "0.0.0.0", port: 5050 });
 * lock.record(bound);
 * ```
 */
export class DatabaseLock implements Disposable {
  readonly path: string;
  readonly #file: Deno.FsFile;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Takes the lock of the database at `dbPath` (the file `dbPath.lock`), or
   * fails with `BUSY` naming the running tracker: its pid and address.
   */
  static acquire(dbPath: string): DatabaseLock {
    const path = `${dbPath}.lock`;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (error) {
      throw new ShoalError("IO", `cannot open the lock file ${path}: ${(error as Error).message}`);
    }
    if (!file.tryLockSync(true)) {
      file.close();
      const holder = readHolder(path);
      throw new ShoalError(
        "BUSY",
        `another tracker (${holder}) is already using ${dbPath}; stop it first, or pass --db FILE`,
      );
    }
    const lock = new DatabaseLock(path, file);
    lock.#write(`pid ${Deno.pid}, starting`);
    return lock;
  }

  /** Notes where this tracker listens, for the message a second one prints. */
  record(address: Address): void {
    this.#write(`pid ${Deno.pid}, listening on ${formatAddress(address)}`);
  }

  #write(text: string): void {
    this.#file.truncateSync(0);
    this.#file.seekSync(0, Deno.SeekMode.Start);
    this.#file.writeSync(new TextEncoder().encode(`${text}\n`));
  }

  /** Releases the lock; the file stays, and the next tracker overwrites it. */
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

function readHolder(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim().slice(0, 200) || "pid unknown";
  } catch {
    return "pid unknown";
  }
}
