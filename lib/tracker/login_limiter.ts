import { ShoalError } from "../protocol/errors.ts";

/** Options of a {@link LoginLimiter}. */
export interface LoginLimiterOptions {
  /** Failures allowed for one username from one address before backing off. @default {5} */
  freePerUser?: number;
  /** Failures allowed from one address, whatever the usernames. @default {20} */
  freePerAddress?: number;
  /**
   * Addresses that may fail for one username before that username backs off
   * from everywhere: a guesser spread over many addresses. One address alone
   * never locks an account for anyone else.
   * @default {10}
   */
  freeAddressesPerUser?: number;
  /** The first wait; each further failure doubles it. @default {1000} */
  baseDelayMs?: number;
  /** The longest wait. @default {300000} */
  maxDelayMs?: number;
  /** Failures older than this are forgotten. @default {900000} */
  forgetAfterMs?: number;
  /**
   * Addresses remembered per username as its owner's, from a correct login:
   * a guesser spread over many addresses backs the username off everywhere
   * except there, so nobody can lock the owner out of their own machines.
   * @default {16}
   */
  knownAddressesPerUser?: number;
}

interface Record {
  /** Failures, or for a username from everywhere, the addresses that failed. */
  failures: number;
  blockedUntil: number;
  lastFailure: number;
  /** For a username from everywhere: which addresses have failed for it. */
  addresses?: Set<string>;
}

/** A count of failed logins under one key, as a store shared by several processes keeps it. */
export interface LoginFailureCount {
  failures: number;
  /** When the last failure was (ms since the epoch). */
  lastFailure: number;
}

/** A count a failed login adds to, for a shared store to record. */
export interface LoginFailureKey {
  key: string;
  /** Counted once per address that failed (a name from many addresses), not per failure. */
  byAddress: boolean;
  /** For a count by address: how many addresses to remember at most. */
  maxAddresses?: number;
}

/** One password check under way; settle it exactly once. */
export interface LoginAttempt {
  failed(now?: number): void;
  succeeded(): void;
  /** Ends the attempt without counting it (the check itself broke). */
  abandon(): void;
}

/** The three counts a failure adds to: what they are called, and what is free of each. */
interface Key {
  key: string;
  what: string;
  free: number;
}

/**
 * Exponential backoff on failed password checks, per (username, address),
 * per address, and per username across many addresses, so guessing is slow
 * however it is spread, while an owner logging in from their own machine is
 * not locked out by someone guessing from another. Only failures count: a
 * burst of correct logins is never held back. Kept in memory: a restart
 * forgets, which only ever helps the legitimate user.
 *
 * @example
 * ```ts
 * const attempt = limiter.begin(username, address); // throws RATE_LIMITED while backing off
 * ok ? attempt.succeeded() : attempt.failed();
 * ```
 */
export class LoginLimiter {
  readonly #records = new Map<string, Record>();
  /** Per username (lowercase), the addresses it last logged in from, oldest first. */
  readonly #known = new Map<string, Set<string>>();
  /** Checks under way per key, and who waits for one of them to end. */
  readonly #inFlight = new Map<string, { count: number; waiters: (() => void)[] }>();
  readonly #options: Required<LoginLimiterOptions>;

  constructor(options: LoginLimiterOptions = {}) {
    this.#options = {
      freePerUser: options.freePerUser ?? 5,
      freePerAddress: options.freePerAddress ?? 20,
      freeAddressesPerUser: options.freeAddressesPerUser ?? 10,
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 300_000,
      forgetAfterMs: options.forgetAfterMs ?? 900_000,
      knownAddressesPerUser: options.knownAddressesPerUser ?? 16,
    };
  }

  /** Throws RATE_LIMITED, saying how long to wait, while any of the counts is backing off. */
  check(username: string, address: string, now = Date.now()): void {
    this.#prune(now);
    for (const { key, what } of this.#keys(username, address)) {
      const wait = (this.#live(key, now)?.blockedUntil ?? 0) - now;
      if (wait > 0) {
        throw new ShoalError(
          "RATE_LIMITED",
          `too many failed logins ${what}; try again in ${Math.ceil(wait / 1000)} s`,
        );
      }
    }
  }

  /** Checks, then hands out the attempt to settle once the password has been checked. */
  begin(username: string, address: string, now = Date.now()): LoginAttempt {
    this.check(username, address, now);
    let settled = false;
    const settle = () => !settled && (settled = true);
    return {
      failed: (at = Date.now()) => settle() && this.failed(username, address, at),
      succeeded: () => settle() && this.succeeded(username, address),
      abandon: () => void settle(),
    };
  }

  /**
   * Like {@link begin}, but first waits until few enough checks for this
   * username and address are under way: at most as many as the failures
   * still free before backing off (at least one). A burst of correct logins
   * waits its turn instead of being refused, and a burst of guesses fired in
   * parallel cannot all be checked before the first of them fails.
   */
  async acquire(
    username: string,
    address: string,
    clock: () => number = Date.now,
  ): Promise<LoginAttempt> {
    const gated = this.#keys(username, address).slice(0, 2);
    while (true) {
      const now = clock();
      this.check(username, address, now);
      const full = gated.find(({ key, free }) => {
        const failures = this.#live(key, now)?.failures ?? 0;
        return (this.#inFlight.get(key)?.count ?? 0) >= Math.max(1, free - failures);
      });
      if (!full) break;
      await new Promise<void>((resolve) => this.#inFlight.get(full.key)!.waiters.push(resolve));
    }
    for (const { key } of gated) {
      const entry = this.#inFlight.get(key) ?? { count: 0, waiters: [] };
      entry.count++;
      this.#inFlight.set(key, entry);
    }
    // Checked above with nothing awaited since: settled here under one flag, never twice.
    let done = false;
    const settle = () => !done && (done = true);
    const release = () => {
      for (const { key } of gated) {
        const entry = this.#inFlight.get(key)!;
        entry.count--;
        // Everyone waiting looks again: the check that ended may have been a failure.
        for (const wake of entry.waiters.splice(0)) wake();
        if (entry.count === 0) this.#inFlight.delete(key);
      }
    };
    return {
      failed: (at = clock()) => {
        if (!settle()) return;
        this.failed(username, address, at);
        release();
      },
      succeeded: () => {
        if (!settle()) return;
        this.succeeded(username, address);
        release();
      },
      abandon: () => {
        if (settle()) release();
      },
    };
  }

  /** Failures older than this are forgotten (ms). */
  get forgetAfterMs(): number {
    return this.#options.forgetAfterMs;
  }

  /** How many addresses each username's correct logins are remembered from. */
  get knownAddressesPerUser(): number {
    return this.#options.knownAddressesPerUser;
  }

  /**
   * Every count an attempt for `username` from `address` may answer to
   * (the name from many addresses too, known address or not): what to load
   * from a shared store before {@link adopt}.
   */
  sharedKeys(username: string, address: string): string[] {
    const [pair, from] = this.#keys(username, address);
    return [pair.key, from.key, `user:${username.toLowerCase()}`];
  }

  /** The counts a failure of `username` from `address` adds to now, for a shared store to record. */
  failureKeys(username: string, address: string): LoginFailureKey[] {
    return this.#keys(username, address).map(({ key, free }) =>
      key.startsWith("user:")
        ? { key, byAddress: true, maxAddresses: 4 * free + 1 }
        : { key, byAddress: false }
    );
  }

  /** The key a correct login of `username` from `address` clears. */
  successKey(username: string, address: string): string {
    return this.#keys(username, address)[0].key;
  }

  /**
   * Takes a shared store's counts (of every process of one tracker) as this
   * limiter's own for `username` from `address`: a count the store does not
   * have is forgotten here too, and an address the store knows the username
   * logged in from is known here too.
   */
  adopt(
    username: string,
    address: string,
    shared: { counts: Map<string, LoginFailureCount>; known: boolean },
  ): void {
    const user = username.toLowerCase();
    if (shared.known && !this.#known.get(user)?.has(address)) {
      const known = this.#known.get(user) ?? new Set<string>();
      known.add(address);
      if (known.size > this.#options.knownAddressesPerUser) {
        known.delete(known.values().next().value!);
      }
      this.#known.set(user, known);
    }
    for (const { key, free } of this.#keys(username, address)) {
      const count = shared.counts.get(key);
      if (!count) {
        this.#records.delete(key);
        continue;
      }
      const record = this.#records.get(key) ?? { failures: 0, blockedUntil: 0, lastFailure: 0 };
      record.failures = count.failures;
      record.lastFailure = count.lastFailure;
      record.blockedUntil = count.failures >= free
        ? count.lastFailure +
          Math.min(
            this.#options.baseDelayMs * 2 ** Math.min(30, count.failures - free),
            this.#options.maxDelayMs,
          )
        : 0;
      this.#records.set(key, record);
    }
  }

  /** Checks under way for a username from an address, and from the address (for tests). */
  inFlight(username: string, address: string): { user: number; address: number } {
    const [pair, from] = this.#keys(username, address);
    return {
      user: this.#inFlight.get(pair.key)?.count ?? 0,
      address: this.#inFlight.get(from.key)?.count ?? 0,
    };
  }

  failed(username: string, address: string, now = Date.now()): void {
    for (const { key, free } of this.#keys(username, address)) {
      const record = this.#live(key, now) ?? { failures: 0, blockedUntil: 0, lastFailure: 0 };
      if (key.startsWith("user:")) {
        // Counted in addresses: one address failing again and again adds nothing here.
        record.addresses ??= new Set();
        if (record.addresses.has(address)) continue;
        // Enough to know the threshold is passed; a flood of addresses cannot grow it further.
        if (record.addresses.size <= 4 * free) record.addresses.add(address);
      }
      record.failures++;
      record.lastFailure = now;
      if (record.failures >= free) {
        const delay = this.#options.baseDelayMs * 2 ** Math.min(30, record.failures - free);
        record.blockedUntil = now + Math.min(delay, this.#options.maxDelayMs);
      }
      this.#records.set(key, record);
    }
  }

  /**
   * Clears the failures for this username from this address. The address
   * keeps its count (logging into one's own account must not wash away
   * guesses at others), and so does the username's count of addresses.
   */
  succeeded(username: string, address: string): void {
    this.#records.delete(this.#keys(username, address)[0].key);
    const user = username.toLowerCase();
    const known = this.#known.get(user) ?? new Set<string>();
    known.delete(address);
    known.add(address);
    if (known.size > this.#options.knownAddressesPerUser) {
      known.delete(known.values().next().value!);
    }
    this.#known.set(user, known);
  }

  /** A record, unless its last failure is old enough to forget (then it is dropped). */
  #live(key: string, now: number): Record | undefined {
    const record = this.#records.get(key);
    if (record && now - record.lastFailure > this.#options.forgetAfterMs) {
      this.#records.delete(key);
      return undefined;
    }
    return record;
  }

  /**
   * The counts an attempt answers to: the username from this address, the
   * address, and (except from an address the username logged in from
   * before) the username from everywhere.
   */
  #keys(username: string, address: string): Key[] {
    const user = username.toLowerCase();
    const { freePerUser, freePerAddress, freeAddressesPerUser } = this.#options;
    const keys = [
      {
        key: `pair:${user}@${address}`,
        what: `for ${username} from ${address}`,
        free: freePerUser,
      },
      { key: `address:${address}`, what: `from ${address}`, free: freePerAddress },
    ];
    if (this.#known.get(user)?.has(address)) return keys;
    return [...keys, {
      key: `user:${user}`,
      what: `for ${username} from many addresses`,
      free: freeAddressesPerUser,
    }];
  }

  /** Drops forgotten records now and then, so the map stays small. */
  #prune(now: number): void {
    if (this.#records.size < 1000) return;
    for (const key of [...this.#records.keys()]) this.#live(key, now);
  }
}
