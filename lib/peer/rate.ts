/**
 * Transfer rates: parsing what a person types (`500KiB/s`, `20MB/s`,
 * `100Mbit/s`, or plain bytes a second), and the limiter that holds a
 * process's uploads (or downloads) to one budget.
 */
import { ShoalError } from "../protocol/errors.ts";

/**
 * Bytes a second of each unit, by its lowercase spelling; `/s` is optional.
 * A lone lowercase `b` (`Mb`) is refused as ambiguous before this is read.
 */
const UNITS: Record<string, number> = {
  "": 1,
  "b": 1,
  "kb": 1e3,
  "mb": 1e6,
  "gb": 1e9,
  "kib": 1024,
  "mib": 1024 ** 2,
  "gib": 1024 ** 3,
  "bit": 1 / 8,
  "kbit": 1e3 / 8,
  "mbit": 1e6 / 8,
  "gbit": 1e9 / 8,
};

/** How a rate is written, for messages. */
export const RATE_EXAMPLES =
  "write a rate like 500KiB/s, 20MB/s, 100Mbit/s or a number of bytes a second";

/**
 * Parses a rate into bytes a second. Units: B, kB/KB, MB, GB (powers of
 * 1000), KiB, MiB, GiB (powers of 1024), bit, kbit, Mbit, Gbit; each with an
 * optional `/s`. A bare number is bytes a second. Throws INVALID_INPUT
 * naming the accepted forms.
 *
 * @example
 * ```ts
 * parseRate("500KiB/s"); // 512000
 * parseRate("100Mbit/s"); // 12500000
 * ```
 */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)(\/s)?\s*$/.exec(text);
  if (!match) {
    throw new ShoalError("INVALID_INPUT", `not a rate: "${text}"`, { hint: RATE_EXAMPLES });
  }
  const [, number, unit] = match;
  if (/^[kmg]?b$/i.test(unit) && unit.endsWith("b")) {
    throw new ShoalError(
      "INVALID_INPUT",
      `"${unit}" could mean bits or bytes in "${text}": write ${
        unit.slice(0, -1).toUpperCase()
      }B/s for bytes or ${unit.slice(0, -1).toUpperCase()}bit/s for bits`,
      { hint: RATE_EXAMPLES },
    );
  }
  const perUnit = UNITS[unit.toLowerCase()];
  if (perUnit === undefined) {
    throw new ShoalError(
      "INVALID_INPUT",
      `unknown rate unit "${unit}" in "${text}" (use B, kB, MB, GB, KiB, MiB, GiB, kbit, Mbit, Gbit)`,
      { hint: RATE_EXAMPLES },
    );
  }
  const bytes = Math.floor(Number(number) * perUnit);
  if (bytes < 1) {
    throw new ShoalError(
      "INVALID_INPUT",
      `a rate must be at least 1 byte a second, not "${text}"`,
      { hint: RATE_EXAMPLES },
    );
  }
  return bytes;
}

/** Largest piece of a write (or read) paced at once: pieces are paced in chunks, not whole. */
export const PACE_CHUNK_BYTES = 64 * 1024;

/** Options of a {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** The budget, bytes a second. */
  bytesPerSecond: number;
  /**
   * The most that may go out at once after a quiet spell, as a time at the
   * full rate; at least one chunk ({@link PACE_CHUNK_BYTES}).
   * @default {100}
   */
  burstMs?: number;
  /** The clock, in milliseconds (tests inject one). @default {performance.now} */
  now?: () => number;
  /** Waits `ms` (tests inject one). @default {a timer} */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A token bucket refilled continuously at the budget, holding at most a
 * short burst, shared by every connection of a process: each sender asks
 * for the bytes it is about to send (or has just read) and waits until the
 * bucket holds them. A request larger than the bucket drives it into debt,
 * which later requests wait out, so the long-run rate is the budget whatever
 * the chunk sizes. Waiters go in the order they asked.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ bytesPerSecond: parseRate("20MB/s") });
 * for (const chunk of chunks) { await limiter.take(chunk.length); await write(chunk); }
 * ```
 */
export class RateLimiter {
  #bytesPerSecond: number;
  #capacity: number;
  readonly #burstMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #updatedAt: number;
  /** The last caller in line: each waits for the one before it, so the order is kept. */
  #tail: Promise<void> = Promise.resolve();

  constructor(options: RateLimiterOptions) {
    this.#burstMs = options.burstMs ?? 100;
    this.#bytesPerSecond = 0;
    this.#capacity = 0;
    this.#setRate(options.bytesPerSecond);
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#tokens = this.#capacity;
    this.#updatedAt = this.#now();
  }

  /** The budget, bytes a second. */
  get bytesPerSecond(): number {
    return this.#bytesPerSecond;
  }

  /** Changes the budget from now on; what is already owed or saved stays. */
  set bytesPerSecond(bytesPerSecond: number) {
    this.#refill();
    this.#setRate(bytesPerSecond);
    this.#tokens = Math.min(this.#tokens, this.#capacity);
  }

  #setRate(bytesPerSecond: number): void {
    if (!(bytesPerSecond > 0)) throw new RangeError("bytesPerSecond must be positive");
    this.#bytesPerSecond = bytesPerSecond;
    this.#capacity = Math.max(PACE_CHUNK_BYTES, bytesPerSecond * this.#burstMs / 1000);
  }

  /** Bytes that may go out right now (negative while in debt). */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Resolves once `bytes` may be sent; they are counted as sent from then. */
  take(bytes: number): Promise<void> {
    const turn = this.#tail.then(() => this.#waitFor(bytes));
    this.#tail = turn;
    return turn;
  }

  async #waitFor(bytes: number): Promise<void> {
    // Wait until the bucket is out of debt and holds the request, or is full: a request over the
    // capacity then takes what it needs and leaves the debt to the next.
    for (;;) {
      this.#refill();
      const need = Math.min(bytes, this.#capacity);
      // A hair of slack: refills are floating point, and a wait for a millionth of a byte is a bug.
      if (this.#tokens + 1e-6 >= need) break;
      await this.#sleep(Math.max(1, (need - this.#tokens) / this.#bytesPerSecond * 1000));
    }
    this.#tokens -= bytes;
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#updatedAt = now;
    this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#bytesPerSecond / 1000);
  }
}

/**
 * Chunks of `bytes` of at most {@link PACE_CHUNK_BYTES}, each released by
 * `limiter` before it is yielded; without a limiter, the bytes whole.
 */
export async function* paced(
  bytes: Uint8Array,
  limiter: RateLimiter | null,
): AsyncIterable<Uint8Array> {
  if (!limiter) {
    yield bytes;
    return;
  }
  for (let at = 0; at < bytes.length; at += PACE_CHUNK_BYTES) {
    const chunk = bytes.subarray(at, at + PACE_CHUNK_BYTES);
    await limiter.take(chunk.length);
    yield chunk;
  }
}

/** The process's budgets, one per direction, shared by every server and download in it. */
const budgets = new Map<"upload" | "download", RateLimiter>();

/**
 * The process-wide limiter for `direction` at `bytesPerSecond`, or null for
 * no limit. There is one bucket per direction in a process, shared by every
 * caller (the shell's `serve` and the fetches it runs); a caller giving
 * another rate changes it for all, the last rate given applying.
 */
export function processBudget(
  direction: "upload" | "download",
  bytesPerSecond: number | null | undefined,
): RateLimiter | null {
  if (!bytesPerSecond) return null;
  const current = budgets.get(direction);
  if (current) {
    if (current.bytesPerSecond !== bytesPerSecond) current.bytesPerSecond = bytesPerSecond;
    return current;
  }
  const limiter = new RateLimiter({ bytesPerSecond });
  budgets.set(direction, limiter);
  return limiter;
}
