/**
 * The tracker-load generator, run as its own process by `tracker_load.ts`
 * (so its sockets and memory are apart from the runner's):
 *
 *   deno run -A bench/load_generator.ts PLAN.json
 *
 * It opens one connection per simulated peer, each resuming a session seeded
 * into the tracker's database and announcing itself, publishes files across
 * them, then issues lookups: first as fast as a fixed number of connections
 * can (throughput), then at a fixed rate spread over every connection
 * (latency). It reads the tracker's memory from /proc between phases and
 * prints one JSON line of figures at the end. Connections come from many
 * loopback addresses (127.77.x.y), since the tracker allows 64 per address.
 * Every loop is bounded by a count and a deadline.
 *
 * Peers are set up (connect, hello, resume, announce) through a window of
 * set-ups under way that grows by one with each success and halves at each
 * failure, so a tracker on a busy machine is not handed more handshakes than
 * it can finish in its deadline; a failed set-up is retried with growing
 * waits, and what failed, at which step and why, is counted and reported.
 */
import net from "node:net";
import tls from "node:tls";
import { deadline } from "../lib/async/deadline.ts";
import { delay } from "../lib/async/delay.ts";
import { PROTOCOL_VERSION } from "../lib/protocol/messages.ts";
import { rssKiB } from "./resources.ts";
import { type LoadFigures, type LoadPlan, Wire } from "./wire.ts";

const PER_ADDRESS = 50;
/** Set-ups under way at most (the window starts at {@link FIRST_WINDOW} and grows to this). */
const CONNECTING_AT_ONCE = 100;
const FIRST_WINDOW = 8;
/** A peer's set-up is tried this many times before it counts as failed. */
const SETUP_ATTEMPTS = 6;
/** The first retry waits about this long, doubling with each further one. */
const FIRST_RETRY_MS = 250;
const PUBLISHING_AT_ONCE = 128;
/** A connection idle this long gets a heartbeat (the tracker drops one silent for 35 s). */
const HEARTBEAT_AFTER_MS = 10_000;

const say = (line: string) => console.log(`# ${line}`);

function localAddress(index: number): string {
  const block = Math.floor(index / PER_ADDRESS);
  if (block >= 250 * 250) {
    throw new Error(`no loopback source address left for connection ${index}`);
  }
  return `127.77.${Math.floor(block / 250)}.${1 + (block % 250)}`;
}

async function open(plan: LoadPlan, index: number): Promise<Wire> {
  const target = plan.targets?.[index % plan.targets.length] ?? plan;
  const source = localAddress(index + (plan.addressOffset ?? 0));
  const options = { host: target.host, port: target.port, localAddress: source };
  const raw = net.connect(options);
  const socket = plan.certificate
    ? tls.connect({ socket: raw, ca: [plan.certificate], servername: "shoal" })
    : raw;
  const connected = new Promise<Wire>((resolve, reject) => {
    socket.once(plan.certificate ? "secureConnect" : "connect", () => {
      raw.setNoDelay(true);
      resolve(new Wire(socket));
    });
    socket.once("error", reject);
  });
  try {
    return await deadline(connected, 30_000, { what: `connection ${index}` });
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

async function pool(count: number, limit: number, work: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function latencies(samples: number[]) {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  return { p50: percentile(list, 0.5), p99: percentile(list, 0.99), max: list.at(-1) ?? NaN };
}

/**
 * With several generators, waits until the runner says every one is ready for
 * `phase` (it creates the file `<plan.gate>-<phase>`), so no generator's
 * lookups overlap another's set-up or closed loop. Bounded: 30 minutes.
 */
async function gate(plan: LoadPlan, phase: string): Promise<void> {
  if (!plan.gate) return;
  const path = `${plan.gate}-${phase}`;
  for (const end = performance.now() + 1_800_000; performance.now() < end;) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      await delay(50);
    }
  }
  throw new Error(`the runner never opened ${path}`);
}

/** What {@link setUpPeers} did: peers up, peers given up on, and why attempts failed. */
interface SetUp {
  connected: number;
  failed: number;
  retries: number;
  /** Failed attempts by step and reason ("hello: the tracker closed the connection": 3). */
  reasons: Record<string, number>;
}

/**
 * Connects, greets, resumes and announces every peer of the plan into
 * `wires` (a peer that never comes up stays undefined there), through a
 * window of set-ups under way that grows by one per success up to
 * {@link CONNECTING_AT_ONCE} and halves at each failure, retrying each peer
 * up to {@link SETUP_ATTEMPTS} times with doubling waits. Says how far it
 * got every five seconds.
 */
async function setUpPeers(plan: LoadPlan, wires: Wire[]): Promise<SetUp> {
  const result: SetUp = { connected: 0, failed: 0, retries: 0, reasons: {} };
  const most = plan.connectingAtOnce ?? CONNECTING_AT_ONCE;
  let window = Math.min(FIRST_WINDOW, most);
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = async () => {
    while (active >= window) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
  };
  const release = (succeeded: boolean) => {
    active--;
    window = succeeded ? Math.min(most, window + 1) : Math.max(1, Math.floor(window / 2));
    for (let free = window - active; free > 0 && waiting.length > 0; free--) waiting.shift()!();
  };
  const report = setInterval(() => {
    say(
      `setting peers up: ${result.connected}/${plan.tokens.length} up, window ${window}, ${result.retries} retries${
        describe(result.reasons)
      }`,
    );
  }, 5_000);
  try {
    await pool(plan.tokens.length, most, async (i) => {
      for (let attempt = 1; attempt <= SETUP_ATTEMPTS; attempt++) {
        await acquire();
        try {
          wires[i] = await setUpPeer(plan, i);
          release(true);
          result.connected++;
          return;
        } catch (error) {
          release(false);
          const why = (error as Error).message;
          result.reasons[why] = (result.reasons[why] ?? 0) + 1;
        }
        if (attempt === SETUP_ATTEMPTS) break;
        result.retries++;
        const waitMs = FIRST_RETRY_MS * 2 ** (attempt - 1);
        await delay(waitMs / 2 + Math.random() * waitMs);
      }
      result.failed++;
    });
  } finally {
    clearInterval(report);
  }
  return result;
}

/** One peer's set-up; fails with "STEP: why" and leaves nothing open. */
async function setUpPeer(plan: LoadPlan, i: number): Promise<Wire> {
  let wire: Wire;
  try {
    wire = await open(plan, i);
  } catch (error) {
    throw new Error(`connect: ${errorReason(error)}`);
  }
  const steps: [string, unknown][] = [
    ["hello", { protocol: PROTOCOL_VERSION, agent: "shoal-bench/load" }],
    ["resume", { token: plan.tokens[i] }],
    ["announce", { port: 10_000 + (i % 50_000) }],
  ];
  for (const [step, params] of steps) {
    try {
      await wire.request(step, params);
    } catch (error) {
      wire.close();
      throw new Error(`${step}: ${errorReason(error)}`);
    }
  }
  return wire;
}

/** A failure in a few words: the socket's error code, the tracker's error code, or the message. */
function errorReason(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === "string") return code;
  const text = String(message ?? error);
  return /^([A-Z_]+): /.exec(text)?.[1] ?? text;
}

/** How many of `wires` the tracker closed or lost, by reason. */
function droppedConnections(wires: Wire[]): Record<string, number> {
  const dropped: Record<string, number> = {};
  for (const wire of wires) {
    if (wire.failure) {
      const why = errorReason(wire.failure);
      dropped[why] = (dropped[why] ?? 0) + 1;
    }
  }
  return dropped;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((total, n) => total + n, 0);
}

/** "; 3× hello: the tracker closed the connection, 1× connect: ECONNREFUSED", or "". */
function describe(counts: Record<string, number>): string {
  const parts = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([why, n]) =>
    `${n}× ${why}`
  );
  return parts.length ? `; ${parts.join(", ")}` : "";
}

async function main(planPath: string): Promise<LoadFigures> {
  const plan = JSON.parse(await Deno.readTextFile(planPath)) as LoadPlan;
  const pids = plan.targets?.map((target) => target.pid) ?? [plan.trackerPid];
  const rss = () => pids.reduce((sum, pid) => sum + (rssKiB(pid) ?? NaN), 0);
  const figures: LoadFigures = { rssIdleKiB: rss() } as LoadFigures;
  const wires: Wire[] = new Array(plan.tokens.length);

  // Keeps every connection alive through the phases, however long they take. Like real peers,
  // each heartbeats every 10 s; checking often keeps them spread out rather than in bursts.
  const keeper = setInterval(() => {
    const now = performance.now();
    for (const wire of wires) {
      if (wire && wire.idleSince(now) > HEARTBEAT_AFTER_MS) {
        wire.request("heartbeat", {}).catch(() => {});
      }
    }
  }, 50);
  try {
    let started = performance.now();
    const setUp = await setUpPeers(plan, wires);
    figures.connected = setUp.connected;
    figures.connectFailed = setUp.failed;
    figures.connectRetries = setUp.retries;
    figures.connectFailures = setUp.reasons;
    figures.connectSeconds = (performance.now() - started) / 1000;
    say(
      `${setUp.connected} peers connected and announced in ${
        figures.connectSeconds.toFixed(1)
      } s; ${setUp.failed} failed, ${setUp.retries} retries${describe(setUp.reasons)}`,
    );
    if (setUp.connected === 0) throw new Error(`no peer could connect${describe(setUp.reasons)}`);
    const live = wires.filter((wire) => wire !== undefined);
    await delay(2000);
    figures.rssConnectedKiB = rss();
    if (plan.connectOnly) return figures;
    await gate(plan, "lookups");

    started = performance.now();
    await pool(plan.skipPublish ? 0 : plan.files, PUBLISHING_AT_ONCE, async (j) => {
      await live[j % live.length].request("publish", {
        name: `file-${j}`,
        type: "bin",
        size: 1 + j,
        contentId: plan.contentIds[j % plan.contentIds.length],
      });
    });
    figures.publishSeconds = (performance.now() - started) / 1000;
    say(`${plan.files} files published in ${figures.publishSeconds.toFixed(1)} s`);
    figures.rssPublishedKiB = rss();

    // Throughput: a fixed number of connections, each with one lookup outstanding at a time.
    const lookup = async (wire: Wire, samples: number[]) => {
      const name = `file-${Math.floor(Math.random() * plan.files)}`;
      const sent = performance.now();
      const result = await wire.request("lookup", { name }) as { files: unknown[] };
      samples.push(performance.now() - sent);
      if (result.files.length !== 1) throw new Error(`lookup ${name}: ${result.files.length}`);
    };
    const closed: number[] = [];
    const deadline = performance.now() + plan.lookupSeconds * 1000;
    const stride = Math.max(1, Math.floor(live.length / plan.closedLoopConnections));
    started = performance.now();
    let closedErrors = 0;
    await Promise.all(
      Array.from({ length: Math.min(plan.closedLoopConnections, live.length) }, async (_, k) => {
        // A connection the tracker dropped is counted and passed over for the next one up.
        let at = k * stride;
        for (let n = 0; n < plan.maxLookupsPerConnection && performance.now() < deadline; n++) {
          for (let tries = 0; tries < live.length && live[at].failure; tries++) {
            at = (at + 1) % live.length;
          }
          await lookup(live[at], closed).catch(() => void closedErrors++);
        }
      }),
    );
    figures.throughputErrors = closedErrors;
    figures.throughputLookups = closed.length;
    figures.throughputPerSecond = closed.length / ((performance.now() - started) / 1000);
    figures.throughputLatency = latencies(closed);
    say(`closed loop: ${figures.throughputPerSecond.toFixed(0)} lookups/s, ${closedErrors} errors`);

    await gate(plan, "open-loop");
    // Latency: a fixed offered rate, each lookup on a random connection.
    const open_: number[] = [];
    const inFlight = new Set<Promise<void>>();
    let issued = 0;
    let errors = 0;
    // How late this process's own timers run: latency it adds to what it measures.
    const lags: number[] = [];
    let expected = performance.now() + 10;
    const lagMonitor = setInterval(() => {
      const now = performance.now();
      lags.push(Math.max(0, now - expected));
      expected = now + 10;
    }, 10);
    started = performance.now();
    const end = started + plan.lookupSeconds * 1000;
    while (performance.now() < end) {
      // Issue whatever the schedule owes by now, however late this tick runs.
      const owed = Math.floor((plan.openLoopRate * (performance.now() - started)) / 1000);
      for (; issued < owed && inFlight.size < 10_000; issued++) {
        const wire = live[Math.floor(Math.random() * live.length)];
        const p = lookup(wire, open_).catch(() => void errors++).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await delay(5);
    }
    await Promise.all(inFlight);
    clearInterval(lagMonitor);
    figures.generatorLag = latencies(lags);
    figures.openLoopRate = open_.length / ((performance.now() - started) / 1000);
    figures.openLoopLookups = open_.length;
    figures.openLoopErrors = errors;
    figures.openLoopLatency = latencies(open_);
    figures.rssAfterLookupsKiB = rss();
    figures.dropped = droppedConnections(live);
    say(
      `open loop at ${figures.openLoopRate.toFixed(0)} lookups/s: p99 ${
        figures.openLoopLatency.p99.toFixed(2)
      } ms, ${errors} errors (this generator's own timer lag: p99 ${
        figures.generatorLag.p99.toFixed(1)
      } ms); connections lost since set-up: ${sum(figures.dropped)}${describe(figures.dropped)}`,
    );
    return figures;
  } finally {
    clearInterval(keeper);
    for (const wire of wires) wire?.close();
  }
}

if (import.meta.main) {
  const figures = await main(Deno.args[0]);
  console.log(JSON.stringify(figures));
  // Sockets closing in the background need not hold the exit.
  Deno.exit(0);
}
