/**
 * One tracker on many machines (issue 16): lookups per second and lookup
 * p99 with N connected peers for one tracker on SQLite, one on PostgreSQL and
 * two processes on one PostgreSQL; then the scale run: as many connected
 * peers as two tracker processes may hold here, and 100,000 connected peers
 * across as many processes as the open-file limit needs, each with the
 * trackers' total RSS, RSS per peer and lookup p99 at a stated rate.
 *
 * PostgreSQL is a throwaway cluster (as the tests start it). Accounts,
 * sessions and files are seeded through the store interface before the
 * trackers start; the load generators (bench/load_generator.ts, run by
 * bench/tracker_cluster.ts) connect, resume and announce every peer from many
 * loopback source addresses, then look names up: as fast as a few
 * connections can (lookups/s), and at a fixed rate spread over every
 * connection (p99). Plaintext, so the figures are the trackers' own.
 */
import { join } from "node:path";
import { createTrackerIdentity } from "../lib/identity/tracker_identity.ts";
import { PostgresTrackerStore } from "../lib/tracker/postgres_store.ts";
import { SqliteTrackerStore } from "../lib/tracker/sqlite_store.ts";
import { startTestPostgres, type TestPostgres } from "../tests/helpers/postgres.ts";
import { onInterrupt, tempDir } from "./resources.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import {
  type ClusterRun,
  describeFailures,
  hardOpenFileLimit,
  measureCluster,
  PEERS_PER_PROCESS,
  seed,
} from "./tracker_cluster.ts";

interface Sizes {
  /** Connected peers in the three comparisons. */
  peers: number;
  files: number;
  lookupSeconds: number;
  closedLoopConnections: number;
  /** Lookups per second offered in the latency phase (each peer one every 5 s). */
  rate: number;
  /** The scale run on two processes: as many peers as fit, at most this many. */
  scalePeers: number;
  /** The scale run asked of the issue: this many peers, over as many processes as they need. */
  manyPeers: number;
  /** Peers one process is given in that run (at most what the open-file limit allows). */
  manyPerProcess: number;
  /** Lookups per second offered during the scale runs. */
  scaleRate: number;
}

const QUICK: Sizes = {
  peers: 1_000,
  files: 5_000,
  lookupSeconds: 3,
  closedLoopConnections: 16,
  rate: 200,
  scalePeers: 4_000,
  manyPeers: 6_000,
  manyPerProcess: 2_000,
  scaleRate: 200,
};
const FULL: Sizes = {
  peers: 10_000,
  files: 100_000,
  lookupSeconds: 10,
  closedLoopConnections: 64,
  rate: 2_000,
  scalePeers: 100_000,
  manyPeers: 100_000,
  manyPerProcess: PEERS_PER_PROCESS,
  scaleRate: 1_000,
};

async function trackerPostgres({ quick, log }: BenchContext): Promise<Entry[]> {
  const sizes = quick ? QUICK : FULL;
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    log(`  skipped: no PostgreSQL to run against: ${cluster}`);
    return [entry("tracker on PostgreSQL", NaN, "-", { note: `skipped: ${cluster}` })];
  }
  await using pg: TestPostgres = cluster;
  // Ctrl-C stops the cluster too: its server runs detached from this process.
  using _stopOnInterrupt = onInterrupt(async () => await cluster[Symbol.asyncDispose]());
  await using dir = await tempDir("shoal-bench-postgres-");
  const identity = join(dir.path, "identity");
  await createTrackerIdentity(identity);
  const load = `${sizes.peers} connected peers, ${sizes.files} files`;
  const results: { label: string; run: ClusterRun }[] = [];

  const comparisons: { label: string; store: "sqlite" | "postgres"; processes: number }[] = [
    { label: "one tracker on SQLite", store: "sqlite", processes: 1 },
    { label: "one tracker on PostgreSQL", store: "postgres", processes: 1 },
    { label: "two trackers on PostgreSQL", store: "postgres", processes: 2 },
  ];
  for (const { label, store: kind, processes } of comparisons) {
    log(`  ${label}: seeding ${sizes.peers} accounts and ${sizes.files} files`);
    const db = kind === "sqlite" ? join(dir.path, `${processes}.db`) : await pg.newDatabase();
    await using store = kind === "sqlite"
      ? SqliteTrackerStore.open(db)
      : await PostgresTrackerStore.open(db, { maxConnections: 32 });
    const tokens = await seed(store, sizes.peers, sizes.files);
    log(`  ${label}: ${sizes.peers} peers`);
    const run = await measureCluster(dir.path, db, identity, tokens, { ...sizes, processes }, log);
    log(`    closed loop: ${run.throughput.toFixed(0)} lookups/s; p99 ${run.p99.toFixed(2)} ms`);
    results.push({ label, run });
  }

  const entries: Entry[] = [];
  for (const { label, run } of results) {
    entries.push(
      entry(`lookups/s, ${label}`, run.throughput, "lookups/s", {
        baseline: results[0].run.throughput,
        note: `${sizes.closedLoopConnections} connections, one lookup outstanding each; ${load}`,
      }),
      entry(`lookup p99, ${label}`, run.p99, "ms", {
        target: { on: "value", max: 20 },
        note: `${run.offered.toFixed(0)} lookups/s offered over ${load}; p50 ${
          run.p50.toFixed(2)
        } ms; ${run.errors} errors`,
      }),
    );
  }

  // The scale run as asked, on two processes: as many peers as two may hold here.
  const limit = hardOpenFileLimit();
  const onTwo = Math.min(sizes.scalePeers, 2 * PEERS_PER_PROCESS);
  const capped = onTwo < sizes.scalePeers
    ? `; ${sizes.scalePeers} asked, ${onTwo} fit: a process may hold ${limit} open files here ` +
      "(ulimit -Hn, which root cannot raise on this machine), less room for its own"
    : "";
  entries.push(
    ...await scaleRun(`${onTwo} peers on two processes`, onTwo, 2, capped),
  );
  // And the 100,000 peers as one tracker, over as many processes as the limit needs.
  const processes = Math.max(2, Math.ceil(sizes.manyPeers / sizes.manyPerProcess));
  if (processes > 2 || sizes.manyPeers > onTwo) {
    entries.push(
      ...await scaleRun(
        `${sizes.manyPeers} peers on ${processes} processes (extra)`,
        sizes.manyPeers,
        processes,
        `; two processes cannot hold ${sizes.manyPeers} peers here (${limit} open files a ` +
          `process, ulimit -Hn, which root cannot raise on this machine), so ${processes} ` +
          `processes of at most ${Math.ceil(sizes.manyPeers / processes)} peers on one PostgreSQL`,
      ),
    );
  }
  return entries;

  /**
   * Seeds `peers` accounts, connects them across `processes` trackers and
   * measures: total RSS, RSS per peer, lookup p99 at the scale rate. A
   * failure is an entry of its own (its cause in the note), and the figures
   * above stand.
   */
  async function scaleRun(
    label: string,
    peers: number,
    processes: number,
    why: string,
  ): Promise<Entry[]> {
    let run: ClusterRun;
    try {
      log(`  scale: seeding ${peers} accounts and ${sizes.files} files`);
      const db = await pg.newDatabase();
      let tokens: string[];
      {
        await using store = await PostgresTrackerStore.open(db, { maxConnections: 32 });
        tokens = await seed(store, peers, sizes.files);
      }
      log(`  scale: ${label}`);
      run = await measureCluster(dir.path, db, identity, tokens, {
        ...sizes,
        processes,
        rate: sizes.scaleRate,
      }, log);
    } catch (error) {
      const message = (error as Error).message.split("\n");
      log(`  scale: ${label} failed: ${message.join("\n    ")}`);
      return [entry(`scale: ${label}`, NaN, "-", { note: `failed: ${message[0]}${why}` })];
    }
    const lost = Object.entries(run.failures).filter(([reason]) => reason.startsWith("lost"))
      .reduce((sum, [, n]) => sum + n, 0);
    const errors = run.errors + run.connectFailed + lost;
    const how = `${run.connected} of ${run.peers} peers set up in ${
      run.connectSeconds.toFixed(0)
    } s (${run.connectRetries} retries); failures: ${
      describeFailures(run.failures)
    }; load average ${run.load} with every peer connected`;
    log(`    ${how}`);
    for (const line of run.warnings) log(`    tracker: ${line}`);
    const mib = (kib: number) => (kib / 1024).toFixed(0);
    return [
      entry(`scale: trackers' total RSS, ${label}`, run.rssConnectedKiB / 1024 / 1024, "GiB", {
        target: { on: "value", max: 2 },
        note: `idle ${mib(run.rssIdleKiB)} MiB; largest process ${
          mib(run.rssLargestKiB)
        } MiB; ${how}${why}`,
      }),
      entry(
        `scale: tracker RSS per peer, ${label}`,
        (run.rssConnectedKiB - run.rssIdleKiB) / run.connected,
        "KiB",
        {
          target: { on: "value", max: 10 },
          note: `(connected - idle RSS) / peers, over ${processes} processes on PostgreSQL`,
        },
      ),
      entry(`scale: lookup p99, ${label}`, run.p99, "ms", {
        target: { on: "value", max: 20 },
        note: `${
          run.offered.toFixed(0)
        } lookups/s offered over ${run.connected} peers and ${sizes.files} files; p50 ${
          run.p50.toFixed(2)
        } ms; ${errors} errors (${run.errors} lookups, ${
          run.connectFailed + lost
        } peers not set up or lost)`,
      }),
    ];
  }
}

export const trackerPostgresBenchmark: Benchmark = {
  name: "tracker-postgres",
  description: "lookups with N peers: SQLite, PostgreSQL, two processes; the scale runs",
  run: trackerPostgres,
};
