/**
 * One tracker as several processes on one database, under load: seeds
 * accounts, sessions and files through the store, starts the tracker
 * processes, connects the peers from as many load generators
 * (bench/load_generator.ts) as the open-file limit needs, and measures
 * lookups, memory and what failed. `tracker_postgres.ts` runs it; so can a
 * person, for one size at a time:
 *
 *   deno run -A bench/tracker_cluster.ts --peers 36000 --processes 2 [--files N] [--rate R]
 *
 * A process may hold at most the hard open-file limit of descriptors (`ulimit
 * -Hn`); each tracker process and each generator is given at most
 * {@link PEERS_PER_PROCESS} peers, so the rest stays for its own files and
 * database connections.
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createTrackerIdentity } from "../lib/identity/tracker_identity.ts";
import { hashPassword } from "../lib/tracker/passwords.ts";
import { PostgresTrackerStore } from "../lib/tracker/postgres_store.ts";
import type { TrackerStore } from "../lib/tracker/store.ts";
import { startTestPostgres } from "../tests/helpers/postgres.ts";
import { Daemon, denoCommand, type RunningTracker, startTracker } from "./processes.ts";
import { cpuSeconds, rssKiB, tempDir } from "./resources.ts";
import { loadAverage } from "./results.ts";
import type { LoadFigures, LoadPlan } from "./wire.ts";

const GENERATOR = fileURLToPath(new URL("./load_generator.ts", import.meta.url));

/** The hard open-file limit of this process (and of its children), from /proc. */
export function hardOpenFileLimit(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const match = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(limits);
    if (match) return match[1] === "unlimited" ? 1_000_000 : Number(match[1]);
  } catch {
    // Not Linux: assume the common default hard limit.
  }
  return 65_536;
}

/** Descriptors each process keeps beside its peers' sockets: its files, database, dashboard. */
export const RESERVED_DESCRIPTORS = 2_000;
/** Peers one tracker process or one load generator holds at most. */
export const PEERS_PER_PROCESS = Math.min(18_000, hardOpenFileLimit() - RESERVED_DESCRIPTORS);

/** Seeds `peers` accounts with a session each and `files` files, through the store; returns the tokens. */
export async function seed(store: TrackerStore, peers: number, files: number): Promise<string[]> {
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

/** What one measurement asks for. */
export interface ClusterLoad {
  /** Tracker processes, all on `db`. */
  processes: number;
  /** Files seeded (lookups ask for `file-0` .. `file-(files-1)`). */
  files: number;
  lookupSeconds: number;
  /** Connections of the closed-loop (throughput) phase; 0 skips it. */
  closedLoopConnections: number;
  /** Lookups per second offered in the latency phase, over every connection. */
  rate: number;
  /** Peer set-ups under way at once in each generator. @default {100} */
  connectingAtOnce?: number;
}

/** What one measurement found. */
export interface ClusterRun {
  /** Lookups per second, closed loop (a few connections, one outstanding each). */
  throughput: number;
  /** The worst of the generators' open-loop p99s, and p50s. */
  p99: number;
  p50: number;
  /** Lookups that failed. */
  errors: number;
  /** Lookups per second answered in the latency phase, over every generator. */
  offered: number;
  /** Peers asked for, peers set up, peers given up on, and set-ups tried again. */
  peers: number;
  connected: number;
  connectFailed: number;
  connectRetries: number;
  /** Failed set-up attempts and connections lost afterwards, by step and reason. */
  failures: Record<string, number>;
  /** Seconds to set every peer up (the slowest generator). */
  connectSeconds: number;
  /** The trackers' total RSS with every peer connected, and with none. */
  rssConnectedKiB: number;
  rssIdleKiB: number;
  /** The largest tracker process's RSS with every peer connected. */
  rssLargestKiB: number;
  /** The 1-minute load average when the peers were all connected. */
  load: number;
  /** Each tracker process's warnings (the first few), for a run that went wrong. */
  warnings: string[];
  /**
   * CPU seconds the trackers and the generators used while the peers were
   * set up, and while they looked names up; and the seconds each took.
   */
  cpu: {
    setUp: { trackers: number; generators: number; seconds: number };
    lookups: { trackers: number; generators: number; seconds: number };
  };
}

/**
 * Starts `load.processes` trackers on `db`, connects `tokens.length` peers
 * across them from as many generator processes as the open-file limit
 * needs, and measures. A generator that fails fails the run, with its error
 * and the trackers' warnings in the message.
 */
export async function measureCluster(
  dir: string,
  db: string,
  identity: string,
  tokens: string[],
  load: ClusterLoad,
  log: (line: string) => void,
): Promise<ClusterRun> {
  const perTracker = Math.ceil(tokens.length / load.processes);
  if (perTracker > PEERS_PER_PROCESS) {
    throw new Error(
      `${perTracker} peers a tracker process is over the ${PEERS_PER_PROCESS} one may hold here`,
    );
  }
  const trackers: RunningTracker[] = [];
  const generators: Daemon[] = [];
  const relay = setInterval(() => relayLines(generators, log), 500);
  try {
    for (let i = 0; i < load.processes; i++) {
      trackers.push(
        await startTracker({
          db,
          plaintext: true,
          openFiles: hardOpenFileLimit(),
          extra: ["--identity", identity],
        }),
      );
    }
    const targets = trackers.map((tracker) => {
      const [host, port] = tracker.address.split(":");
      return { host, port: Number(port), pid: tracker.daemon.pid };
    });
    const rssEach = () => targets.map((target) => rssKiB(target.pid) ?? NaN);
    const total = (values: number[]) => values.reduce((sum, value) => sum + value, 0);
    const rssIdleKiB = total(rssEach());
    const cpuAtStart = cpuOf(trackers, generators);
    const count = Math.ceil(tokens.length / PEERS_PER_PROCESS);
    const gate = join(dir, `gate-${crypto.randomUUID()}`);
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
        files: load.files,
        skipPublish: true,
        contentIds: [],
        lookupSeconds: load.lookupSeconds,
        // Only the first generator measures throughput; all share the offered rate.
        closedLoopConnections: g === 0 ? load.closedLoopConnections : 0,
        maxLookupsPerConnection: 1_000_000,
        openLoopRate: load.rate / count,
        addressOffset: g * share,
        connectingAtOnce: load.connectingAtOnce,
        gate,
      };
      const planPath = join(dir, `plan-${g}.json`);
      await Deno.writeTextFile(planPath, JSON.stringify(plan));
      const generator = new Daemon(
        ...denoCommand(["run", "--allow-all", GENERATOR, planPath], {
          openFiles: hardOpenFileLimit(),
        }),
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
    try {
      await Promise.race([
        Promise.all(generators.map((generator) => generator.waitFor(/peers connected/, 1_800_000))),
        finished,
      ]);
    } catch (error) {
      throw await failure(error, trackers);
    }
    const connectedRss = rssEach();
    const loadNow = loadAverage()[0];
    const cpuAtConnected = cpuOf(trackers, generators);
    // Lookups start together, and the open loops once the first generator's closed loop is done.
    await Deno.writeTextFile(`${gate}-lookups`, "");
    try {
      await Promise.race([generators[0].waitFor(/closed loop:/, 1_800_000), finished]);
    } catch (error) {
      throw await failure(error, trackers);
    }
    await Deno.writeTextFile(`${gate}-open-loop`, "");
    let figures: LoadFigures[];
    try {
      figures = await finished;
    } catch (error) {
      throw await failure(error, trackers);
    }
    const cpuAtEnd = cpuOf(trackers, generators);
    relayLines(generators, log);
    const failures: Record<string, number> = {};
    for (const f of figures) {
      for (const [why, n] of Object.entries(f.connectFailures)) {
        failures[why] = (failures[why] ?? 0) + n;
      }
      for (const [why, n] of Object.entries(f.dropped ?? {})) {
        failures[`lost: ${why}`] = (failures[`lost: ${why}`] ?? 0) + n;
      }
    }
    const warnings: string[] = [];
    for (const tracker of trackers) {
      await tracker.daemon.stop();
      warnings.push(...warningLines(await tracker.daemon.stderr()));
    }
    return {
      throughput: figures[0].throughputPerSecond,
      p99: Math.max(...figures.map((f) => f.openLoopLatency.p99)),
      p50: Math.max(...figures.map((f) => f.openLoopLatency.p50)),
      errors: figures.reduce((sum, f) => sum + f.openLoopErrors, 0),
      offered: figures.reduce((sum, f) => sum + f.openLoopRate, 0),
      peers: tokens.length,
      connected: figures.reduce((sum, f) => sum + f.connected, 0),
      connectFailed: figures.reduce((sum, f) => sum + f.connectFailed, 0),
      connectRetries: figures.reduce((sum, f) => sum + f.connectRetries, 0),
      failures,
      connectSeconds: Math.max(...figures.map((f) => f.connectSeconds)),
      rssConnectedKiB: total(connectedRss),
      rssIdleKiB,
      rssLargestKiB: Math.max(...connectedRss),
      load: loadNow,
      warnings,
      cpu: {
        setUp: difference(cpuAtStart, cpuAtConnected),
        lookups: difference(cpuAtConnected, cpuAtEnd),
      },
    };
  } finally {
    clearInterval(relay);
    for (const generator of generators) await generator.stop();
    for (const tracker of trackers) await tracker.daemon.stop();
  }
}

/** CPU seconds used so far by the trackers and by the generators, and when. */
function cpuOf(trackers: RunningTracker[], generators: Daemon[]) {
  const sum = (pids: number[]) => pids.reduce((total, pid) => total + (cpuSeconds(pid) ?? NaN), 0);
  return {
    trackers: sum(trackers.map((tracker) => tracker.daemon.pid)),
    generators: sum(generators.map((generator) => generator.pid)),
    at: performance.now() / 1000,
  };
}

function difference(from: ReturnType<typeof cpuOf>, to: ReturnType<typeof cpuOf>) {
  return {
    trackers: to.trackers - from.trackers,
    generators: to.generators - from.generators,
    seconds: to.at - from.at,
  };
}

/** Passes the generators' progress lines (`# ...`) on, each once. */
const relayed = new WeakMap<Daemon, number>();
function relayLines(generators: Daemon[], log: (line: string) => void): void {
  generators.forEach((generator, g) => {
    let seen = relayed.get(generator) ?? 0;
    for (; seen < generator.lines.length; seen++) {
      const line = generator.lines[seen];
      if (line.startsWith("# ")) log(`    generator ${g + 1}: ${line.slice(2)}`);
    }
    relayed.set(generator, seen);
  });
}

/** The first few warning lines of a tracker's stderr. */
function warningLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => /warning|error/i.test(line)).slice(0, 8);
}

/** The generator's error with every tracker's warnings (each stopped first), as one error. */
async function failure(error: unknown, trackers: RunningTracker[]): Promise<Error> {
  const lines = [
    (error as Error).message.split("\n").find((line) => /error/i.test(line)) ??
      (error as Error).message.split("\n")[0],
  ];
  for (const [i, tracker] of trackers.entries()) {
    await tracker.daemon.stop();
    const warnings = warningLines(await tracker.daemon.stderr());
    if (warnings.length) lines.push(`tracker ${i + 1}: ${warnings.join(" | ")}`);
  }
  return new Error(lines.join("\n"));
}

/** "3× hello: ECONNRESET, 1× lost: the tracker closed the connection", or "none". */
export function describeFailures(failures: Record<string, number>): string {
  const parts = Object.entries(failures).sort((a, b) => b[1] - a[1]).map(([why, n]) =>
    `${n}× ${why}`
  );
  return parts.length ? parts.join(", ") : "none";
}

/** One measurement from the command line, on a throwaway PostgreSQL cluster. */
async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      peers: { type: "string", default: "4000" },
      processes: { type: "string", default: "2" },
      files: { type: "string", default: "5000" },
      rate: { type: "string", default: "200" },
      seconds: { type: "string", default: "5" },
      "connecting-at-once": { type: "string", default: "100" },
    },
    strict: true,
  });
  const peers = Number(values.peers);
  const log = (line: string) => console.log(line);
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") throw new Error(`no PostgreSQL: ${cluster}`);
  await using pg = cluster;
  await using dir = await tempDir("shoal-bench-cluster-");
  const identity = join(dir.path, "identity");
  await createTrackerIdentity(identity);
  const db = await pg.newDatabase();
  log(`seeding ${peers} accounts and ${values.files} files`);
  let tokens: string[];
  {
    await using store = await PostgresTrackerStore.open(db, { maxConnections: 32 });
    tokens = await seed(store, peers, Number(values.files));
  }
  log(`${peers} peers on ${values.processes} processes (load average ${loadAverage()})`);
  const run = await measureCluster(dir.path, db, identity, tokens, {
    processes: Number(values.processes),
    files: Number(values.files),
    lookupSeconds: Number(values.seconds),
    closedLoopConnections: 16,
    rate: Number(values.rate),
    connectingAtOnce: Number(values["connecting-at-once"]),
  }, log);
  const { warnings, failures, ...figures } = run;
  log(JSON.stringify(figures));
  log(`failures: ${describeFailures(failures)}`);
  for (const line of warnings) log(`tracker: ${line}`);
}

if (import.meta.main) await main(Deno.args);
