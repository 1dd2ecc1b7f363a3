/**
 * One tracker on many machines (issue 16): lookups per second and lookup
 * p99 with N connected peers for one tracker on SQLite, one on PostgreSQL and
 * two processes on one PostgreSQL; then the scale run, many more connected
 * peers spread over two tracker processes on one PostgreSQL (from many
 * loopback source addresses), with the trackers' total RSS and RSS per peer.
 *
 * PostgreSQL is a throwaway cluster (as the tests start it). Accounts,
 * sessions and files are seeded through the store interface before the
 * trackers start; the load generator (bench/load_generator.ts) connects,
 * resumes and announces every peer, then looks names up: as fast as a few
 * connections can (lookups/s), and at a fixed rate spread over every
 * connection (p99). Plaintext, so the figures are the trackers' own.
 *
 * A process may hold at most the hard open-file limit of sockets (`ulimit
 * -Hn`); where that is below what the scale run asks of each process, the
 * run takes what fits and says so in its note.
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTrackerIdentity } from "../lib/identity/tracker_identity.ts";
import { hashPassword } from "../lib/tracker/passwords.ts";
import { PostgresTrackerStore } from "../lib/tracker/postgres_store.ts";
import { type TrackerStore } from "../lib/tracker/store.ts";
import { SqliteTrackerStore } from "../lib/tracker/sqlite_store.ts";
import { startTestPostgres, type TestPostgres } from "../tests/helpers/postgres.ts";
import { Daemon, denoCommand, type RunningTracker, startTracker } from "./processes.ts";
import { onInterrupt, rssKiB, tempDir } from "./resources.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import type { LoadFigures, LoadPlan } from "./wire.ts";

const GENERATOR = fileURLToPath(new URL("./load_generator.ts", import.meta.url));
/** Sockets one process may hold, less room for its own files and database connections. */
const PER_PROCESS = hardOpenFileLimit() - 1_000;
/** Connections one generator process holds at most. */
const PER_GENERATOR = Math.min(PER_PROCESS, 18_000);

interface Sizes {
  /** Connected peers in the three comparisons. */
  peers: number;
  files: number;
  lookupSeconds: number;
  closedLoopConnections: number;
  /** Lookups per second offered in the latency phase (each peer one every 5 s). */
  rate: number;
  /** Connected peers asked of the scale run, across two processes. */
  scalePeers: number;
  /** Lookups per second offered during the scale run. */
  scaleRate: number;
}

const QUICK: Sizes = {
  peers: 1_000,
  files: 5_000,
  lookupSeconds: 3,
  closedLoopConnections: 16,
  rate: 200,
  scalePeers: 4_000,
  scaleRate: 200,
};
const FULL: Sizes = {
  peers: 10_000,
  files: 100_000,
  lookupSeconds: 10,
  closedLoopConnections: 64,
  rate: 2_000,
  scalePeers: 100_000,
  scaleRate: 1_000,
};

function hardOpenFileLimit(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const match = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(limits);
    if (match) return match[1] === "unlimited" ? 1_000_000 : Number(match[1]);
  } catch {
    // Not Linux: assume the common default hard limit.
  }
  return 65_536;
}

/** Seeds `peers` accounts with a session each and `files` files, through the store; returns the tokens. */
async function seed(store: TrackerStore, peers: number, files: number): Promise<string[]> {
  const passwordHash = await hashPassword("bench-password");
  const tokens = Array.from({ length: peers }, () => randomBytes(24).toString("base64url"));
  const contentIds = Array.from({ length: 1000 }, () => randomBytes(32).toString("hex"));
  const name = (i: number) => `peer${String(i).padStart(6, "0")}`;
  await inBatches(peers, async (i) => {
    await store.createUser(name(i), passwordHash);
    await store.createSession(createHash("sha256").update(tokens[i]).digest("hex"), name(i));
  });
  const publishedAt = new Date().toISOString();
  await inBatches(files, (j) =>
    store.publish({
      owner: name(j % peers),
      name: `file-${j}`,
      type: "bin",
      size: 1 + j,
      contentId: contentIds[j % contentIds.length],
      publishedAt,
    }).then(() => {}));
  return tokens;
}

/** Runs `work(0..count-1)` with 32 at a time (PostgreSQL's round trips overlap). */
async function inBatches(count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

interface Run {
  /** Lookups per second, closed loop (a few connections, one outstanding each). */
  throughput: number;
  /** The worst of the generators' open-loop p99s. */
  p99: number;
  p50: number;
  errors: number;
  offered: number;
  connected: number;
  /** The trackers' total RSS with every peer connected, and with none. */
  rssConnectedKiB: number;
  rssIdleKiB: number;
}

/**
 * Starts `processes` trackers on `db`, connects `tokens.length` peers across
 * them from as many generator processes as the open-file limit needs, and
 * measures.
 */
async function measure(
  dir: string,
  db: string,
  identity: string,
  processes: number,
  tokens: string[],
  sizes: { files: number; lookupSeconds: number; closedLoopConnections: number; rate: number },
  log: (line: string) => void,
): Promise<Run> {
  const trackers: RunningTracker[] = [];
  const generators: Daemon[] = [];
  try {
    for (let i = 0; i < processes; i++) {
      trackers.push(
        await startTracker({
          db,
          plaintext: true,
          openFiles: PER_PROCESS + 1_000,
          extra: ["--identity", identity],
        }),
      );
    }
    const targets = trackers.map((tracker) => {
      const [host, port] = tracker.address.split(":");
      return { host, port: Number(port), pid: tracker.daemon.pid };
    });
    const rss = () => targets.reduce((sum, target) => sum + (rssKiB(target.pid) ?? NaN), 0);
    const rssIdleKiB = rss();
    const count = Math.ceil(tokens.length / PER_GENERATOR);
    const share = Math.ceil(tokens.length / count);
    const runs: Promise<LoadFigures>[] = [];
    for (let g = 0; g < count; g++) {
      const plan: LoadPlan = {
        host: targets[0].host,
        port: targets[0].port,
        trackerPid: targets[0].pid,
        targets,
        tokens: tokens.slice(g * share, (g + 1) * share),
        connectOnly: false,
        files: sizes.files,
        skipPublish: true,
        contentIds: [],
        lookupSeconds: sizes.lookupSeconds,
        // Only the first generator measures throughput; all share the offered rate.
        closedLoopConnections: g === 0 ? sizes.closedLoopConnections : 0,
        maxLookupsPerConnection: 1_000_000,
        openLoopRate: sizes.rate / count,
        addressOffset: g * share,
      };
      const planPath = join(dir, `plan-${g}.json`);
      await Deno.writeTextFile(planPath, JSON.stringify(plan));
      const generator = new Daemon(
        ...denoCommand(["run", "--allow-all", GENERATOR, planPath], { openFiles: share + 1_000 }),
      );
      generators.push(generator);
      runs.push(
        generator.waitFor(/^\{.*\}$/, 1_800_000).then((line) => JSON.parse(line[0]) as LoadFigures),
      );
    }
    // Every peer connected (each generator says so), then the trackers' memory; a generator
    // that fails first fails the run.
    const finished = Promise.all(runs);
    finished.catch(() => {});
    await Promise.race([
      Promise.all(generators.map((generator) => generator.waitFor(/peers connected/, 1_800_000))),
      finished,
    ]);
    const rssConnectedKiB = rss();
    const figures = await finished;
    log(`    closed loop: ${figures[0].throughputPerSecond.toFixed(0)} lookups/s`);
    for (const f of figures) {
      log(
        `    ${f.openLoopLookups} lookups at ${f.openLoopRate.toFixed(0)}/s: p99 ${
          f.openLoopLatency.p99.toFixed(2)
        } ms, ${f.openLoopErrors} errors`,
      );
    }
    return {
      throughput: figures[0].throughputPerSecond,
      p99: Math.max(...figures.map((f) => f.openLoopLatency.p99)),
      p50: Math.max(...figures.map((f) => f.openLoopLatency.p50)),
      errors: figures.reduce((sum, f) => sum + f.openLoopErrors, 0),
      offered: figures.reduce((sum, f) => sum + f.openLoopRate, 0),
      connected: tokens.length,
      rssConnectedKiB,
      rssIdleKiB,
    };
  } finally {
    for (const generator of generators) await generator.stop();
    for (const tracker of trackers) await tracker.daemon.stop();
  }
}

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
  const results: { label: string; run: Run }[] = [];

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
    results.push({
      label,
      run: await measure(dir.path, db, identity, processes, tokens, sizes, log),
    });
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
  // The scale run: as many as asked, or as many as two processes may hold (with room for each
  // one's own files). A failure there (say, a machine too busy to finish handshakes in time) is an
  // entry of its own, and the figures above stand.
  const fits = Math.min(sizes.scalePeers, 2 * (PER_PROCESS - 1_000));
  let scale: Run;
  try {
    log(`  scale: seeding ${fits} accounts`);
    const scaleDb = await pg.newDatabase();
    let scaleTokens: string[];
    {
      await using store = await PostgresTrackerStore.open(scaleDb, { maxConnections: 32 });
      scaleTokens = await seed(store, fits, sizes.files);
    }
    log(`  scale: ${fits} peers across two trackers on PostgreSQL`);
    scale = await measure(dir.path, scaleDb, identity, 2, scaleTokens, {
      ...sizes,
      rate: sizes.scaleRate,
    }, log);
  } catch (error) {
    const why = (error as Error).message.split("\n").find((line) => /error/i.test(line)) ??
      (error as Error).message.split("\n")[0];
    log(`  scale: failed: ${why}`);
    entries.push(
      entry(`scale: ${fits} peers on two processes`, NaN, "-", { note: `failed: ${why}` }),
    );
    return entries;
  }
  const capped = fits < sizes.scalePeers
    ? `; ${sizes.scalePeers} asked, ${fits} fit (open-file hard limit ${
      PER_PROCESS + 1_000
    } a process)`
    : "";
  const gib = scale.rssConnectedKiB / 1024 / 1024;
  entries.push(
    entry(`scale: trackers' total RSS, ${scale.connected} peers on two processes`, gib, "GiB", {
      target: { on: "value", max: 2 },
      note: `idle ${(scale.rssIdleKiB / 1024).toFixed(0)} MiB${capped}`,
    }),
    entry(
      "scale: tracker RSS per peer",
      (scale.rssConnectedKiB - scale.rssIdleKiB) / scale.connected,
      "KiB",
      {
        target: { on: "value", max: 10 },
        note: `${scale.connected} peers across two processes on PostgreSQL`,
      },
    ),
    entry(`scale: lookup p99, ${scale.connected} peers on two processes`, scale.p99, "ms", {
      target: { on: "value", max: 20 },
      note: `${scale.offered.toFixed(0)} lookups/s offered; ${scale.errors} errors${capped}`,
    }),
  );
  return entries;
}

export const trackerPostgresBenchmark: Benchmark = {
  name: "tracker-postgres",
  description: "lookups with N peers: SQLite, PostgreSQL, two processes; the scale run",
  run: trackerPostgres,
};
