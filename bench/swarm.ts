/**
 * Swarm speed-up on test hosts in network namespaces: 1, 2, 4 and 8
 * sources, each on its own host with its uplink capped at the same rate by
 * `tc`, and a fetcher on another host. The download rate is compared with
 * the sum of the caps (the flash crowd is `flash_crowd.ts`). The namespaces are the benchmark's own and are removed
 * however it ends; every address is one it assigned.
 */
import { join } from "node:path";
import { deadline } from "../lib/async/deadline.ts";
import { type Host, netnsUnavailable, TestLan } from "../tests/helpers/netns.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import { BenchPeer, type Daemon, fetchJson, runDenoCopy, startTracker } from "./processes.ts";
import {
  ensureSocat,
  inParallel,
  mbps,
  onInterrupt,
  tempDir,
  writeRandomFile,
  writeTlsFiles,
} from "./resources.ts";
import { seedAccounts, seedShares } from "./seed.ts";

const MIB = 1024 * 1024;
const SOURCE_COUNTS = [1, 2, 4, 8];
const SOURCES = SOURCE_COUNTS.at(-1)!;
/** Peer processes set up at once (each is a Deno start-up, on a machine with few cores). */
const SETUP_PARALLEL = 4;

interface Sizes {
  /** Cap on every source's and downloader's uplink, in Mbit/s. */
  rateMbit: number;
  /** Bytes per source in the speed-up runs, so every run takes about as long. */
  perSource: number;
}

const QUICK: Sizes = { rateMbit: 40, perSource: 8 * MIB };
const FULL: Sizes = { rateMbit: 100, perSource: 64 * MIB };

/**
 * Raw TCP with the same hosts and caps: every source host sends `file` to
 * the fetcher host with socat at once. Returns the aggregate MB/s, what the
 * machine itself manages through namespaces, veth, bridge and `tc`.
 */
async function rawSwarm(
  lan: TestLan & { hosts: Record<string, Host> },
  sources: string[],
  file: string,
): Promise<number> {
  const fetcher = lan.hosts.f;
  const receivers = sources.map((_, i) =>
    new Deno.Command("ip", {
      args: [
        ...["netns", "exec", fetcher.netns, "socat", "-u", "-b", "1048576"],
        `TCP-LISTEN:${7000 + i},reuseaddr`,
        "OPEN:/dev/null",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  try {
    const { size } = await Deno.stat(file);
    const started = performance.now();
    const sent = await Promise.all(sources.map((name, i) =>
      new Deno.Command("ip", {
        args: [
          ...["netns", "exec", lan.hosts[name].netns, "socat", "-u", "-b", "1048576"],
          `FILE:${file}`,
          `TCP:${fetcher.ip}:${7000 + i},retry=100,interval=0.05`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output()
    ));
    // A sender that gave up leaves its receiver listening: fail (and kill it) rather than wait.
    const failed = sent.find((output) => !output.success);
    if (failed) throw new Error(`socat: ${new TextDecoder().decode(failed.stderr).trim()}`);
    await deadline(Promise.all(receivers.map((receiver) => receiver.status)), 60_000, {
      what: "the socat receivers",
    });
    return mbps(sources.length * size, (performance.now() - started) / 1000);
  } finally {
    for (const receiver of receivers) {
      try {
        receiver.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
  }
}

/**
 * The plainest Deno copy on the same hosts and caps: every source host sends
 * `file` over TLS to one receiving process on the fetcher host, which hashes
 * what arrives. Returns the aggregate MB/s, the runtime's own floor.
 */
async function denoCopyRate(
  lan: TestLan & { hosts: Record<string, Host> },
  sources: string[],
  file: string,
  dir: string,
): Promise<number> {
  const seconds = await runDenoCopy({
    source: file,
    target: join(dir, "deno-copy"),
    senders: sources.map((name) => ({ netns: lan.hosts[name].netns, ip: lan.hosts[name].ip })),
    receiver: { netns: lan.hosts.f.netns },
    tls: await writeTlsFiles(dir),
    sha256: true,
  });
  return mbps(sources.length * (await Deno.stat(file)).size, seconds);
}

async function swarm({ quick, log }: BenchContext): Promise<Entry[]> {
  const setupStarted = performance.now();
  const why = await netnsUnavailable();
  if (why) {
    log(`  skipped: ${why}`);
    return [];
  }
  const sizes = quick ? QUICK : FULL;
  const sourceNames = Array.from({ length: SOURCES }, (_, i) => `s${i + 1}`);
  await using lan = await TestLan.create(["t", "f", ...sourceNames]);
  using _interrupted = onInterrupt(() => lan[Symbol.asyncDispose]());
  await using dir = await tempDir("shoal-bench-swarm-");
  const rate = `${sizes.rateMbit}mbit`;
  for (const name of sourceNames) await lan.limitRate(lan.hosts[name], rate);

  const files = new Map<string, number>(
    SOURCE_COUNTS.map((n) => [`swarm-${n}`, n * sizes.perSource]),
  );
  for (const [name, size] of files) await writeRandomFile(join(dir.path, name), size);
  log(`  ${SOURCES} sources capped at ${rate} each`);

  const t = lan.hosts.t;
  const db = join(dir.path, "tracker.db");
  const peerNames = [...sourceNames, "f"];
  await seedAccounts(
    db,
    peerNames.map((name) => ({ username: `peer-${name}`, home: join(dir.path, name) })),
  );
  // Source i (1-based) takes part in every run with at least i sources.
  const shares = sourceNames.flatMap((name, i) =>
    SOURCE_COUNTS.filter((n) => n > i).map((n) => `swarm-${n}`)
      .map((file) => ({
        owner: `peer-${name}`,
        home: join(dir.path, name),
        name: file,
        path: join(dir.path, file),
      }))
  );
  await seedShares(db, shares);
  const tracker = await startTracker({ db, host: t.ip, netns: t.netns });
  const daemons: Daemon[] = [tracker.daemon];
  const peer = (name: string) =>
    new BenchPeer(join(dir.path, name), tracker.address, { netns: lan.hosts[name].netns });
  try {
    const sources = sourceNames.map(peer);
    const fetcher = peer("f");
    daemons.push(...await inParallel(sources, SETUP_PARALLEL, (source) => source.serve()));
    log(`  set up in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);

    const entries: Entry[] = [];
    const capMBps = sizes.rateMbit / 8;
    let oneSource = 0;
    // The runtime's floor on the same links: one Deno process receiving from eight over TLS,
    // hashing what arrives, as a fetch does, with none of Shoal's protocol.
    const denoRate = await denoCopyRate(lan, sourceNames, join(dir.path, "swarm-1"), dir.path);
    log(
      `  plainest Deno copy from ${SOURCES} sources at once (TLS + SHA-256): ${
        denoRate.toFixed(1)
      } MB/s`,
    );
    for (const n of SOURCE_COUNTS) {
      const summary = await fetchJson(fetcher, `swarm-${n}`, join(dir.path, `got-${n}`));
      await Deno.remove(join(dir.path, `got-${n}`));
      const rateMBps = mbps(summary.size, summary.seconds);
      if (n === 1) oneSource = rateMBps;
      const served = summary.sources.filter((s) => s.pieces > 0).length;
      log(
        `  ${n} source(s): ${rateMBps.toFixed(1)} MB/s (${summary.seconds.toFixed(2)} s; ` +
          `${served} of ${n} served pieces)`,
      );
      entries.push(
        entry(`swarm ${n} source${n > 1 ? "s" : ""}`, rateMBps, "MB/s", {
          baseline: n * capMBps,
          target: { on: "ratio", min: 0.9 },
          floor: n === SOURCES ? denoRate : null,
          note: `baseline = sum of ${n} caps of ${rate}; ${served} of ${n} sources served`,
        }),
      );
      if (n > 1) {
        entries.push(entry(`swarm ${n} speed-up`, rateMBps / oneSource, "× one source"));
      }
    }

    const missing = await ensureSocat(log);
    if (missing) {
      log(`  skipping the raw TCP swarm baseline: ${missing}`);
    } else {
      // Each source sends a file of the 1-source run's size, as in the swarm runs.
      const raw = await rawSwarm(lan, sourceNames, join(dir.path, "swarm-1"));
      log(`  raw TCP (socat) from ${SOURCES} sources at once: ${raw.toFixed(1)} MB/s`);
      entries.push(
        entry(`swarm ${SOURCES} sources, raw TCP (socat)`, raw, "MB/s", {
          baseline: SOURCES * capMBps,
          note: "what the machine moves through the same namespaces, veth, bridge and tc",
        }),
      );
    }

    entries.push(
      entry(`swarm ${SOURCES} sources, plainest Deno copy (TLS + SHA-256)`, denoRate, "MB/s", {
        baseline: SOURCES * capMBps,
        note: "bench/deno_copy.ts: one receiving process, as a fetch is, and no protocol",
      }),
    );

    return entries;
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
  }
}

export const swarmBenchmark: Benchmark = {
  name: "swarm",
  description: "1-8 rate-capped sources in network namespaces",
  run: swarm,
};
