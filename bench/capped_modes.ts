/**
 * Plaintext against TLS on the swarm benchmark's capped links, by CPU per
 * MiB rather than by speed: one capped source to one fetcher, eight capped
 * sources to one uncapped fetcher, and a flash crowd of eight capped
 * downloaders from one capped source, each mode run in turn in one run.
 * CPU is user + system from `/proc`, the fetch processes' start-up included.
 * Needs root (network namespaces, `tc`); not part of `deno task bench`.
 *
 *   deno run --allow-all bench/capped_modes.ts [--size MIB] [--runs N]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TestLan } from "../tests/helpers/netns.ts";
import { BenchPeer, type Daemon, fetchJson, startTracker } from "./processes.ts";
import { cpuSeconds, isRoot, tempDir, writeRandomFile } from "./resources.ts";
import { seedAccounts, seedShares } from "./seed.ts";

const MIB = 1024 * 1024;
const RATE = "100mbit";
const SOURCES = 8;
const CROWD = 8;

const { values } = parseArgs({
  options: { size: { type: "string", default: "64" }, runs: { type: "string", default: "2" } },
});
const size = Number(values.size) * MIB;
const runs = Number(values.runs);
if (!isRoot()) {
  console.error("capped_modes.ts needs root for network namespaces: run it with sudo");
  Deno.exit(2);
}

/** CPU seconds of some daemons and of this process's waited-for children. */
function cpu(daemons: Daemon[]): { daemons: number; children: number } {
  return {
    daemons: daemons.reduce((sum, daemon) => sum + (cpuSeconds(daemon.pid) ?? 0), 0),
    children: cpuSeconds("children") ?? 0,
  };
}

const sourceNames = Array.from({ length: SOURCES }, (_, i) => `s${i + 1}`);
const crowdNames = Array.from({ length: CROWD }, (_, i) => `d${i + 1}`);
await using lan = await TestLan.create(["t", "f", ...sourceNames, ...crowdNames]);
for (const name of [...sourceNames, ...crowdNames]) await lan.limitRate(lan.hosts[name], RATE);
await using dir = await tempDir("shoal-bench-modes-");
// One file served by s1 alone (the one-source fetch and the crowd), one by all eight.
for (const name of ["one", "all"]) await writeRandomFile(join(dir.path, name), size);

for (const plaintext of [true, false]) {
  const mode = plaintext ? "plaintext" : "TLS";
  const home = (name: string) => join(dir.path, mode, name);
  const db = join(dir.path, `${mode}.db`);
  await seedAccounts(
    db,
    [...sourceNames, "f", ...crowdNames].map((name) => ({
      username: `peer-${name}`,
      home: home(name),
    })),
  );
  await seedShares(
    db,
    sourceNames.flatMap((name, i) =>
      (i === 0 ? ["one", "all"] : ["all"]).map((file) => ({
        owner: `peer-${name}`,
        home: home(name),
        name: file,
        path: join(dir.path, file),
      }))
    ),
  );
  const t = lan.hosts.t;
  const tracker = await startTracker({ db, host: t.ip, netns: t.netns, plaintext });
  const peer = (name: string) =>
    new BenchPeer(home(name), tracker.address, { netns: lan.hosts[name].netns, plaintext });
  const daemons: Daemon[] = [tracker.daemon];
  try {
    const sources: Daemon[] = [];
    for (const name of sourceNames) sources.push(await peer(name).serve());
    daemons.push(...sources);
    for (let run = 1; run <= runs; run++) {
      for (const count of [1, SOURCES]) {
        const serving = sources.slice(0, count);
        const before = cpu(serving);
        const name = count === 1 ? "one" : "all";
        const summary = await fetchJson(peer("f"), name, join(dir.path, "got"));
        const after = cpu(serving);
        await Deno.remove(join(dir.path, "got"));
        const mib = size / MIB;
        console.log(
          `${mode} run ${run}, ${count} source(s): ` +
            `sources ${((after.daemons - before.daemons) * 1000 / mib).toFixed(2)} ms/MiB, ` +
            `fetcher ${((after.children - before.children) * 1000 / mib).toFixed(2)} ms/MiB, ` +
            `${(size / 1e6 / summary.seconds).toFixed(1)} MB/s`,
        );
      }
      const seed = sources.slice(0, 1);
      const before = cpu(seed);
      const started = performance.now();
      await Promise.all(
        crowdNames.map(async (name) => {
          await fetchJson(peer(name), "one", join(dir.path, `got-${name}`));
          await Deno.remove(join(dir.path, `got-${name}`));
        }),
      );
      const wall = (performance.now() - started) / 1000;
      const after = cpu(seed);
      const mib = CROWD * size / MIB;
      console.log(
        `${mode} run ${run}, flash crowd of ${CROWD}: ` +
          `source ${((after.daemons - before.daemons) * 1000 / mib).toFixed(2)} ms/MiB, ` +
          `downloaders ${((after.children - before.children) * 1000 / mib).toFixed(2)} ms/MiB, ` +
          `all done in ${wall.toFixed(2)} s`,
      );
    }
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
  }
}
