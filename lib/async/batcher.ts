/**
 * Answers many single-key questions with few calls: a key asked while no
 * call is under way goes out at once, alone; keys asked while one is under
 * way wait and go out together in the next call (at most `maxBatch` a call).
 * So a quiet caller pays no delay, and a busy one pays one call per round
 * trip instead of one per key. Used by the tracker so that thousands of
 * peers' heartbeats cost a few database round trips, not thousands.
 *
 * @example
 * ```ts
 * const users = new Batcher((hashes: string[]) => store.sessionUsers(hashes));
 * const username = await users.get(tokenHash); // undefined: no such session
 * ```
 */
export class Batcher<K, V> {
  readonly #fetch: (keys: K[]) => Promise<Map<K, V>>;
  readonly #maxBatch: number;
  /** Keys waiting for the next call, each with everyone waiting for it. */
  #waiting = new Map<K, PromiseWithResolvers<V | undefined>>();
  #busy = false;

  /**
   * @param fetch answers a batch of distinct keys; a key missing from its map
   *   is answered `undefined`; a rejection rejects everyone in the batch.
   * @param maxBatch keys in one call at most. @default {1000}
   */
  constructor(fetch: (keys: K[]) => Promise<Map<K, V>>, maxBatch = 1000) {
    this.#fetch = fetch;
    this.#maxBatch = Math.max(1, maxBatch);
  }

  /** The value for `key`, from the call under way next (asked twice at once: asked once). */
  get(key: K): Promise<V | undefined> {
    let waiter = this.#waiting.get(key);
    if (!waiter) {
      waiter = Promise.withResolvers<V | undefined>();
      this.#waiting.set(key, waiter);
    }
    if (!this.#busy) void this.#drain();
    return waiter.promise;
  }

  /** Makes calls until nobody waits: one at a time, each with what gathered meanwhile. */
  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#waiting.size > 0) {
        const batch = [...this.#waiting].slice(0, this.#maxBatch);
        for (const [key] of batch) this.#waiting.delete(key);
        try {
          const found = await this.#fetch(batch.map(([key]) => key));
          for (const [key, waiter] of batch) waiter.resolve(found.get(key));
        } catch (error) {
          for (const [, waiter] of batch) waiter.reject(error);
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
