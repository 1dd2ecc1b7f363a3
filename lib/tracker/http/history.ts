/**
 * The last hour, minute by minute, for the dashboard's charts: peers online
 * and how many publishes, logins, failed logins and tickets each minute saw,
 * counted from this process's event feed as it happens. On a store several
 * tracker processes share, {@link trackerHistory} makes it the whole
 * tracker's: each process records its counts in the store, which sums them,
 * and peers online are the store's count.
 */
import type { EventFeed, TrackerEvent } from "../events.ts";
import type { MinuteActivity, TrackerStore } from "../store.ts";

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

/** Whether a minute saw anything to record. */
const active = (minute: MinuteCounts) =>
  minute.publishes + minute.logins + minute.loginsFailed + minute.tickets > 0;

/** A minute's counts without its peers online. */
const activityOf = ({ time, publishes, logins, loginsFailed, tickets }: MinuteActivity) => ({
  time,
  publishes,
  logins,
  loginsFailed,
  tickets,
});

/**
 * Records this process's minutes that saw activity in the store, and takes
 * the store's count of peers online into `history`: what the HTTP side does
 * every minute, so that every process's dashboard sums every process's.
 */
export async function recordHistory(history: History, store: TrackerStore): Promise<void> {
  history.observePeersOnline((await store.stats()).peersOnline);
  const own = history.minutes();
  await store.recordActivity(own.filter(active).map(activityOf), own[0].time);
}

/**
 * The whole tracker's last hour: this process's minutes recorded first,
 * then every process's counts as the store sums them, with peers online as
 * the store counts them.
 */
export async function trackerHistory(
  history: History,
  store: TrackerStore,
): Promise<MinuteCounts[]> {
  await recordHistory(history, store);
  const own = history.minutes();
  const sums = new Map(
    (await store.activitySince(own[0].time)).map((minute) => [minute.time, minute]),
  );
  return own.map((minute) => {
    const sum = sums.get(minute.time);
    return sum ? { ...minute, ...activityOf(sum) } : minute;
  });
}
