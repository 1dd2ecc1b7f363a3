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
  /** Password checks under way: a burst in parallel counts before any of it fails. */
  pending: number;
}

/** One password check under way; settle it exactly once. */
export interface LoginAttempt {
  failed(now?: number): void;
  succeeded(): void;
  /** Ends the attempt without counting it (the check itself broke). */
  abandon(): void;
}

/**
 * Exponential backoff on failed password checks, per username and per
 * address, so guessing is slow however it is spread. Kept in memory: a
 * restart forgets, which only ever helps the legitimate user.
 *
 * @example
 * ```ts
 * const attempt = limiter.begin(username, address); // throws RATE_LIMITED while backing off
 * ok ? attempt.succeeded() : attempt.failed();
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
    for (const [key, what, free] of this.#keys(username, address)) {
      const record = this.#live(key, now);
      if (!record) continue;
      let wait = record.blockedUntil - now;
      // Attempts still being checked count too, so a parallel burst cannot all slip through.
      if (wait <= 0 && record.failures + record.pending >= free && record.pending > 0) {
        wait = this.#options.baseDelayMs;
      }
      if (wait > 0) {
        throw new ShoalError(
          "RATE_LIMITED",
          `too many failed logins ${what}; try again in ${Math.ceil(wait / 1000)} s`,
        );
      }
    }
  }

  /** Checks, then counts a password check as under way until it is settled. */
  begin(username: string, address: string, now = Date.now()): LoginAttempt {
    this.check(username, address, now);
    const records = this.#keys(username, address).map(([key]) => {
      const record = this.#live(key, now) ??
        { failures: 0, blockedUntil: 0, lastFailure: 0, pending: 0 };
      record.pending++;
      this.#records.set(key, record);
      return record;
    });
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      for (const record of records) record.pending--;
      return true;
    };
    return {
      failed: (at = Date.now()) => settle() && this.failed(username, address, at),
      succeeded: () => settle() && this.succeeded(username),
      abandon: () => void settle(),
    };
  }

  failed(username: string, address: string, now = Date.now()): void {
    for (const [key, , free] of this.#keys(username, address)) {
      const record = this.#live(key, now) ??
        { failures: 0, blockedUntil: 0, lastFailure: 0, pending: 0 };
      record.failures++;
      record.lastFailure = now;
      if (record.failures >= free) {
        const delay = this.#options.baseDelayMs * 2 ** (record.failures - free);
        record.blockedUntil = now + Math.min(delay, this.#options.maxDelayMs);
      }
      this.#records.set(key, record);
    }
  }

  /**
   * Clears the user's failures. The address keeps its count: logging into
   * one's own account must not wash away guesses at others.
   */
  succeeded(username: string): void {
    const record = this.#records.get(`user:${username.toLowerCase()}`);
    if (record) {
      record.failures = 0;
      record.blockedUntil = 0;
    }
  }

  /** A record, unless its last failure is old enough to forget (then it is dropped). */
  #live(key: string, now: number): Record | undefined {
    const record = this.#records.get(key);
    if (record && record.pending === 0 && now - record.lastFailure > this.#options.forgetAfterMs) {
      this.#records.delete(key);
      return undefined;
    }
    return record;
  }

  #keys(username: string, address: string): [string, string, number][] {
    return [
      [`user:${username.toLowerCase()}`, `for ${username}`, this.#options.freePerUser],
      [`address:${address}`, `from ${address}`, this.#options.freePerAddress],
    ];
  }

  /** Drops forgotten records now and then, so the map stays small. */
  #prune(now: number): void {
    if (this.#records.size < 1000) return;
    for (const key of [...this.#records.keys()]) this.#live(key, now);
  }
}
