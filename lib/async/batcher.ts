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
  readonly #isolate: (error: unknown) => boolean;
  /** Keys waiting for the next call, each with everyone waiting for it. */
  #waiting = new Map<K, PromiseWithResolvers<V | undefined>>();
  #busy = false;

  /**
   * @param fetch answers a batch of distinct keys; a key missing from its map
   *   is answered `undefined`; a rejection rejects everyone in the batch,
   *   unless `isolate` says it may be one key's doing.
   * @param maxBatch keys in one call at most. @default {1000}
   * @param isolate whether a batch's failure may be one key's (a row gone
   *   meanwhile, say, rather than the database away): then each key of the
   *   batch is asked again alone, so only its own caller sees it fail.
   *   @default {never}
   */
  constructor(
    fetch: (keys: K[]) => Promise<Map<K, V>>,
    maxBatch = 1000,
    isolate: (error: unknown) => boolean = () => false,
  ) {
    this.#fetch = fetch;
    this.#maxBatch = Math.max(1, maxBatch);
    this.#isolate = isolate;
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
          if (batch.length === 1 || !this.#isolate(error)) {
            for (const [, waiter] of batch) waiter.reject(error);
            continue;
          }
          // One at a time, as a batch would go: each caller gets its own key's outcome.
          for (const [key, waiter] of batch) {
            try {
              waiter.resolve((await this.#fetch([key])).get(key));
            } catch (alone) {
              waiter.reject(alone);
            }
          }
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
