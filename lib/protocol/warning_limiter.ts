/** Options of a {@link WarningLimiter}. */
export interface WarningLimiterOptions {
  /** Lines of one kind written per interval; more are counted, not written. @default {5} */
  burst?: number;
  /** The interval, in milliseconds. @default {60000} */
  intervalMs?: number;
  /** The clock, in milliseconds (injected by tests). @default {performance.now} */
  now?: () => number;
}

/**
 * Writes at most `burst` warnings of each kind per interval, so a client
 * repeating one misbehaviour (or a failing `accept`) cannot flood the log or
 * keep the process busy writing it. What was held back is counted and said
 * with the next line of that kind that goes out.
 *
 * @example
 * ```ts
 * const warnings = new WarningLimiter((line) => console.error(line));
 * warnings.warn("refused", "10.0.0.7: too many connections, refused one");
 * ```
 */
export class WarningLimiter {
  readonly #write: (line: string) => void;
  readonly #burst: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #kinds = new Map<string, { since: number; written: number; held: number }>();

  constructor(write: (line: string) => void, options: WarningLimiterOptions = {}) {
    this.#write = write;
    this.#burst = options.burst ?? 5;
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Writes `line`, unless `burst` lines of this `kind` went out in the current interval. */
  warn(kind: string, line: string): void {
    const now = this.#now();
    let count = this.#kinds.get(kind);
    if (!count || now - count.since >= this.#intervalMs) {
      const held = count?.held ?? 0;
      count = { since: now, written: 0, held };
      this.#kinds.set(kind, count);
    }
    if (count.written >= this.#burst) {
      count.held++;
      return;
    }
    count.written++;
    const held = count.held;
    count.held = 0;
    this.#write(held > 0 ? `${line} (and ${held} more like it, not shown)` : line);
  }
}
