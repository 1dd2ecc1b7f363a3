/**
 * Folder shares (issue 14), against baselines taken in the same run:
 * - a folder of 10,000 files of 16 KiB in 100 subfolders fetched from one
 *   source, against a single 1 GiB file fetched the same way (≥ 0.5 of its
 *   rate) and against `rsync -a` and `scp -r` over ssh on loopback (faster);
 * - publishing that folder against publishing the single file (≥ 0.5 of its
 *   hashing rate), each net of a one-byte publish (start-up and tracker), with
 *   the runtime's own floor for the folder beside it (bench/folder_hash_floor.ts);
 * - the 1 GiB file inside a folder against the same file alone (≥ 0.95), and
 *   the same two fetched into tmpfs (no target: the difference without the disk);
 * - the downloader's peak resident memory fetching a 100,000-file folder (< 256 MiB).
 * Every fetched tree is compared with its original (`diff -r`).
 */
import { randomFillSync } from "node:crypto";
import { join } from "node:path";
import { delay } from "../lib/async/delay.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";
import { BenchPeer, type Daemon, peerV8Flags, startTracker } from "./processes.ts";
import { ensurePrograms, inParallel, mbps, run, tempDir, writeRandomFile } from "./resources.ts";
import {
  rsyncCopy,
  scpCopy,
  SSH_PROGRAMS,
  type SshServer,
  startSshServer,
} from "./ssh_baselines.ts";
import { seedAccounts } from "./seed.ts";
import { fillFreeMemory } from "./page_cache.ts";

const KIB = 1024;
const HASH_FLOOR_TS = new URL("./folder_hash_floor.ts", import.meta.url).pathname;

/**
 * Seconds bench/folder_hash_floor.ts takes to walk, read and hash `dir` (its
 * own count, from its start: Deno's start-up is not in it), with the peer's
 * V8 flags.
 */
async function hashFloorSeconds(dir: string): Promise<number> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", ...peerV8Flags(), HASH_FLOOR_TS, dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`folder_hash_floor.ts: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return (JSON.parse(new TextDecoder().decode(output.stdout)) as { seconds: number }).seconds;
}
/** The longest a fetch watched for its memory may take before it is killed as hung. */
const FETCH_LIMIT_MS = 30 * 60_000;
const MIB = 1024 * KIB;

/** A generated tree: `files` files of `fileSize` random bytes, spread over `folders` subfolders. */
export interface TreeShape {
  files: number;
  fileSize: number;
  folders: number;
}

/** The sizes of a run: the issue's, or small ones for `--quick`. */
export function folderSizes(quick: boolean) {
  return {
    runs: quick ? 2 : 3,
    small: { files: quick ? 1_000 : 10_000, fileSize: 16 * KIB, folders: quick ? 10 : 100 },
    bigFile: quick ? 64 * MIB : 1024 * MIB,
    many: { files: quick ? 10_000 : 100_000, fileSize: 1 * KIB, folders: quick ? 100 : 1_000 },
  };
}

/**
 * Writes a tree of `shape` under the new folder `root`: `dir-000/file-00000.bin`,
 * ..., each file its own random bytes (so no two share a content id). Returns
 * the bytes written.
 */
export async function writeFolderTree(root: string, shape: TreeShape): Promise<number> {
  const width = String(Math.max(shape.folders - 1, 0)).length;
  const folderOf = (i: number) => `dir-${String(i % shape.folders).padStart(width, "0")}`;
  for (let i = 0; i < shape.folders; i++) {
    await Deno.mkdir(join(root, folderOf(i)), { recursive: true });
  }
  const indexes = Array.from({ length: shape.files }, (_, i) => i);
  await inParallel(indexes, 16, async (i) => {
    const bytes = randomFillSync(new Uint8Array(shape.fileSize));
    const name = `file-${String(i).padStart(String(shape.files).length, "0")}.bin`;
    await Deno.writeFile(join(root, folderOf(i), name), bytes);
  });
  return shape.files * shape.fileSize;
}

/** Peak resident memory (VmHWM) of a live process in KiB; null once it is gone. */
function peakRssKiB(pid: number): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Fails unless `copy` is the same tree as `original`, byte for byte. */
async function checkSameTree(original: string, copy: string): Promise<void> {
  const output = await new Deno.Command("diff", { args: ["-rq", original, copy], stdout: "piped" })
    .output();
  if (!output.success) {
    const lines = new TextDecoder().decode(output.stdout).split("\n").slice(0, 5).join("\n");
    throw new Error(`${copy} differs from ${original}:\n${lines}`);
  }
}

/** One timed command: the command's own seconds (from its `--json` summary where it has them) and its wall time. */
interface Timed {
  seconds: number;
  wallSeconds: number;
}

/** Fetches `name` into `output` (a file, or a folder for a folder share), timed. */
async function fetchTimed(peer: BenchPeer, name: string, output: string): Promise<Timed> {
  const result = await peer.ok(["fetch", name, "--json", "--output", output]);
  let seconds = result.seconds;
  try {
    const summary = JSON.parse(result.stdout) as { seconds?: unknown };
    if (typeof summary.seconds === "number") seconds = summary.seconds;
  } catch {
    // No summary to read: the wall time stands.
  }
  return { seconds, wallSeconds: result.seconds };
}

/**
 * Fetches `name` into `output` in a child process and returns its peak
 * resident memory (VmHWM, read every 50 ms while it runs) in KiB.
 */
async function fetchPeakRssKiB(peer: BenchPeer, name: string, output: string): Promise<number> {
  const child = peer.spawn(["fetch", name, "--json", "--output", output]);
  const finishing = child.output();
  let done = false;
  finishing.finally(() => done = true).catch(() => {});
  let peakKiB = 0;
  const giveUp = performance.now() + FETCH_LIMIT_MS;
  while (!done) {
    peakKiB = Math.max(peakKiB, peakRssKiB(child.pid) ?? 0);
    if (performance.now() > giveUp) {
      child.kill("SIGKILL");
      await finishing.catch(() => {});
      throw new Error(`fetch ${name} took over ${FETCH_LIMIT_MS / 60_000} minutes: killed`);
    }
    await delay(50);
  }
  const finished = await finishing;
  if (!finished.success) {
    throw new Error(
      `fetch ${name} exited ${finished.code}: ${new TextDecoder().decode(finished.stderr)}`,
    );
  }
  return peakKiB;
}

const best = (runs: number[]) => Math.min(...runs);

async function folder({ quick, log }: BenchContext): Promise<Entry[]> {
  const sizes = folderSizes(quick);
  const { runs } = sizes;
  await using dir = await tempDir("shoal-bench-folder-");
  const at = (name: string) => join(dir.path, name);
  const smallLabel = `${sizes.small.files.toLocaleString("en")} × ${
    sizes.small.fileSize / KIB
  } KiB`;
  const manyLabel = `${sizes.many.files.toLocaleString("en")} files`;

  log(`  generating ${smallLabel} in ${sizes.small.folders} folders`);
  const smallBytes = await writeFolderTree(at("small"), sizes.small);
  log(`  generating one ${sizes.bigFile / MIB} MiB file, and a folder holding it`);
  await writeRandomFile(at("big.bin"), sizes.bigFile);
  await Deno.mkdir(at("big-tree"));
  await Deno.link(at("big.bin"), at("big-tree/big.bin"));
  log(`  generating ${manyLabel} of ${sizes.many.fileSize} B in ${sizes.many.folders} folders`);
  const manyBytes = await writeFolderTree(at("many"), sizes.many);
  await Deno.writeTextFile(at("tiny.txt"), "x");
  await run("sync", []);

  const entries: Entry[] = [];
  const baselines = new Map<string, number>();

  // The baselines run beside the fetches, in the same rounds (below); first, whether ssh works.
  const missing = await ensurePrograms(SSH_PROGRAMS, log);
  if (missing) log(`  skipping the rsync and scp baselines: ${missing}`);
  else await Deno.mkdir(at("ssh"));
  await using server: SshServer | null = missing ? null : await startSshServer(at("ssh"));
  const copies = server ? [["rsync -a", rsyncCopy], ["scp -r", scpCopy]] as const : [];

  const db = at("tracker.db");
  const [ownerHome, fetcherHome] = [at("owner"), at("fetcher")];
  await seedAccounts(db, [{ username: "owner", home: ownerHome }, {
    username: "fetcher",
    home: fetcherHome,
  }]);
  const tracker = await startTracker({ db });
  const daemons: Daemon[] = [tracker.daemon];
  try {
    const owner = new BenchPeer(ownerHome, tracker.address);
    const fetcher = new BenchPeer(fetcherHome, tracker.address);

    const tryFolder = await owner.run(["publish", "small-probe", at("small")]);
    if (tryFolder.code !== 0) {
      log(
        "  skipping the Shoal scenarios: this peer.ts cannot publish a folder: " +
          (tryFolder.stderr.trim().split("\n")[0] ?? ""),
      );
      return entries;
    }
    // Publishing: each figure net of a one-byte publish (start-up and the tracker's reply).
    const publishes = { tiny: [] as number[], file: [] as number[], folder: [] as number[] };
    for (let i = 0; i < runs; i++) {
      publishes.tiny.push((await owner.ok(["publish", `tiny-${i}`, at("tiny.txt")])).seconds);
      publishes.file.push((await owner.ok(["publish", `big-${i}`, at("big.bin")])).seconds);
      publishes.folder.push((await owner.ok(["publish", `small-${i}`, at("small")])).seconds);
    }
    const overhead = best(publishes.tiny);
    const fileHashing = mbps(sizes.bigFile, Math.max(best(publishes.file) - overhead, 1e-3));
    const folderHashing = mbps(smallBytes, Math.max(best(publishes.folder) - overhead, 1e-3));
    // The runtime's floor for the same folder: walked, read and hashed by the plainest program.
    const floors: number[] = [];
    for (let i = 0; i < runs; i++) floors.push(await hashFloorSeconds(at("small")));
    const floorHashing = mbps(smallBytes, best(floors));
    log(
      `  publish: one file ${fileHashing.toFixed(0)} MB/s, the folder ${
        folderHashing.toFixed(0)
      } MB/s (net of a ${overhead.toFixed(2)} s one-byte publish); the runtime's floor for ` +
        `the folder ${floorHashing.toFixed(0)} MB/s = ${(floorHashing / fileHashing).toFixed(2)} ` +
        "of the file's",
    );
    entries.push(
      entry(`folder publish hashing, ${smallLabel}`, folderHashing, "MB/s", {
        baseline: fileHashing,
        target: { on: "ratio", min: 0.5 },
        floor: floorHashing,
        note: `vs publishing one ${sizes.bigFile / MIB} MiB file; \`peer.ts publish\` wall, ` +
          `net of a one-byte publish, best of ${runs}; floor: bench/folder_hash_floor.ts`,
      }),
    );
    await owner.ok(["publish", "big-tree", at("big-tree")]);
    await owner.ok(["publish", "many", at("many")]);
    daemons.push(await owner.serve());

    // Fetching and copying in rounds, each round every kind once (the file alone and the file
    // inside a folder in turn first), so that each sees the same state of a noisy machine; the
    // disk is synced before each, so none pays for writing back what the one before it left.
    // Copies stay until the end (the temporary folder goes then), here and for the baselines:
    // this disk's ext4 has no journal, so creating a file right after thousands were deleted
    // costs the kernel a walk past every inode freed in the last minutes (recently_deleted),
    // and freeing a 1 GiB file discards its blocks while the next copy writes. A copy must
    // not pay for the one before it.
    // And before each, free memory is filled with page cache (bench/page_cache.ts): on this
    // virtual machine a write into memory left free for a while costs two to three times what
    // a write recycling the page cache does (the host takes free memory back), so without it
    // whichever 1 GiB fetch came while memory was free took 4 to 5 s and the other 1.6 to 2.5 s,
    // whatever its code. Seven full runs without it put the file inside a folder at 0.58 to
    // 0.89 of alone (its best of three 4.04 s in the last: a fetch into free memory); in a
    // harness of the same fetches, alternating, with the copies and the small folder's fetch
    // between them, from filled memory, the two took the same time (five rounds: alone 1.81
    // to 2.93 s, median 1.90; inside a folder 1.74 to 2.17 s, median 1.95).
    let filled = 0;
    // Room kept for what the rounds still write (every copy stays): the pair of big files and
    // three copies of the small folder a round, and the many-file folder's fetch after them (a
    // block or two a file).
    const roundBytes = 2 * sizes.bigFile + 3 * smallBytes;
    let roundsLeft = runs;
    const settle = async () => {
      filled += await fillFreeMemory(
        dir.path,
        roundsLeft * roundBytes + sizes.many.files * 8 * KIB,
      );
      await run("sync", []);
    };
    const fetches = { file: [] as Timed[], folder: [] as Timed[], bigTree: [] as Timed[] };
    const inMemory = { file: [] as Timed[], bigTree: [] as Timed[] };
    await using shm = await Deno.stat("/dev/shm").then(
      (info) => info.isDirectory ? tempDir("shoal-bench-folder-", "/dev/shm") : null,
      () => null,
    );
    const baselineSeconds = new Map<string, number[]>(copies.map(([name]) => [name, []]));
    for (let i = 0; i < runs; i++) {
      roundsLeft = runs - i;
      for (const [name, copy] of copies) {
        const target = at(`${name.split(" ")[0]}-${i}`);
        await settle();
        baselineSeconds.get(name)!.push(await copy(server!, at("small"), target));
        if (i === 0) await checkSameTree(at("small"), target);
      }
      const fetchFile = async () => {
        await settle();
        fetches.file.push(await fetchTimed(fetcher, "big-0", at(`got-big-${i}.bin`)));
      };
      const fetchBigTree = async () => {
        const bigTree = at(`got-big-tree-${i}`);
        await settle();
        fetches.bigTree.push(await fetchTimed(fetcher, "big-tree", bigTree));
        if (i === 0) await checkSameTree(at("big-tree"), bigTree);
      };
      for (const fetchBig of i % 2 === 0 ? [fetchFile, fetchBigTree] : [fetchBigTree, fetchFile]) {
        await fetchBig();
      }
      // The same two into memory (tmpfs), each removed at once: what is left of the
      // difference without the disk.
      if (shm) {
        const intoMemory = async (name: string, into: Timed[]) => {
          const output = join(shm.path, name);
          await settle();
          into.push(await fetchTimed(fetcher, name, output));
          await Deno.remove(output, { recursive: true });
        };
        const pair = [
          () => intoMemory("big-0", inMemory.file),
          () => intoMemory("big-tree", inMemory.bigTree),
        ];
        for (const fetchBig of i % 2 === 0 ? pair : pair.reverse()) await fetchBig();
      }
      const tree = at(`got-small-${i}`);
      await settle();
      // Timed as the baselines are: until what it wrote is on the disk (`sync -f`).
      const fetched = await fetchTimed(fetcher, "small-0", tree);
      const syncStarted = performance.now();
      await run("sync", ["-f", tree]);
      const synced = (performance.now() - syncStarted) / 1000;
      fetches.folder.push({ ...fetched, wallSeconds: fetched.wallSeconds + synced });
      if (i === 0) await checkSameTree(at("small"), tree);
    }
    log(
      `  filled ${
        (filled / MIB).toFixed(0)
      } MiB of free memory with page cache before the timed runs`,
    );
    const baselineEntries = [...baselineSeconds].map(([name, seconds]) => {
      const rate = mbps(smallBytes, best(seconds));
      baselines.set(name, rate);
      log(`  ${name} over ssh: ${rate.toFixed(0)} MB/s (${best(seconds).toFixed(2)} s)`);
      return entry(`${name} over ssh, ${smallLabel}`, rate, "MB/s", {
        note: `loopback, best of ${runs}, final sync included, in the fetches' rounds`,
      });
    });
    entries.unshift(...baselineEntries);
    const rate = (bytes: number, timed: Timed[], key: keyof Timed) =>
      mbps(bytes, best(timed.map((t) => t[key])));
    const fileRate = rate(sizes.bigFile, fetches.file, "seconds");
    const folderRate = rate(smallBytes, fetches.folder, "seconds");
    const folderWallRate = rate(smallBytes, fetches.folder, "wallSeconds");
    const bigTreeRate = rate(sizes.bigFile, fetches.bigTree, "seconds");
    log(
      `  fetch: one file ${fileRate.toFixed(0)} MB/s; the folder ${folderRate.toFixed(0)} MB/s ` +
        `(command wall ${folderWallRate.toFixed(0)} MB/s); the file inside a folder ${
          bigTreeRate.toFixed(0)
        } MB/s`,
    );
    entries.push(
      entry(`single file fetch, ${sizes.bigFile / MIB} MiB (TLS)`, fileRate, "MB/s", {
        note: `the fetch's own seconds, best of ${runs}`,
      }),
      entry(`folder fetch ${smallLabel} vs one file`, folderRate, "MB/s", {
        baseline: fileRate,
        target: { on: "ratio", min: 0.5 },
        note: `one source, TLS, the fetch's own seconds, best of ${runs}`,
      }),
    );
    for (const [name, baseline] of baselines) {
      entries.push(
        entry(`folder fetch ${smallLabel} vs ${name}`, folderWallRate, "MB/s", {
          baseline,
          target: { on: "ratio", min: 1 },
          note: "whole `peer.ts fetch` command (start-up included) and `sync -f`, vs the " +
            "whole copy and `sync -f`, best of each in the same rounds",
        }),
      );
    }
    entries.push(
      entry(`${sizes.bigFile / MIB} MiB file inside a folder vs alone`, bigTreeRate, "MB/s", {
        baseline: fileRate,
        target: { on: "ratio", min: 0.95 },
        note: `the fetch's own seconds, best of ${runs}`,
      }),
    );
    if (inMemory.file.length > 0) {
      const fileInMemory = rate(sizes.bigFile, inMemory.file, "seconds");
      const treeInMemory = rate(sizes.bigFile, inMemory.bigTree, "seconds");
      log(
        `  into tmpfs: one file ${fileInMemory.toFixed(0)} MB/s; inside a folder ${
          treeInMemory.toFixed(0)
        } MB/s`,
      );
      entries.push(
        entry(
          `${sizes.bigFile / MIB} MiB file inside a folder vs alone, into tmpfs`,
          treeInMemory,
          "MB/s",
          {
            baseline: fileInMemory,
            note: `no disk: the fetch's own seconds, best of ${runs}, in the same rounds`,
          },
        ),
      );
    }

    // Memory: the downloader's peak resident set, beside a single file's fetch for scale.
    const fileTarget = at("got-big-rss.bin");
    const filePeakKiB = await fetchPeakRssKiB(fetcher, "big-0", fileTarget);
    await Deno.remove(fileTarget);
    const manyTarget = at("got-many");
    const peakKiB = await fetchPeakRssKiB(fetcher, "many", manyTarget);
    await checkSameTree(at("many"), manyTarget);
    log(
      `  fetch of ${manyLabel}: peak RSS ${(peakKiB / KIB).toFixed(0)} MiB (one ${
        sizes.bigFile / MIB
      } MiB file: ${(filePeakKiB / KIB).toFixed(0)} MiB)`,
    );
    entries.push(
      entry(`downloader peak RSS, one ${sizes.bigFile / MIB} MiB file`, filePeakKiB / KIB, "MiB", {
        note: "for scale: the same fetcher, one file",
      }),
      entry(`downloader peak RSS, ${manyLabel}`, peakKiB / KIB, "MiB", {
        target: { on: "value", max: 256 },
        note: `${(manyBytes / MIB).toFixed(0)} MiB in ${sizes.many.folders} folders; VmHWM ` +
          "sampled every 50 ms",
      }),
    );
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
  }
  return entries;
}

export const folderBenchmark: Benchmark = {
  name: "folder",
  description:
    "folder shares: 10,000 × 16 KiB fetched vs one 1 GiB file, rsync -a and scp -r over ssh; " +
    "publish hashing; a 1 GiB file inside a folder; downloader RSS for 100,000 files",
  run: folder,
};
