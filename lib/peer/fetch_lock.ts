/**
 * One fetch of a folder (or a file) at a time from a home: an exclusive OS lock on a
 * file in the home's `locks` folder, which says who holds it. A second fetch
 * of the same folder started by mistake (another terminal, or the shell and
 * a command at once) stops before it writes anything, instead of the two
 * writing the same staging folder, where one could put the folder in place
 * while the other was rewriting a file in it. The OS releases the lock if
 * the process dies.
 */
import { dirname, join } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { LockFile } from "../storage/lock_file.ts";
import type { PeerHome } from "./home.ts";

/** The lock file of fetching `contentId` into `home`. */
const lockPath = (home: PeerHome, contentId: string) =>
  join(home.dir, "locks", `fetch-${contentId}.lock`);

/** The error of a fetch refused because another holds the lock. */
const busy = (home: PeerHome, contentId: string, name: string) =>
  new ShoalError(
    "BUSY",
    `"${name}" is being fetched from this home already (${FetchLock.holder(home, contentId)}); ` +
      "wait for that fetch to end, or stop it, then run this one again",
  );

/**
 * The lock of one folder's fetch from one home, held from before anything
 * is written until the fetch ends.
 *
 * @example
 * ```ts
 * using lock = FetchLock.acquire(home, contentId, "course");
 * ```
 */
export class FetchLock implements Disposable {
  readonly #lock: LockFile;

  private constructor(lock: LockFile) {
    this.#lock = lock;
  }

  /**
   * Takes the lock of fetching `contentId` (shared as `name`) into `home`,
   * or fails with BUSY naming the process that holds it.
   */
  static acquire(home: PeerHome, contentId: string, name: string): FetchLock {
    const path = lockPath(home, contentId);
    const folder = dirname(path);
    try {
      Deno.mkdirSync(folder, { recursive: true });
    } catch (error) {
      throw new ShoalError("IO", `cannot make ${folder}: ${(error as Error).message}`);
    }
    const lock = LockFile.tryAcquire(path, `pid ${Deno.pid}`);
    if (!lock) throw busy(home, contentId, name);
    return new FetchLock(lock);
  }

  /** Who holds the lock of fetching `contentId` into `home`, as it wrote (`pid 123`). */
  static holder(home: PeerHome, contentId: string): string {
    return LockFile.holder(lockPath(home, contentId));
  }

  /**
   * Whether a fetch of `contentId` into `home` runs now (in any process, this
   * one's too). It only looks: a fetch starting at that moment is never refused for it.
   */
  static isHeld(home: PeerHome, contentId: string): boolean {
    return LockFile.isHeld(lockPath(home, contentId));
  }

  /** Fails as {@link acquire} does while another fetch holds the lock; only looks, as {@link isHeld}. */
  static check(home: PeerHome, contentId: string, name: string): void {
    if (FetchLock.isHeld(home, contentId)) throw busy(home, contentId, name);
  }

  /** Releases the lock; the file stays, and the next fetch overwrites it. */
  release(): void {
    this.#lock.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
