/**
 * Tracker load: N simulated peers connected at once (each resuming a
 * session and announcing, so it counts as online), files published across
 * them, then lookups; the tracker's memory per connected peer; and the time
 * and memory to start on the resulting database. Accounts and sessions are
 * seeded straight into the database (N scrypt registrations would measure
 * only scrypt). The main run is plaintext (--insecure-plaintext) so the
 * figures are the tracker's own; a second, smaller run measures what TLS
 * adds per connection. Under both memory figures lies the runtime's own: a
 * bare Deno server holding as many idle connections (bench/idle_connections.ts).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { delay } from "../lib/async/delay.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import { Daemon, denoCommand, startTracker } from "./processes.ts";
import { rssKiB, tempDir, type TlsFiles, writeTlsFiles } from "./resources.ts";
import { seedAccounts } from "./seed.ts";
import { seedAdminToken, watchDashboard, type WatchFigures } from "./dashboard_watch.ts";
import type { LoadFigures, LoadPlan } from "./wire.ts";

const GENERATOR = fileURLToPath(new URL("./load_generator.ts", import.meta.url));
const IDLE_CONNECTIONS = fileURLToPath(new URL("./idle_connections.ts", import.meta.url));
const OPEN_FILES = 65_536;

interface Sizes {
  peers: number;
  files: number;
  tlsPeers: number;
  lookupSeconds: number;
  closedLoopConnections: number;
}

const QUICK: Sizes = {
  peers: 500,
  files: 5_000,
  tlsPeers: 200,
  lookupSeconds: 3,
  closedLoopConnections: 32,
};
const FULL: Sizes = {
  peers: 10_000,
  files: 100_000,
  tlsPeers: 2_000,
  lookupSeconds: 10,
  closedLoopConnections: 64,
};
/** In the latency phase each peer looks a name up every this many seconds, on average. */
const LOOKUP_EVERY_S = 5;

/** Seeds `count` accounts with a session each; returns the session tokens. */
function seed(db: string, count: number): Promise<string[]> {
  const usernames = Array.from({ length: count }, (_, i) => `peer${String(i).padStart(5, "0")}`);
  return seedAccounts(db, usernames.map((username) => ({ username })));
}

/** Runs the generator with `plan` and returns its figures, passing its progress lines on. */
async function generate(
  dir: string,
  plan: LoadPlan,
  log: (line: string) => void,
  timeoutMs: number,
): Promise<LoadFigures> {
  const planPath = join(dir, `plan-${plan.port}.json`);
  await Deno.writeTextFile(planPath, JSON.stringify(plan));
  const generator = new Daemon(
    ...denoCommand(["run", "--allow-all", GENERATOR, planPath], { openFiles: OPEN_FILES }),
  );
  let seen = 0;
  const relayLines = () => {
    for (; seen < generator.lines.length; seen++) {
      if (generator.lines[seen].startsWith("# ")) log(`  ${generator.lines[seen].slice(2)}`);
    }
  };
  const relay = setInterval(relayLines, 200);
  try {
    const line = await generator.waitFor(/^\{.*\}$/, timeoutMs);
    return JSON.parse(line[0]) as LoadFigures;
  } finally {
    clearInterval(relay);
    relayLines();
    const status = await generator.stop();
    if (!status.success && status.signal !== "SIGTERM") log(`  ${await generator.stderr()}`);
  }
}

/**
 * The RSS per connection of a bare Deno server holding `count` idle
 * connections, TLS when `tls` is given: the floor under the tracker's figure.
 */
async function bareServerKiBPerConnection(
  count: number,
  tls: TlsFiles | null,
): Promise<number | null> {
  const launch = { openFiles: OPEN_FILES };
  const run = (...args: string[]) =>
    new Daemon(...denoCommand(["run", "--allow-all", IDLE_CONNECTIONS, ...args], launch));
  const server = run("serve", ...(tls ? ["--tls", tls.certFile, "--key", tls.keyFile] : []));
  let client: Daemon | undefined;
  try {
    const [, port] = await server.waitOrStop(/^port (\d+)$/);
    await delay(500);
    const before = rssKiB(server.pid);
    client = run("hold", port, String(count), ...(tls ? ["--tls", tls.certFile] : []));
    await client.waitFor(/^held \d+$/, 120_000);
    // Let the last accepted connections reach their pending read.
    await delay(1000);
    const after = rssKiB(server.pid);
    return before === null || after === null ? null : (after - before) / count;
  } finally {
    await client?.stop();
    await server.stop();
  }
}

async function trackerLoad({ quick, log }: BenchContext): Promise<Entry[]> {
  const sizes = quick ? QUICK : FULL;
  const timeoutMs = quick ? 120_000 : 900_000;
  await using dir = await tempDir("shoal-bench-tracker-");
  const launch = { plaintext: true, openFiles: OPEN_FILES };

  const empty = await startTracker({ db: join(dir.path, "empty.db"), ...launch });
  const emptyRss = rssKiB(empty.daemon.pid);
  await empty.daemon.stop();

  log(`  seeding ${sizes.peers} accounts and sessions`);
  const db = join(dir.path, "load.db");
  const tokens = await seed(db, sizes.peers);
  const contentIds = Array.from({ length: 1000 }, () => randomBytes(32).toString("hex"));
  /** The lookup load of this run against the tracker at `address` (process `trackerPid`). */
  const loadAt = (address: string, trackerPid: number): LoadPlan => {
    const [host, port] = address.split(":");
    return {
      host,
      port: Number(port),
      trackerPid,
      tokens,
      connectOnly: false,
      files: sizes.files,
      contentIds,
      lookupSeconds: sizes.lookupSeconds,
      closedLoopConnections: sizes.closedLoopConnections,
      maxLookupsPerConnection: 1_000_000,
      openLoopRate: sizes.peers / LOOKUP_EVERY_S,
    };
  };
  const tracker = await startTracker({ db, ...launch });
  let figures: LoadFigures;
  try {
    figures = await generate(
      dir.path,
      loadAt(tracker.address, tracker.daemon.pid),
      log,
      timeoutMs,
    );
  } finally {
    await tracker.daemon.stop();
  }

  // The same load again on a tracker with its dashboard open: one subscriber on the event
  // stream and /metrics scraped every second. The files are published again (replacing).
  log("  the same load with a dashboard open (SSE subscriber, /metrics every second)");
  const adminToken = await seedAdminToken(db, "peer00000");
  const watched = await startTracker({ db, ...launch });
  let watchedFigures: LoadFigures;
  let watch: WatchFigures;
  try {
    const [, url] = await watched.daemon.waitFor(/^dashboard on (\S+)$/);
    await using dashboard = await watchDashboard(url, adminToken);
    watch = dashboard.figures;
    watchedFigures = await generate(
      dir.path,
      loadAt(watched.address, watched.daemon.pid),
      log,
      timeoutMs,
    );
  } finally {
    await watched.daemon.stop();
  }
  log(`  dashboard saw ${watch.events} events, ${watch.scrapes} scrapes`);

  const restart = await startTracker({ db, ...launch });
  const restartRss = rssKiB(restart.daemon.pid);
  await restart.daemon.stop();
  log(`  restart on ${sizes.files} files: ${restart.startSeconds.toFixed(2)} s`);

  log(`  TLS: ${sizes.tlsPeers} peers`);
  const tlsDb = join(dir.path, "tls.db");
  const tlsTokens = await seed(tlsDb, sizes.tlsPeers);
  const tlsTracker = await startTracker({ db: tlsDb, openFiles: OPEN_FILES });
  let tlsFigures: LoadFigures;
  try {
    const [host, port] = tlsTracker.address.split(":");
    tlsFigures = await generate(
      dir.path,
      {
        host,
        port: Number(port),
        certificate: await Deno.readTextFile(`${tlsDb}.tls-cert.pem`),
        trackerPid: tlsTracker.daemon.pid,
        tokens: tlsTokens,
        connectOnly: true,
        files: 0,
        contentIds,
        lookupSeconds: 0,
        closedLoopConnections: 0,
        maxLookupsPerConnection: 0,
        openLoopRate: 0,
      },
      log,
      timeoutMs,
    );
  } finally {
    await tlsTracker.daemon.stop();
  }

  log(
    `  a bare Deno server holding ${sizes.peers} idle connections, and ${sizes.tlsPeers} over TLS`,
  );
  const barePlaintext = await bareServerKiBPerConnection(sizes.peers, null);
  const bareTls = await bareServerKiBPerConnection(sizes.tlsPeers, await writeTlsFiles(dir.path));

  const perPeer = (f: LoadFigures, peers: number) => (f.rssConnectedKiB - f.rssIdleKiB) / peers;
  const mib = (kib: number | null) => kib === null ? NaN : kib / 1024;
  const n = sizes.peers;
  const load = `${n} connected peers, ${sizes.files} files, plaintext`;
  return [
    entry("tracker connect+resume+announce", n / figures.connectSeconds, "peers/s", {
      note: `${n} peers, 100 connecting at once`,
    }),
    entry("tracker publish", sizes.files / figures.publishSeconds, "files/s", {
      note: `${sizes.files} files, 128 requests in flight`,
    }),
    entry("tracker lookups (saturated)", figures.throughputPerSecond, "lookups/s", {
      note: `${sizes.closedLoopConnections} connections, one lookup outstanding each; ` +
        `p50 ${figures.throughputLatency.p50.toFixed(2)} ms, p99 ${
          figures.throughputLatency.p99.toFixed(2)
        } ms`,
    }),
    entry("tracker lookup p50", figures.openLoopLatency.p50, "ms", {
      note: `${figures.openLoopRate.toFixed(0)} lookups/s over ${load}`,
    }),
    entry("tracker lookup p99", figures.openLoopLatency.p99, "ms", {
      target: { on: "value", max: 20 },
      note: `${figures.openLoopRate.toFixed(0)} lookups/s over ${load}; ` +
        `${figures.openLoopErrors} errors; generator timer lag p99 ` +
        `${figures.generatorLag.p99.toFixed(1)} ms`,
    }),
    entry("tracker lookup max", figures.openLoopLatency.max, "ms", { note: load }),
    entry("tracker lookup p99, dashboard open", watchedFigures.openLoopLatency.p99, "ms", {
      baseline: figures.openLoopLatency.p99,
      target: { on: "ratio", max: 1.1 },
      note: `the same load with one SSE subscriber (${watch.events} events) and /metrics ` +
        `scraped every second (${watch.scrapes} scrapes, ${watch.scrapeErrors} failed); ` +
        `baseline: the run without; p50 ${watchedFigures.openLoopLatency.p50.toFixed(2)} ms vs ${
          figures.openLoopLatency.p50.toFixed(2)
        } ms`,
    }),
    entry("bare Deno server RSS per idle connection (plaintext)", barePlaintext ?? NaN, "KiB", {
      note: `bench/idle_connections.ts: ${sizes.peers} connections, one pending 1 KiB read each`,
    }),
    entry("bare Deno server RSS per idle connection (TLS)", bareTls ?? NaN, "KiB", {
      note:
        `the same with ${sizes.tlsPeers} TLS connections: the floor under the tracker's TLS figure`,
    }),
    entry("tracker RSS per peer (plaintext)", perPeer(figures, n), "KiB", {
      baseline: barePlaintext,
      floor: barePlaintext,
      target: { on: "value", max: 10 },
      note: `RSS ${mib(figures.rssIdleKiB).toFixed(0)} → ${
        mib(figures.rssConnectedKiB).toFixed(0)
      } MiB for ${n} peers; ${mib(figures.rssAfterLookupsKiB).toFixed(0)} MiB after the lookups`,
    }),
    entry("tracker RSS per peer (TLS)", perPeer(tlsFigures, sizes.tlsPeers), "KiB", {
      baseline: bareTls,
      floor: bareTls,
      target: { on: "value", max: 10 },
      note: `RSS ${mib(tlsFigures.rssIdleKiB).toFixed(0)} → ${
        mib(tlsFigures.rssConnectedKiB).toFixed(0)
      } MiB for ${sizes.tlsPeers} TLS peers`,
    }),
    entry(`tracker start (${sizes.files}-file db)`, restart.startSeconds, "s", {
      baseline: empty.startSeconds,
      note: "spawn to `listening on`, vs an empty database",
    }),
    entry(`tracker RSS at start (${sizes.files}-file db)`, mib(restartRss), "MiB", {
      baseline: mib(emptyRss),
      note: "vs an empty database",
    }),
  ];
}

export const trackerLoadBenchmark: Benchmark = {
  name: "tracker-load",
  description: "N connected peers, published files and lookups against one tracker",
  run: trackerLoad,
};
