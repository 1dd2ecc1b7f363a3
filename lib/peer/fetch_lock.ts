/**
 * One fetch of a folder at a time from a home: an exclusive OS lock on a
 * file in the home's `locks` folder, which says who holds it. A second fetch
 * of the same folder started by mistake (another terminal, or the shell and
 * a command at once) stops before it writes anything, instead of the two
 * writing the same staging folder, where one could put the folder in place
 * while the other was rewriting a file in it. The OS releases the lock if
 * the process dies.
 */
import { join } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import type { PeerHome } from "./home.ts";

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
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Takes the lock of fetching `contentId` (shared as `name`) into `home`,
   * or fails with BUSY naming the process that holds it.
   */
  static acquire(home: PeerHome, contentId: string, name: string): FetchLock {
    const folder = join(home.dir, "locks");
    const path = join(folder, `fetch-${contentId}.lock`);
    let file: Deno.FsFile;
    try {
      Deno.mkdirSync(folder, { recursive: true });
      file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (error) {
      throw new ShoalError("IO", `cannot open the lock file ${path}: ${(error as Error).message}`);
    }
    if (!file.tryLockSync(true)) {
      file.close();
      const holder = Deno.readTextFileSync(path).trim() || "another process";
      throw new ShoalError(
        "BUSY",
        `"${name}" is being fetched from this home already (${holder}); ` +
          "wait for that fetch to end, or stop it, then run this one again",
      );
    }
    file.truncateSync(0);
    file.writeSync(new TextEncoder().encode(`pid ${Deno.pid}\n`));
    return new FetchLock(file);
  }

  /** Fails as {@link acquire} does while another fetch holds the lock; takes nothing. */
  static check(home: PeerHome, contentId: string, name: string): void {
    FetchLock.acquire(home, contentId, name).release();
  }

  /** Releases the lock; the file stays, and the next fetch overwrites it. */
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
