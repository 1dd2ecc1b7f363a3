import { sleep } from "../async/delay.ts";
import { toShoalError } from "./errors.ts";

/** Options of an {@link AcceptBackoff}. */
export interface AcceptBackoffOptions {
  /** The wait after the first failure in a row, in milliseconds. @default {5} */
  firstMs?: number;
  /** The longest wait, in milliseconds. @default {1000} */
  maxMs?: number;
}

/**
 * How long an accept loop waits after a failing `accept` (say, EMFILE: no
 * descriptor left) before trying again: a wait that doubles with each
 * failure in a row up to a ceiling, and starts over after a success. A loop
 * that retried at once would spin on a CPU, and write a warning each time,
 * for as long as the cause lasts (Syncthing's and Go's accept loops do the
 * same).
 *
 * @example
 * ```ts
 * const backoff = new AcceptBackoff();
 * backoff.fail(); // 5
 * backoff.fail(); // 10
 * backoff.succeed();
 * backoff.fail(); // 5 again
 * ```
 */
export class AcceptBackoff {
  readonly #firstMs: number;
  readonly #maxMs: number;
  #nextMs: number;

  constructor(options: AcceptBackoffOptions = {}) {
    this.#firstMs = options.firstMs ?? 5;
    this.#maxMs = options.maxMs ?? 1000;
    this.#nextMs = this.#firstMs;
  }

  /** Notes a failed accept; returns how long to wait before the next one, in milliseconds. */
  fail(): number {
    const waitMs = Math.min(this.#nextMs, this.#maxMs);
    this.#nextMs = Math.min(this.#nextMs * 2, this.#maxMs);
    return waitMs;
  }

  /** Notes a successful accept: the next failure waits the shortest time again. */
  succeed(): void {
    this.#nextMs = this.#firstMs;
  }
}

/**
 * Accepts `listener`'s connections and hands each to `admit`, until the
 * listener is closed (its `accept` rejects with BadResource or Interrupted)
 * or `signal` aborts. A failing accept (say, EMFILE: no descriptor left)
 * is told to `warn` in one line and waits as an {@link AcceptBackoff} says,
 * a wait that `signal` cuts short.
 */
export async function acceptEach<C>(
  listener: { accept(): Promise<C> },
  admit: (conn: C) => void,
  { signal, warn }: { signal: AbortSignal; warn: (line: string) => void },
): Promise<void> {
  const backoff = new AcceptBackoff();
  while (!signal.aborted) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        return;
      }
      // Retrying at once would spin, and warn, for as long as it lasts.
      const waitMs = backoff.fail();
      warn(`accept failed: ${toShoalError(error).message}; next try in ${waitMs} ms`);
      await sleep(waitMs, signal);
      continue;
    }
    backoff.succeed();
    admit(conn);
  }
}
