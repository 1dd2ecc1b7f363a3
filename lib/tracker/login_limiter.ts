import { ShoalError } from "../protocol/errors.ts";

/** Options of a {@link LoginLimiter}. */
export interface LoginLimiterOptions {
  /** Failures allowed for one username before backing off. @default {5} */
  freePerUser?: number;
  /** Failures allowed from one address (several users may share it). @default {20} */
  freePerAddress?: number;
  /** The first wait; each further failure doubles it. @default {1000} */
  baseDelayMs?: number;
  /** The longest wait. @default {300000} */
  maxDelayMs?: number;
  /** Failures older than this are forgotten. @default {900000} */
  forgetAfterMs?: number;
}

interface Record {
  failures: number;
  blockedUntil: number;
  lastFailure: number;
}

/**
 * Exponential backoff on failed password checks, per username and per
 * address, so guessing is slow however it is spread. Kept in memory: a
 * restart forgets, which only ever helps the legitimate user.
 *
 * @example
 * ```ts
 * limiter.check(username, address);   // throws RATE_LIMITED while backing off
 * ok ? limiter.succeeded(username, address) : limiter.failed(username, address);
 * ```
 */
export class LoginLimiter {
  readonly #records = new Map<string, Record>();
  readonly #options: Required<LoginLimiterOptions>;

  constructor(options: LoginLimiterOptions = {}) {
    this.#options = {
      freePerUser: options.freePerUser ?? 5,
      freePerAddress: options.freePerAddress ?? 20,
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 300_000,
      forgetAfterMs: options.forgetAfterMs ?? 900_000,
    };
  }

  /** Throws RATE_LIMITED, saying how long to wait, while either key is backing off. */
  check(username: string, address: string, now = Date.now()): void {
    this.#prune(now);
    for (const [key, what] of this.#keys(username, address)) {
      const record = this.#records.get(key);
      if (record && record.blockedUntil > now) {
        const seconds = Math.ceil((record.blockedUntil - now) / 1000);
        throw new ShoalError(
          "RATE_LIMITED",
          `too many failed logins ${what}; try again in ${seconds} s`,
        );
      }
    }
  }

  failed(username: string, address: string, now = Date.now()): void {
    for (const [key, , free] of this.#keys(username, address)) {
      const record = this.#records.get(key) ?? { failures: 0, blockedUntil: 0, lastFailure: 0 };
      record.failures++;
      record.lastFailure = now;
      if (record.failures >= free) {
        const delay = this.#options.baseDelayMs * 2 ** (record.failures - free);
        record.blockedUntil = now + Math.min(delay, this.#options.maxDelayMs);
      }
      this.#records.set(key, record);
    }
  }

  succeeded(username: string, address: string): void {
    this.#records.delete(`user:${username.toLowerCase()}`);
    this.#records.delete(`address:${address}`);
  }

  #keys(username: string, address: string): [string, string, number][] {
    return [
      [`user:${username.toLowerCase()}`, `for ${username}`, this.#options.freePerUser],
      [`address:${address}`, `from ${address}`, this.#options.freePerAddress],
    ];
  }

  #prune(now: number): void {
    if (this.#records.size < 1000) return;
    for (const [key, record] of this.#records) {
      if (now - record.lastFailure > this.#options.forgetAfterMs) this.#records.delete(key);
    }
  }
}
