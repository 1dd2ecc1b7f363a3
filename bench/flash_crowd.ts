/**
 * Flash crowd (issue 17): 8 downloaders on their own hosts, each uplink
 * capped by `tc`, fetch one file from one equally capped source at once,
 * against one downloader alone from the same source. Pieces must spread so
 * the downloaders serve each other: the target is all done within 1.2× the
 * time one alone takes. Network namespaces of its own, removed however it
 * ends; needs root.
 */
import { join } from "node:path";
import { netnsUnavailable, TestLan } from "../tests/helpers/netns.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import { BenchPeer, type Daemon, fetchJson, type FetchSummary, startTracker } from "./processes.ts";
import { LinkWatch } from "./link_watch.ts";
import { cpuSeconds, inParallel, onInterrupt, tempDir, writeRandomFile } from "./resources.ts";
import { seedAccounts, seedShares } from "./seed.ts";

const MIB = 1024 * 1024;
const CROWD = 8;

interface Sizes {
  rateMbit: number;
  size: number;
}
const QUICK: Sizes = { rateMbit: 40, size: 16 * MIB };
const FULL: Sizes = { rateMbit: 100, size: 128 * MIB };

async function flashCrowd({ quick, log }: BenchContext): Promise<Entry[]> {
  const why = await netnsUnavailable();
  if (why) {
    log(`  skipped: ${why}`);
    return [];
  }
  const { rateMbit, size } = quick ? QUICK : FULL;
  const crowdNames = Array.from({ length: CROWD }, (_, i) => `d${i + 1}`);
  await using lan = await TestLan.create(["t", "s1", "f", ...crowdNames]);
  using _interrupted = onInterrupt(() => lan[Symbol.asyncDispose]());
  await using dir = await tempDir("shoal-bench-crowd-");
  const rate = `${rateMbit}mbit`;
  for (const name of ["s1", "f", ...crowdNames]) await lan.limitRate(lan.hosts[name], rate);
  await writeRandomFile(join(dir.path, "crowd"), size);
  const db = join(dir.path, "tracker.db");
  await seedAccounts(
    db,
    ["s1", "f", ...crowdNames].map((name) => ({
      username: `peer-${name}`,
      home: join(dir.path, name),
    })),
  );
  await seedShares(db, [{
    owner: "peer-s1",
    home: join(dir.path, "s1"),
    name: "crowd",
    path: join(dir.path, "crowd"),
  }]);
  const t = lan.hosts.t;
  const tracker = await startTracker({ db, host: t.ip, netns: t.netns });
  const daemons: Daemon[] = [tracker.daemon];
  const peer = (name: string) =>
    new BenchPeer(join(dir.path, name), tracker.address, { netns: lan.hosts[name].netns });
  try {
    const source = await peer("s1").serve();
    daemons.push(source);
    log(`  1 source and ${CROWD} downloaders capped at ${rate} each, ${size / MIB} MiB`);
    const cap = rateMbit * 1e6 / 8;
    const cpu = () => ({
      source: cpuSeconds(source.pid) ?? 0,
      fetches: cpuSeconds("children") ?? 0,
    });
    using aloneWatch = await LinkWatch.start(lan);
    let before = cpu();
    const alone = await fetchJson(peer("f"), "crowd", join(dir.path, "got-alone"));
    log(
      `  one downloader alone: ${alone.seconds.toFixed(2)} s (command ${
        alone.wallSeconds.toFixed(2)
      } s); ${describeUse(await aloneWatch.stop(), size, cap, before, cpu(), 1)}`,
    );
    using watch = await LinkWatch.start(lan);
    before = cpu();
    const started = performance.now();
    const endedAt: number[] = [];
    const results: FetchSummary[] = await inParallel(
      crowdNames.map((name, i) => ({ name, i })),
      CROWD,
      async ({ name, i }) => {
        const result = await fetchJson(peer(name), "crowd", join(dir.path, `crowd-${i}`));
        endedAt[i] = (performance.now() - started) / 1000;
        return result;
      },
    );
    const wall = (performance.now() - started) / 1000;
    await watch.stop();
    log(`  crowd: ${describeUse(watch, size, cap, before, cpu(), CROWD)}`);
    const lastBusy = watch.use("s1", cap).lastBusy;
    const crowdSent = crowdNames.reduce((sum, name) => sum + watch.use(name, cap).bytes, 0);
    const crowdRates = crowdNames.map((name) => watch.use(name, cap).rates);
    log(
      `  the crowd's links, MB/s by second, all together: ${
        crowdRates[0].map((_, s) => crowdRates.reduce((sum, r) => sum + (r[s] ?? 0), 0).toFixed(0))
          .join(" ")
      }`,
    );
    log(
      `  the crowd uploaded ${(crowdSent / size).toFixed(2)} × the file to each other; ` +
        `downloads ended at ${endedAt.map((t) => t.toFixed(1)).join(", ")} s, the last ` +
        `${(Math.max(...endedAt) - lastBusy).toFixed(1)} s after the source's link was last busy`,
    );
    for (const [i, r] of results.entries()) {
      const seed = r.sources.find((s) => !s.partial);
      log(
        `    d${i + 1}: ${r.seconds.toFixed(2)} s, ${seed?.pieces ?? 0} pieces from the source` +
          `${
            seed?.queued
              ? ` (queued ${ordinalPlace(seed.queued.place)}, ${seed.queued.seconds.toFixed(1)} s)`
              : ""
          }, ` +
          `${(r.transferred / r.size).toFixed(2)} × its size received`,
      );
    }
    const slowest = Math.max(...results.map((r) => r.seconds));
    const fromPeers = results.reduce(
      (sum, r) => sum + r.sources.filter((s) => s.partial).reduce((a, s) => a + s.pieces, 0),
      0,
    );
    const pieces = results.reduce((sum, r) => sum + r.sources.reduce((a, s) => a + s.pieces, 0), 0);
    const queued = results.filter((r) => r.sources.some((s) => s.queued)).length;
    log(
      `  crowd of ${CROWD}: all done in ${wall.toFixed(2)} s, slowest download ` +
        `${slowest.toFixed(2)} s = ${(slowest / alone.seconds).toFixed(2)} × alone; ` +
        `${fromPeers} of ${pieces} pieces came from other downloaders; ` +
        `${queued} waited for a slot at the source`,
    );
    return [
      entry(`flash crowd ${CROWD} (slowest download)`, slowest, "s", {
        baseline: alone.seconds,
        target: { on: "ratio", max: 1.2 },
        note: "each download's own seconds (process start-up excluded) vs one alone",
      }),
      entry(`flash crowd ${CROWD} (all done, wall)`, wall, "s", {
        baseline: alone.wallSeconds,
        note: `${CROWD} Deno start-ups at once included; without sharing about ${CROWD}×`,
      }),
    ];
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
  }
}

/** The source's link and the CPU used over one run, as a line. */
function describeUse(
  watch: LinkWatch,
  size: number,
  cap: number,
  before: { source: number; fetches: number },
  after: { source: number; fetches: number },
  downloads: number,
): string {
  const use = watch.use("s1", cap);
  const mib = downloads * size / MIB;
  const perMiB = (seconds: number) => (seconds * 1000 / mib).toFixed(1);
  return `the source sent ${(use.bytes / size).toFixed(3)} × the file, its link last busy at ` +
    `${use.lastBusy.toFixed(1)} s and under half its cap for ${use.idle.toFixed(1)} s before ` +
    `(MB/s by second: ${use.rates.map((r) => r.toFixed(1)).join(" ")}); CPU per MiB received: ` +
    `source ${perMiB(after.source - before.source)} ms, downloaders ` +
    `${perMiB(after.fetches - before.fetches)} ms`;
}

function ordinalPlace(place: number): string {
  return `place ${place}`;
}

export const flashCrowdBenchmark: Benchmark = {
  name: "flash-crowd",
  description: "8 downloaders from 1 rate-capped source in network namespaces, against 1 alone",
  run: flashCrowd,
};
