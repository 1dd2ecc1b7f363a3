/**
 * Single-source transfer over loopback: one owner serves a generated file,
 * one fetcher downloads it, with TLS and with --insecure-plaintext. The
 * baseline is a raw TCP copy of the same bytes between two `socat`
 * processes in the same run (file → loopback → file, then fsync, since a
 * fetch also writes its file and syncs it before renaming it into place).
 * A second baseline is the runtime's own floor: the plainest Deno program
 * making the same copy (bench/deno_copy.ts), plaintext and TLS, with and
 * without SHA-256 of what it receives.
 */
import { join } from "node:path";
import { delay } from "../lib/async/delay.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import { BenchPeer, type Daemon, fetchJson, runDenoCopy, startTracker } from "./processes.ts";
import {
  cpuSeconds,
  ensureSocat,
  mbps,
  run,
  tempDir,
  writeRandomFile,
  writeTlsFiles,
} from "./resources.ts";
import { seedAccounts } from "./seed.ts";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** Each figure is the best of this many runs: the machines are shared and noisy. */
const RUNS = 3;

function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return (listener.addr as Deno.NetAddr).port;
}

/**
 * Copies `source` over loopback TCP with socat (1 MiB buffers) into
 * `target` (or /dev/null), and returns the seconds from starting the sender
 * until the receiver has written (and, for a file, synced) every byte.
 */
async function socatCopy(
  source: string,
  target: string | null,
): Promise<{ seconds: number; cpu: number | null }> {
  const cpuBefore = cpuSeconds("children");
  const port = freePort();
  const sink = target === null ? "OPEN:/dev/null" : `CREATE:${target}`;
  const receiver = new Deno.Command("socat", {
    args: ["-u", "-b", "1048576", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, sink],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    await delay(100);
    const started = performance.now();
    await run("socat", [
      "-u",
      "-b",
      "1048576",
      `FILE:${source}`,
      `TCP:127.0.0.1:${port},retry=50,interval=0.02`,
    ]);
    const status = await receiver.status;
    if (!status.success) throw new Error(`the socat receiver exited ${status.code}`);
    if (target !== null) await run("sync", [target]);
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuSeconds("children");
    return { seconds, cpu: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore };
  } finally {
    try {
      receiver.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await receiver.status;
    await receiver.stderr.cancel().catch(() => {});
    if (target !== null) await Deno.remove(target).catch(() => {});
  }
}

/** One fetch: its own seconds, the command's, and the CPU seconds each side spent on it. */
interface FetchRun {
  seconds: number;
  wallSeconds: number;
  fetcherCpu: number | null;
  ownerCpu: number | null;
}

/** Sets up a tracker, an owner serving `original` and a fetcher; fetches RUNS times. */
async function shoalFetches(
  dir: string,
  original: string,
  plaintext: boolean,
  log: (line: string) => void,
): Promise<FetchRun[]> {
  const mode = plaintext ? "plaintext" : "tls";
  const db = join(dir, `tracker-${mode}.db`);
  const [ownerHome, fetcherHome] = [join(dir, `owner-${mode}`), join(dir, `fetcher-${mode}`)];
  await seedAccounts(db, [
    { username: "owner", home: ownerHome },
    { username: "fetcher", home: fetcherHome },
  ]);
  const tracker = await startTracker({ db, plaintext });
  const daemons: Daemon[] = [tracker.daemon];
  try {
    const owner = new BenchPeer(ownerHome, tracker.address, { plaintext });
    await owner.ok(["publish", "data", original]);
    const serving = await owner.serve();
    daemons.push(serving);
    const fetcher = new BenchPeer(fetcherHome, tracker.address, { plaintext });
    const runs: FetchRun[] = [];
    for (let i = 0; i < RUNS; i++) {
      const output = join(dir, `fetched-${mode}-${i}.bin`);
      const before = { owner: cpuSeconds(serving.pid), fetcher: cpuSeconds("children") };
      const summary = await fetchJson(fetcher, "data", output);
      const after = { owner: cpuSeconds(serving.pid), fetcher: cpuSeconds("children") };
      const spent = (side: "owner" | "fetcher") =>
        before[side] === null || after[side] === null ? null : after[side]! - before[side]!;
      const { size } = await Deno.stat(output);
      await Deno.remove(output);
      if (size !== summary.size) throw new Error(`fetched ${size} bytes, expected ${summary.size}`);
      const run: FetchRun = { ...summary, fetcherCpu: spent("fetcher"), ownerCpu: spent("owner") };
      log(
        `  ${mode} fetch: ${mbps(size, summary.seconds).toFixed(0)} MB/s ` +
          `(${summary.seconds.toFixed(2)} s; command ${summary.wallSeconds.toFixed(2)} s; ` +
          `CPU ${run.fetcherCpu?.toFixed(2)} s fetcher, ${run.ownerCpu?.toFixed(2)} s owner)`,
      );
      runs.push(run);
    }
    return runs;
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
  }
}

async function singleSource({ quick, log }: BenchContext): Promise<Entry[]> {
  const size = quick ? 64 * MIB : 1024 * MIB;
  await using dir = await tempDir("shoal-bench-single-");
  const original = join(dir.path, "data.bin");
  log(`  generating ${size / MIB} MiB`);
  await writeRandomFile(original, size);
  // Let the generated file reach the disk, so its writeback does not slow the first run.
  await run("sync", []);

  const entries: Entry[] = [];
  const missing = await ensureSocat(log);
  let raw: number | null = null;
  let rawCpuPerGiB: number | null = null;
  if (missing) {
    log(`  skipping the raw TCP baseline: ${missing}`);
  } else {
    let best = Infinity;
    let bestNull = Infinity;
    let rawCpu: number | null = null;
    for (let i = 0; i < RUNS; i++) {
      const copy = await socatCopy(original, join(dir.path, "raw.bin"));
      if (copy.seconds < best) [best, rawCpu] = [copy.seconds, copy.cpu];
      bestNull = Math.min(bestNull, (await socatCopy(original, null)).seconds);
    }
    raw = mbps(size, best);
    rawCpuPerGiB = rawCpu === null ? null : rawCpu * GIB / size;
    log(
      `  socat file→file+fsync: ${raw.toFixed(0)} MB/s; to /dev/null ${
        mbps(size, bestNull).toFixed(0)
      } MB/s`,
    );
    entries.push(
      entry("raw tcp socat (file→file, fsync)", raw, "MB/s", { note: `${size / MIB} MiB` }),
      entry("raw tcp socat (file→/dev/null)", mbps(size, bestNull), "MB/s"),
    );
    if (rawCpuPerGiB !== null) {
      entries.push(entry("raw tcp socat CPU", rawCpuPerGiB, "CPU s/GiB", {
        note: "both socat processes, user + system",
      }));
    }
  }

  // The runtime's floor, plaintext and TLS, bare and hashing, against the same baseline.
  const tls = await writeTlsFiles(dir.path);
  /** The hashing copy's MB/s, by plaintext. */
  const hashingFloor = new Map<boolean, number>();
  for (const plaintext of [true, false]) {
    for (const sha256 of [false, true]) {
      let best = Infinity;
      for (let i = 0; i < RUNS; i++) {
        const target = join(dir.path, "copy.bin");
        const seconds = await runDenoCopy({
          source: original,
          target,
          senders: [{}],
          tls: plaintext ? null : tls,
          sha256,
        });
        best = Math.min(best, seconds);
      }
      const name = `plainest Deno copy ${plaintext ? "plaintext" : "TLS"}${
        sha256 ? " + SHA-256" : ""
      }`;
      log(`  ${name}: ${mbps(size, best).toFixed(0)} MB/s`);
      if (sha256) hashingFloor.set(plaintext, mbps(size, best));
      entries.push(
        entry(name, mbps(size, best), "MB/s", {
          baseline: raw,
          note: `bench/deno_copy.ts, no protocol${sha256 ? "; hashes what it receives" : ""}`,
        }),
      );
    }
  }

  for (const plaintext of [true, false]) {
    const runs = await shoalFetches(dir.path, original, plaintext, log);
    const best = Math.min(...runs.map((r) => r.seconds));
    const fastest = runs.find((r) => r.seconds === best)!;
    const bestWall = Math.min(...runs.map((r) => r.wallSeconds));
    const mode = plaintext ? "plaintext" : "TLS";
    entries.push(
      entry(`single-source ${mode}`, mbps(size, best), "MB/s", {
        baseline: raw,
        target: raw === null ? null : { on: "ratio", min: plaintext ? 0.8 : 0.5 },
        floor: hashingFloor.get(plaintext),
        note: `fetch summary seconds, best of ${RUNS}, ${size / MIB} MiB`,
      }),
      entry(`single-source ${mode} vs the hashing Deno copy`, mbps(size, best), "MB/s", {
        baseline: hashingFloor.get(plaintext)!,
        note: "how much of the runtime's own floor Shoal keeps",
      }),
      entry(`single-source ${mode} (command wall)`, mbps(size, bestWall), "MB/s", {
        baseline: raw,
        note: "whole peer.ts fetch process, startup and tracker lookup included",
      }),
    );
    if (fastest.fetcherCpu !== null && fastest.ownerCpu !== null) {
      entries.push(
        entry(
          `single-source ${mode} CPU`,
          (fastest.fetcherCpu + fastest.ownerCpu) * GIB / size,
          "CPU s/GiB",
          {
            baseline: rawCpuPerGiB,
            note: `fetcher ${(fastest.fetcherCpu * GIB / size).toFixed(2)} (its start-up ` +
              `included), owner ${
                (fastest.ownerCpu * GIB / size).toFixed(2)
              }; the machine has ${navigator.hardwareConcurrency} cores`,
          },
        ),
      );
    }
  }
  return entries;
}

export const singleSourceBenchmark: Benchmark = {
  name: "single-source",
  description: "one owner, one fetcher over loopback, TLS and plaintext, vs a raw socat copy",
  run: singleSource,
};
