/**
 * One tracker per database: an exclusive OS lock on a file beside it, which
 * says who holds it. A second tracker started by mistake (another terminal,
 * another port) stops before it writes anything; the one-shot admin commands
 * only read the database and take no lock.
 */
import { dirname, resolve } from "node:path";
import { type Address, formatAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";
import { LockFile } from "../storage/lock_file.ts";

function isFolder(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

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
  readonly #lock: LockFile;

  private constructor(path: string, lock: LockFile) {
    this.path = path;
    this.#lock = lock;
  }

  /**
   * Takes the lock of the database at `dbPath` (the file `dbPath.lock`), or
   * fails with `BUSY` naming the running tracker: its pid and address.
   */
  static acquire(dbPath: string): DatabaseLock {
    const path = `${dbPath}.lock`;
    // A --db in a folder that is not there (a typo, a folder not made yet): said as such, not
    // as the lock file's raw "No such file or directory".
    const folder = dirname(resolve(dbPath));
    if (!isFolder(folder)) {
      throw new ShoalError(
        "IO",
        `cannot make the database ${dbPath}: the folder ${folder} does not exist`,
        { hint: `create it first (mkdir -p ${folder}), or pass --db a file in a folder that is` },
      );
    }
    const lock = LockFile.tryAcquire(path, `pid ${Deno.pid}, starting`);
    if (!lock) {
      throw new ShoalError(
        "BUSY",
        `another tracker (${
          LockFile.holder(path)
        }) is already using ${dbPath}; stop it first, or pass --db FILE`,
      );
    }
    return new DatabaseLock(path, lock);
  }

  /** Notes where this tracker listens, for the message a second one prints. */
  record(address: Address): void {
    this.#lock.note(`pid ${Deno.pid}, listening on ${formatAddress(address)}`);
  }

  /** Releases the lock; the file stays, and the next tracker overwrites it. */
  release(): void {
    this.#lock.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
