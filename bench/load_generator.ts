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
 */
import net from "node:net";
import tls from "node:tls";
import { deadline } from "../lib/async/deadline.ts";
import { delay } from "../lib/async/delay.ts";
import { PROTOCOL_VERSION } from "../lib/protocol/messages.ts";
import { rssKiB } from "./resources.ts";
import { type LoadFigures, type LoadPlan, Wire } from "./wire.ts";

const PER_ADDRESS = 50;
const CONNECTING_AT_ONCE = 100;
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
    await pool(plan.tokens.length, CONNECTING_AT_ONCE, async (i) => {
      const wire = await open(plan, i);
      wires[i] = wire;
      await wire.request("hello", { protocol: PROTOCOL_VERSION, agent: "shoal-bench/load" });
      await wire.request("resume", { token: plan.tokens[i] });
      await wire.request("announce", { port: 10_000 + (i % 50_000) });
    });
    figures.connectSeconds = (performance.now() - started) / 1000;
    say(`${wires.length} peers connected and announced in ${figures.connectSeconds.toFixed(1)} s`);
    await delay(2000);
    figures.rssConnectedKiB = rss();
    if (plan.connectOnly) return figures;

    started = performance.now();
    await pool(plan.skipPublish ? 0 : plan.files, PUBLISHING_AT_ONCE, async (j) => {
      await wires[j % wires.length].request("publish", {
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
    const stride = Math.max(1, Math.floor(wires.length / plan.closedLoopConnections));
    started = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(plan.closedLoopConnections, wires.length) }, async (_, k) => {
        for (let n = 0; n < plan.maxLookupsPerConnection && performance.now() < deadline; n++) {
          await lookup(wires[k * stride], closed);
        }
      }),
    );
    figures.throughputLookups = closed.length;
    figures.throughputPerSecond = closed.length / ((performance.now() - started) / 1000);
    figures.throughputLatency = latencies(closed);
    say(`closed loop: ${figures.throughputPerSecond.toFixed(0)} lookups/s`);

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
        const wire = wires[Math.floor(Math.random() * wires.length)];
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
    say(
      `open loop at ${figures.openLoopRate.toFixed(0)} lookups/s: p99 ${
        figures.openLoopLatency.p99.toFixed(2)
      } ms (this generator's own timer lag: p99 ${figures.generatorLag.p99.toFixed(1)} ms)`,
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
