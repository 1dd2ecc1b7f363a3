/**
 * The last hour, minute by minute, for the dashboard's charts: peers online
 * and how many publishes, logins, failed logins and tickets each minute saw,
 * counted from the event feed as it happens. The feed is this process's: on
 * a store several tracker processes share, the counts are this process's,
 * while peers online follows the store (every process's peers), which the
 * HTTP side reads into it each minute and on each request.
 */
import type { EventFeed, TrackerEvent } from "../events.ts";

/** One minute of {@link History}. */
export interface MinuteCounts {
  /** The minute's start, ISO. */
  time: string;
  peersOnline: number;
  publishes: number;
  logins: number;
  loginsFailed: number;
  tickets: number;
}

/** How many minutes are kept. */
export const HISTORY_MINUTES = 60;

const MINUTE_MS = 60_000;

/**
 * Per-minute counts of the feed's events over the last hour.
 *
 * @example
 * ```ts
 * const history = new History(feed, { peersOnline: 0 });
 * history.minutes(); // 60 minutes, oldest first
 * ```
 */
export class History implements Disposable {
  readonly #buckets = new Map<number, MinuteCounts>();
  /** How many were online as each kept minute began. */
  readonly #startedWith = new Map<number, number>();
  readonly #online = new Set<string>();
  readonly #now: () => number;
  readonly #unsubscribe: () => void;
  #baseline: number;

  constructor(feed: EventFeed, options: { peersOnline?: number; now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#baseline = options.peersOnline ?? 0;
    this.#unsubscribe = feed.subscribe((event) => this.#count(event));
  }

  #bucket(at: number): MinuteCounts {
    const start = Math.floor(at / MINUTE_MS) * MINUTE_MS;
    let bucket = this.#buckets.get(start);
    if (!bucket) {
      bucket = {
        time: new Date(start).toISOString(),
        peersOnline: this.#peersOnline,
        publishes: 0,
        logins: 0,
        loginsFailed: 0,
        tickets: 0,
      };
      this.#buckets.set(start, bucket);
      this.#startedWith.set(start, this.#peersOnline);
      for (const key of this.#buckets.keys()) {
        if (key <= start - HISTORY_MINUTES * MINUTE_MS) {
          this.#buckets.delete(key);
          this.#startedWith.delete(key);
        }
      }
    }
    return bucket;
  }

  get #peersOnline(): number {
    return this.#baseline + this.#online.size;
  }

  #count(event: TrackerEvent): void {
    const bucket = this.#bucket(Date.parse(event.time) || this.#now());
    switch (event.type) {
      case "start":
        this.#online.clear();
        this.#baseline = 0;
        break;
      case "peer.online":
        if (event.user) this.#online.add(event.user);
        break;
      case "peer.offline":
        if (event.user && !this.#online.delete(event.user) && this.#baseline > 0) {
          this.#baseline--;
        }
        break;
      case "publish":
        bucket.publishes++;
        break;
      case "login.ok":
        bucket.logins++;
        break;
      case "login.failed":
        bucket.loginsFailed++;
        break;
      case "ticket":
        bucket.tickets++;
        break;
    }
    bucket.peersOnline = this.#peersOnline;
  }

  /**
   * Takes the store's count of peers online (every tracker process's) as
   * now's: this process's own peers coming and going move it until the next.
   */
  observePeersOnline(count: number): void {
    const bucket = this.#bucket(this.#now());
    this.#online.clear();
    this.#baseline = count;
    bucket.peersOnline = count;
  }

  /** The last {@link HISTORY_MINUTES} minutes, oldest first, the current one last. */
  minutes(): MinuteCounts[] {
    const current = Math.floor(this.#now() / MINUTE_MS) * MINUTE_MS;
    const result: MinuteCounts[] = [];
    let online = this.#peersOnline;
    // Walked newest first: a minute without events had as many online as the next one began with.
    for (let i = 0; i < HISTORY_MINUTES; i++) {
      const start = current - i * MINUTE_MS;
      const bucket = this.#buckets.get(start);
      result.push(
        bucket ? { ...bucket } : {
          time: new Date(start).toISOString(),
          peersOnline: online,
          publishes: 0,
          logins: 0,
          loginsFailed: 0,
          tickets: 0,
        },
      );
      if (bucket) online = this.#startedWith.get(start) ?? bucket.peersOnline;
    }
    return result.reverse();
  }

  [Symbol.dispose](): void {
    this.#unsubscribe();
  }
}
