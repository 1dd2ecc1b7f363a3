/**
 * Salted scrypt password hashes. Hashing runs on the runtime's thread pool
 * through the async `scrypt`, so a burst of logins does not stall the event
 * loop; a {@link PasswordHasher} bounds how many run at once (each takes
 * 16 MiB at the default cost) and how many may wait, so a flood of logins or
 * registrations costs neither unbounded memory nor unbounded latency.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { ShoalError } from "../protocol/errors.ts";

const COST = 16384;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, cost: number, block: number, parallel: number) {
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { N: cost, r: block, p: parallel }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

/**
 * Hashes a password as `scrypt$N$r$p$salt$hash` (base64 salt and hash), so
 * the cost can be raised later without breaking stored hashes. Unbounded:
 * servers go through a {@link PasswordHasher}.
 */
export async function hashPassword(password: string, cost = COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost, BLOCK_SIZE, PARALLELISM);
  return ["scrypt", cost, BLOCK_SIZE, PARALLELISM, salt.toString("base64"), key.toString("base64")]
    .join("$");
}

/** Checks a password against a stored hash in constant time. Unbounded, like {@link hashPassword}. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, cost, block, parallel, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || hash === undefined) return false;
  const expected = Buffer.from(hash, "base64");
  const key = await derive(
    password,
    Buffer.from(salt, "base64"),
    Number(cost),
    Number(block),
    Number(parallel),
  );
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Options of a {@link PasswordHasher}. */
export interface PasswordHasherOptions {
  /** scrypt's N for new hashes (a power of two); tests pass a cheap one. @default {16384} */
  cost?: number;
  /** Hashes computed at once. @default {2} */
  maxRunning?: number;
  /** Hashes waiting for a turn; past it, BUSY. @default {64} */
  maxQueued?: number;
}

/**
 * A bounded queue in front of scrypt: at most `maxRunning` hashes at once,
 * at most `maxQueued` waiting, and past that a BUSY error saying when to try
 * again (from how long recent hashes took).
 *
 * @example
 * ```ts
 * const hasher = new PasswordHasher();
 * const stored = await hasher.hash("correct horse"); // throws BUSY when the queue is full
 * await hasher.verify("correct horse", stored); // true
 * ```
 */
export class PasswordHasher {
  readonly #cost: number;
  readonly #maxRunning: number;
  readonly #maxQueued: number;
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  #peak = 0;
  /** A running average of how long one hash takes, for the "try again" estimate. */
  #averageMs = 100;
  #dummy: Promise<string> | null = null;

  constructor(options: PasswordHasherOptions = {}) {
    this.#cost = options.cost ?? COST;
    this.#maxRunning = options.maxRunning ?? 2;
    this.#maxQueued = options.maxQueued ?? 64;
  }

  /** Hashes being computed right now. */
  get running(): number {
    return this.#running;
  }

  /** Hashes waiting for a turn. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** The most hashes ever computed at once: never above `maxRunning`. */
  get peakRunning(): number {
    return this.#peak;
  }

  /** Hashes a new password (see {@link hashPassword}). */
  hash(password: string): Promise<string> {
    return this.#run(() => hashPassword(password, this.#cost));
  }

  /** Checks a password against a stored hash (see {@link verifyPassword}). */
  verify(password: string, stored: string): Promise<boolean> {
    return this.#run(() => verifyPassword(password, stored));
  }

  /**
   * Checks a password against the hash of no real password, for an unknown
   * username, so that the answer takes as long as for a known one.
   */
  async verifyDummy(password: string): Promise<void> {
    this.#dummy ??= this.hash(randomBytes(16).toString("hex"));
    const stored = await this.#dummy.catch((error) => {
      this.#dummy = null;
      throw error;
    });
    await this.verify(password, stored);
  }

  async #run<V>(work: () => Promise<V>): Promise<V> {
    if (this.#running >= this.#maxRunning) {
      if (this.#waiting.length >= this.#maxQueued) {
        const turns = Math.ceil((this.#waiting.length + 1) / this.#maxRunning);
        const seconds = Math.max(1, Math.ceil(turns * this.#averageMs / 1000));
        throw new ShoalError(
          "BUSY",
          `the tracker is busy checking passwords; try again in ${seconds} s`,
        );
      }
      // The one finishing hands its slot straight over, so `running` never goes past the bound.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    this.#peak = Math.max(this.#peak, this.#running);
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.#averageMs = 0.8 * this.#averageMs + 0.2 * (performance.now() - started);
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
