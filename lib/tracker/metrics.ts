/**
 * The tracker's Prometheus metrics (`GET /metrics`), through prom-client on a
 * registry of its own: counts read from the store at each scrape, counters
 * fed by the event feed, index query latency, and the process's own metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EventFeed, TrackerEvent } from "./events.ts";
import type { TrackerStore } from "./store.ts";

/** The latency buckets of index queries, in seconds. */
const QUERY_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
];

/**
 * The tracker's metrics. Pass {@link observeQuery} as the tracker's `onQuery`.
 *
 * @example
 * ```ts
 * const metrics = new TrackerMetrics(store, feed, () => tracker.connectionCount);
 * const text = await metrics.scrape();
 * ```
 */
export class TrackerMetrics implements Disposable {
  readonly registry = new Registry();
  readonly #store: TrackerStore;
  readonly #events: EventFeed;
  readonly #unsubscribe: () => void;
  readonly #connections: () => number;
  readonly #gauges;
  readonly #logins: Counter<"result" | "via">;
  readonly #tickets: Counter;
  readonly #publishes: Counter;
  readonly #registrations: Counter;
  readonly #queries: Histogram<"method">;

  constructor(store: TrackerStore, events: EventFeed, connections: () => number = () => 0) {
    this.#store = store;
    this.#events = events;
    this.#connections = connections;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "shoal_" });
    // prom-client's totals of active handles, requests and resources are gauges named `_total`,
    // which Prometheus reserves for counters (and they only sum the per-type gauges beside them).
    for (const kind of ["resources", "handles", "requests"]) {
      this.registry.removeSingleMetric(`shoal_nodejs_active_${kind}_total`);
    }
    const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
    this.#gauges = {
      peersOnline: gauge("shoal_peers_online", "Peers online now (serving, announced)"),
      peers: gauge("shoal_peers", "Accounts that have served at some time"),
      accounts: gauge("shoal_accounts", "Accounts registered"),
      shares: gauge("shoal_shares", "Files and folders published"),
      bytesPublished: gauge("shoal_published_bytes", "Sum of the published sizes, in bytes"),
      connections: gauge("shoal_open_connections", "Open control connections"),
      databaseBytes: gauge("shoal_database_size_bytes", "Size of the tracker's database in bytes"),
      subscribers: gauge("shoal_event_subscribers", "Subscribers of the event feed (log, streams)"),
    };
    this.#logins = new Counter({
      name: "shoal_logins_total",
      help: "Password checks, by result (ok, failed) and by where (protocol, dashboard)",
      labelNames: ["result", "via"],
      registers,
    });
    this.#tickets = new Counter({
      name: "shoal_tickets_issued_total",
      help: "Download tickets issued",
      registers,
    });
    this.#publishes = new Counter({
      name: "shoal_publishes_total",
      help: "Publications (new or replacing)",
      registers,
    });
    this.#registrations = new Counter({
      name: "shoal_registrations_total",
      help: "Accounts created",
      registers,
    });
    this.#queries = new Histogram({
      name: "shoal_lookup_duration_seconds",
      help: "Time to answer an index query (lookup, search, sources), in seconds",
      labelNames: ["method"],
      buckets: QUERY_BUCKETS,
      registers,
    });
    for (const result of ["ok", "failed"]) {
      for (const via of ["protocol", "dashboard"]) this.#logins.inc({ result, via }, 0);
    }
    this.#unsubscribe = events.subscribe((event) => this.#count(event));
  }

  /** Records an index query's time; the tracker's `onQuery`. */
  readonly observeQuery = (method: "lookup" | "search" | "sources", seconds: number): void => {
    this.#queries.observe({ method }, seconds);
  };

  #count(event: TrackerEvent): void {
    switch (event.type) {
      case "login.ok":
        this.#logins.inc({ result: "ok", via: event.via });
        break;
      case "login.failed":
        this.#logins.inc({ result: "failed", via: event.via });
        break;
      case "ticket":
        this.#tickets.inc();
        break;
      case "publish":
        this.#publishes.inc();
        break;
      case "register":
        this.#registrations.inc();
        break;
    }
  }

  /** The metrics in Prometheus text format, the store's counts read now. */
  async scrape(): Promise<string> {
    const [stats, databaseBytes] = await Promise.all([
      this.#store.stats(),
      this.#store.databaseBytes(),
    ]);
    const g = this.#gauges;
    g.peersOnline.set(stats.peersOnline);
    g.peers.set(stats.peers);
    g.accounts.set(stats.accounts);
    g.shares.set(stats.shares);
    g.bytesPublished.set(stats.bytesPublished);
    g.connections.set(this.#connections());
    if (databaseBytes !== null) g.databaseBytes.set(databaseBytes);
    g.subscribers.set(this.#events.subscriberCount);
    return await this.registry.metrics();
  }

  /** The content type of {@link scrape}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  [Symbol.dispose](): void {
    this.#unsubscribe();
  }
}
