/**
 * Publish hashing: building a file's manifest (what `peer.ts publish` does
 * before it tells the tracker) against `openssl dgst -sha256` on the same
 * file, which uses the CPU's SHA extensions. Both read the file from the
 * page cache: it was just written.
 */
import { join } from "node:path";
import { buildManifest } from "../lib/peer/manifest.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import { hasCommand, mbps, tempDir, writeRandomFile } from "./resources.ts";

const MIB = 1024 * 1024;
const RUNS = 3;

async function opensslSeconds(path: string): Promise<number> {
  const started = performance.now();
  const output = await new Deno.Command("openssl", {
    args: ["dgst", "-sha256", path],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`openssl dgst failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return (performance.now() - started) / 1000;
}

async function manifestSeconds(path: string, size: number): Promise<number> {
  const started = performance.now();
  const manifest = await buildManifest(path);
  const seconds = (performance.now() - started) / 1000;
  if (manifest.size !== size) throw new Error(`manifest of ${manifest.size} bytes, not ${size}`);
  return seconds;
}

async function hashing({ quick, log }: BenchContext): Promise<Entry[]> {
  const size = quick ? 128 * MIB : 1024 * MIB;
  await using dir = await tempDir("shoal-bench-hash-");
  const path = join(dir.path, "data.bin");
  log(`  generating ${size / MIB} MiB`);
  await writeRandomFile(path, size);
  const haveOpenssl = await hasCommand("openssl");
  if (!haveOpenssl) log("  skipping the openssl baseline: openssl is not installed");
  let ours = Infinity;
  let theirs = Infinity;
  // Alternate, so both see the same state of a noisy machine.
  for (let i = 0; i < RUNS; i++) {
    ours = Math.min(ours, await manifestSeconds(path, size));
    if (haveOpenssl) theirs = Math.min(theirs, await opensslSeconds(path));
  }
  const baseline = haveOpenssl ? mbps(size, theirs) : null;
  log(
    `  buildManifest ${mbps(size, ours).toFixed(0)} MB/s; openssl ${
      baseline?.toFixed(0) ?? "-"
    } MB/s`,
  );
  const entries = [];
  if (baseline !== null) entries.push(entry("openssl dgst -sha256", baseline, "MB/s"));
  entries.push(
    entry("publish hashing (buildManifest)", mbps(size, ours), "MB/s", {
      baseline,
      target: baseline === null ? null : { on: "ratio", min: 0.8 },
      note: `best of ${RUNS}, ${size / MIB} MiB, in-process`,
    }),
  );
  return entries;
}

export const hashingBenchmark: Benchmark = {
  name: "hashing",
  description: "building a manifest (publish) vs openssl dgst -sha256 on the same file",
  run: hashing,
};
