/**
 * Bytes of `pieces` batches a downloader (a ticket's user) may have read
 * into this peer's memory and not yet sent. A batch needs no upload slot, so
 * without this bound one account asking for 4 MiB batches on each of its
 * connections (4 at a time each, 64 connections per address) and reading
 * none of the replies would hold a gigabyte here until the idle sweep.
 */
import { ShoalError } from "../protocol/errors.ts";
import { MAX_BATCH_BYTES } from "../protocol/messages.ts";

/**
 * Four full batches: one connection's worth at the piece server's
 * concurrency, and three times what an honest folder download keeps in
 * flight per source (4 MiB and one batch).
 */
export const BATCH_BYTES_PER_USER = 4 * MAX_BATCH_BYTES;

/**
 * The batch bytes each user holds. A batch over a user's budget is refused
 * (BUSY) rather than kept waiting: replies go out in request order, so a
 * batch waiting for room a later one of the same connection holds would
 * never get it.
 *
 * @example
 * ```ts
 * const budget = new BatchBudget();
 * const release = budget.take("bob", 1 << 20); // throws BUSY past the budget
 * // ... read the batch, send it ...
 * release();
 * ```
 */
export class BatchBudget {
  readonly #perUser: number;
  readonly #held = new Map<string, number>();

  /** @param perUser Bytes one user may hold. @default {BATCH_BYTES_PER_USER} */
  constructor(perUser = BATCH_BYTES_PER_USER) {
    this.#perUser = perUser;
  }

  /**
   * Takes `bytes` of `user`'s budget, or throws BUSY; returns what gives
   * them back (once, however often it is called).
   */
  take(user: string, bytes: number): () => void {
    const key = user.toLowerCase();
    const held = this.#held.get(key) ?? 0;
    if (held + bytes > this.#perUser) {
      throw new ShoalError(
        "BUSY",
        `${user} already has ${held} bytes of batches being sent here (at most ${this.#perUser}); ask again once they arrive`,
      );
    }
    this.#held.set(key, held + bytes);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(key) ?? bytes) - bytes;
      if (left > 0) this.#held.set(key, left);
      else this.#held.delete(key);
    };
  }
}
