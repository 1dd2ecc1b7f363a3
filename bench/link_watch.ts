/**
 * Watches what the hosts of a test LAN send, sampled every 100 ms from the
 * hub's veth counters: how many bytes a host sent in all, when its link was
 * busy and when it idled. The flash crowd benchmark reads the source's link
 * with it (every piece the source sends twice is time the crowd waits).
 */

/** Where the counters come from: {@link TestLan.sentBytes}. */
export interface SentCounters {
  sentBytes(): Promise<Record<string, number>>;
}

interface Sample {
  /** Seconds since the watch started. */
  at: number;
  sent: Record<string, number>;
}

/** One host's link over the watch. */
export interface LinkUse {
  /** Bytes sent from the start of the watch to its end. */
  bytes: number;
  /** Seconds from the start to the last sample the link was busy in. */
  lastBusy: number;
  /** Seconds, up to `lastBusy`, the link sent at under half its cap. */
  idle: number;
  /** MB/s in each `bucketSeconds` from the start. */
  rates: number[];
}

const SAMPLE_MS = 100;

/**
 * @example
 * ```ts
 * using watch = await LinkWatch.start(lan);
 * // ... run the crowd ...
 * const use = (await watch.stop()).use("s1", 12.5e6);
 * ```
 */
export class LinkWatch implements Disposable {
  readonly #lan: SentCounters;
  readonly #samples: Sample[] = [];
  readonly #started = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #sampling: Promise<void> = Promise.resolve();

  private constructor(lan: SentCounters) {
    this.#lan = lan;
  }

  /** Takes a first sample and goes on sampling until {@link stop}. */
  static async start(lan: SentCounters): Promise<LinkWatch> {
    const watch = new LinkWatch(lan);
    await watch.#sample();
    watch.#timer = setInterval(() => {
      // One sample at a time: a slow `ip` on a busy machine skips a tick instead of piling up.
      watch.#sampling = watch.#sampling.then(() => watch.#sample());
    }, SAMPLE_MS);
    return watch;
  }

  async #sample(): Promise<void> {
    const at = (performance.now() - this.#started) / 1000;
    const sent = await this.#lan.sentBytes().catch(() => null);
    if (sent) this.#samples.push({ at, sent });
  }

  /** Stops sampling, after one last sample. */
  async stop(): Promise<this> {
    clearInterval(this.#timer);
    await this.#sampling;
    await this.#sample();
    return this;
  }

  /** Stops sampling without a last sample (say, when the run failed). */
  [Symbol.dispose](): void {
    clearInterval(this.#timer);
  }

  /** `host`'s link over the watch; busy means at least half of `capBytesPerSecond`. */
  use(host: string, capBytesPerSecond: number, bucketSeconds = 1): LinkUse {
    const samples = this.#samples.filter((s) => s.sent[host] !== undefined);
    const first = samples[0];
    const last = samples.at(-1);
    if (!first || !last) return { bytes: 0, lastBusy: 0, idle: 0, rates: [] };
    let lastBusy = 0;
    const slow: [number, number][] = [];
    const rates = new Array<number>(Math.ceil(last.at / bucketSeconds)).fill(0);
    for (let i = 1; i < samples.length; i++) {
      const [a, b] = [samples[i - 1], samples[i]];
      const bytes = b.sent[host] - a.sent[host];
      const seconds = b.at - a.at;
      if (bytes / seconds >= capBytesPerSecond / 2) lastBusy = b.at;
      else slow.push([a.at, b.at]);
      rates[Math.min(rates.length - 1, Math.floor(a.at / bucketSeconds))] += bytes / 1e6 /
        bucketSeconds;
    }
    const idle = slow.filter(([, end]) => end <= lastBusy).reduce((sum, [a, b]) => sum + b - a, 0);
    return { bytes: last.sent[host] - first.sent[host], lastBusy, idle, rates };
  }
}
