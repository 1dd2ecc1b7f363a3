import { ShoalError } from "../protocol/errors.ts";

/** Options of a {@link RegisterLimiter}. */
export interface RegisterLimiterOptions {
  /** New accounts one address may create in a burst. @default {10} */
  burstPerAddress?: number;
  /** Then one more per this many ms from that address. @default {60000} */
  intervalPerAddressMs?: number;
  /** New accounts all addresses together may create in a burst. @default {60} */
  burstTotal?: number;
  /** Then one more per this many ms in total. @default {2000} */
  intervalTotalMs?: number;
}

/** A token bucket: `tokens` left as of `at`. */
export interface RegistrationBucket {
  tokens: number;
  at: number;
}

/**
 * Bounds account creation, per address and in total, with token buckets:
 * a flood of `register` can neither fill the database nor keep scrypt busy
 * for the logins of people who already have accounts. Kept in memory.
 *
 * @example
 * ```ts
 * limiter.take(address); // throws RATE_LIMITED, saying how long to wait
 * ```
 */
export class RegisterLimiter {
  readonly #options: Required<RegisterLimiterOptions>;
  readonly #perAddress = new Map<string, RegistrationBucket>();
  readonly #total: RegistrationBucket;

  constructor(options: RegisterLimiterOptions = {}) {
    this.#options = {
      burstPerAddress: options.burstPerAddress ?? 10,
      intervalPerAddressMs: options.intervalPerAddressMs ?? 60_000,
      burstTotal: options.burstTotal ?? 60,
      intervalTotalMs: options.intervalTotalMs ?? 2_000,
    };
    this.#total = { tokens: this.#options.burstTotal, at: 0 };
  }

  /** Takes one registration for `address`, or throws RATE_LIMITED without taking any. */
  take(address: string, now = Date.now()): void {
    const { burstPerAddress, intervalPerAddressMs, burstTotal, intervalTotalMs } = this.#options;
    const own = this.#perAddress.get(address) ?? { tokens: burstPerAddress, at: now };
    refill(own, now, burstPerAddress, intervalPerAddressMs);
    refill(this.#total, now, burstTotal, intervalTotalMs);
    if (own.tokens < 1) {
      throw limited("from your address", (1 - own.tokens) * intervalPerAddressMs);
    }
    if (this.#total.tokens < 1) {
      throw limited("on this tracker", (1 - this.#total.tokens) * intervalTotalMs);
    }
    own.tokens--;
    this.#total.tokens--;
    this.#perAddress.set(address, own);
    this.#prune(now);
  }

  /**
   * As {@link take}, on buckets a store shared by several processes keeps:
   * given the address's and the whole tracker's buckets as stored (null for
   * one never taken from: full), returns both after taking one, or throws
   * RATE_LIMITED.
   */
  takeFrom(
    own: RegistrationBucket | null,
    total: RegistrationBucket | null,
    now = Date.now(),
  ): { own: RegistrationBucket; total: RegistrationBucket } {
    const { burstPerAddress, intervalPerAddressMs, burstTotal, intervalTotalMs } = this.#options;
    const mine = own ? { ...own } : { tokens: burstPerAddress, at: now };
    const all = total ? { ...total } : { tokens: burstTotal, at: now };
    refill(mine, now, burstPerAddress, intervalPerAddressMs);
    refill(all, now, burstTotal, intervalTotalMs);
    if (mine.tokens < 1) {
      throw limited("from your address", (1 - mine.tokens) * intervalPerAddressMs);
    }
    if (all.tokens < 1) throw limited("on this tracker", (1 - all.tokens) * intervalTotalMs);
    mine.tokens--;
    all.tokens--;
    return { own: mine, total: all };
  }

  /** An address's bucket untouched this long is full again (and holds no state). */
  get fullAfterMs(): number {
    return this.#options.burstPerAddress * this.#options.intervalPerAddressMs;
  }

  /** Drops full buckets now and then (they hold no state), so the map stays small. */
  #prune(now: number): void {
    if (this.#perAddress.size < 1000) return;
    const { burstPerAddress, intervalPerAddressMs } = this.#options;
    for (const [address, bucket] of this.#perAddress) {
      refill(bucket, now, burstPerAddress, intervalPerAddressMs);
      if (bucket.tokens >= burstPerAddress) this.#perAddress.delete(address);
    }
  }
}

function refill(bucket: RegistrationBucket, now: number, burst: number, intervalMs: number): void {
  bucket.tokens = Math.min(burst, bucket.tokens + Math.max(0, now - bucket.at) / intervalMs);
  bucket.at = now;
}

function limited(where: string, waitMs: number): ShoalError {
  return new ShoalError(
    "RATE_LIMITED",
    `too many new accounts ${where}; try again in ${Math.max(1, Math.ceil(waitMs / 1000))} s`,
  );
}
