import assert from "node:assert/strict";
import { join } from "node:path";
import { announceFolder, describeFolder } from "../../lib/peer/folder_publish.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import type { TrackerClient } from "../../lib/peer/tracker_link.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { type HashJob, HashPool } from "../../lib/peer/hash_pool.ts";
import { buildManifest, choosePieceSize, contentIdOf } from "../../lib/peer/manifest.ts";
import { hashSmallFile, SMALL_FILE_BYTES } from "../../lib/peer/small_file_hash.ts";
import { shoalError } from "../helpers/errors.ts";

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-folder-publish-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `count` small files of different sizes (empty and one-piece ones) over a few folders. */
async function writeSmallFiles(root: string, count: number): Promise<string[]> {
  const relatives: string[] = [];
  for (let i = 0; i < count; i++) {
    const relative = `d${i % 7}/f${String(i).padStart(5, "0")}.bin`;
    await Deno.mkdir(join(root, `d${i % 7}`), { recursive: true });
    const bytes = new Uint8Array((i * 37) % 3000);
    crypto.getRandomValues(bytes);
    await Deno.writeFile(join(root, relative), bytes);
    relatives.push(relative);
  }
  return relatives;
}

function jobOf(path: string): HashJob {
  const info = Deno.lstatSync(path);
  return {
    path,
    seen: { size: info.size, mtimeMs: info.mtime!.getTime(), fileId: `${info.dev}:${info.ino}` },
    before: null,
  };
}

/** Enough small files under `dir` for a pool to start its workers, as jobs to hash. */
async function poolJobs(dir: string): Promise<HashJob[]> {
  const paths = await writeSmallFiles(dir, HashPool.START_AT + 100);
  return paths.map((relative) => jobOf(join(dir, relative)));
}

/** `jobs` hashed by `pool` in batches of 50, this thread helping, in order. */
async function hashInBatches(pool: HashPool, jobs: HashJob[]) {
  const batches = [];
  for (let at = 0; at < jobs.length; at += 50) batches.push(pool.hash(jobs.slice(at, at + 50)));
  await pool.help();
  return (await Promise.all(batches)).flat();
}

Deno.test("the small-file limit is the smallest piece: a small file is one piece", () => {
  assert.equal(SMALL_FILE_BYTES, choosePieceSize(0));
});

Deno.test("workers hash a folder of many small files: each file keeps the content id it has alone", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    // Over the pool's START_AT, so its workers start, not only this thread.
    const relatives = await writeSmallFiles(root, HashPool.START_AT + 300);
    const folder = await describeFolder("tree", root, []);
    const records = [...folder.files];
    assert.deepEqual(records.map((record) => record.relative), [...relatives].sort());
    for (const record of records) {
      const alone = await buildManifest(join(root, record.relative));
      assert.deepEqual(record.manifest, alone, record.relative);
      assert.equal(record.contentId, contentIdOf(alone), record.relative);
    }
  });
});

Deno.test("a re-publish hashes only the files that changed", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    const relatives = await writeSmallFiles(root, HashPool.START_AT + 10);
    const first = [...(await describeFolder("tree", root, [])).files];
    const changed = relatives[3];
    await Deno.writeTextFile(join(root, changed), "new content");
    // An earlier record that lies about a file's hash is kept while the file looks unchanged.
    const unchanged = relatives[5];
    const fake = { version: 1 as const, size: 1, pieceSize: 262144, pieces: ["0".repeat(64)] };
    const previous = first.map((record) =>
      record.relative === unchanged ? { ...record, manifest: fake } : record
    );
    const second = new Map(
      [...(await describeFolder("tree", root, previous)).files].map((r) => [r.relative, r]),
    );
    assert.deepEqual(second.get(unchanged)!.manifest, fake, "an unchanged file is not read again");
    const alone = await buildManifest(join(root, changed));
    assert.equal(second.get(changed)!.contentId, contentIdOf(alone));
  });
});

Deno.test("a hashing worker's failure fails the batch with the file's path", async () => {
  await withTempDir(async (dir) => {
    const jobs = await poolJobs(dir);
    const gone = jobs[HashPool.START_AT + 50].path;
    await Deno.remove(gone);
    using pool = new HashPool({ size: 1 });
    const hashed = pool.hash(jobs);
    await pool.help();
    await assert.rejects(hashed, shoalError("IO"));
    await assert.rejects(hashed, (error: Error) => error.message.includes(gone));
    assert.equal(pool.workers, 1, "a worker hashed it");
  });
});

Deno.test("workers and this thread hash alike, in order", async () => {
  await withTempDir(async (dir) => {
    const jobs = await poolJobs(dir);
    using pool = new HashPool({ size: 2 });
    const hashes = await hashInBatches(pool, jobs);
    assert.equal(pool.workers, 2, "its workers started and ran");
    assert.deepEqual(hashes, jobs.map((job) => hashSmallFile(job.path, job.seen, null)));
  });
});

Deno.test("aborting stops the hashing: batches not yet hashed fail with CANCELLED", async () => {
  await withTempDir(async (dir) => {
    const jobs = await poolJobs(dir);
    const stop = new AbortController();
    using pool = new HashPool({ size: 1, signal: stop.signal });
    const batches = [];
    for (let at = 0; at < jobs.length; at += 50) batches.push(pool.hash(jobs.slice(at, at + 50)));
    for (const batch of batches) batch.catch(() => {});
    stop.abort();
    await assert.rejects(batches[batches.length - 1], shoalError("CANCELLED"));
    await assert.rejects(pool.hash(jobs.slice(0, 1)), shoalError("CANCELLED"));
  });
});

Deno.test("a folder publish stopped while hashing fails with CANCELLED", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    await writeSmallFiles(root, HashPool.START_AT + 100);
    const stop = new AbortController();
    const describing = describeFolder("tree", root, [], {
      signal: stop.signal,
      onProgress: () => stop.abort(),
    });
    await assert.rejects(describing, shoalError("CANCELLED"));
  });
});

Deno.test("describeFolder leaves its workers to the caller's stack, and a stop still stops them", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    await writeSmallFiles(root, HashPool.START_AT + 100);
    {
      using workers = new DisposableStack();
      const folder = await describeFolder("tree", root, [], { workers });
      assert.equal(folder.ids.length, HashPool.START_AT + 100);
      assert.ok(!workers.disposed, "the pool is the caller's to end");
    }
    using workers = new DisposableStack();
    const stop = new AbortController();
    await assert.rejects(
      describeFolder("tree", root, [], {
        workers,
        signal: stop.signal,
        onProgress: () => stop.abort(),
      }),
      shoalError("CANCELLED"),
    );
  });
});

Deno.test("a folder publish that fails on one file stops hashing the others before it says so", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    await Deno.mkdir(root);
    const large = Array.from({ length: 12 }, (_, i) => join(root, `l${i}.bin`));
    for (const path of large) await Deno.writeFile(path, new Uint8Array(SMALL_FILE_BYTES * 3));
    let removed = false;
    let calls = 0;
    // Half the files go once the walk is done, so hashing meets one that is gone while it
    // reads others.
    await assert.rejects(
      describeFolder("tree", root, [], {
        onProgress: () => {
          calls++;
          if (removed) return;
          removed = true;
          for (const path of large.slice(6)) Deno.removeSync(path);
        },
      }),
      shoalError("IO", /no such file/),
    );
    // Nothing hashes on once the publish has failed (it would have read every file left).
    const then = calls;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(calls, then, "files hashed after the publish failed");
  });
});

Deno.test("a small file swapped for a folder or a FIFO after the walk is a clear IO error", async () => {
  await withTempDir(async (dir) => {
    // What the walk saw: a small file; what is there now: a folder, then a FIFO.
    const seen = { size: 10, mtimeMs: 0, fileId: null };
    await Deno.mkdir(join(dir, "swapped"));
    assert.throws(
      () => hashSmallFile(join(dir, "swapped"), seen, null),
      shoalError("IO", /swapped is no longer a regular file; publish again/),
    );
    const mkfifo = await new Deno.Command("mkfifo", { args: [join(dir, "fifo")] }).output()
      .catch(() => null);
    if (!mkfifo?.success) return console.log("skipped the FIFO: no mkfifo here");
    assert.throws(
      () => hashSmallFile(join(dir, "fifo"), seen, null),
      shoalError("IO", /fifo is no longer a regular file; publish again/),
    );
  });
});

Deno.test("workers that cannot start leave the hashing to this thread, which hashes every batch", async () => {
  await withTempDir(async (dir) => {
    const jobs = await poolJobs(dir);
    // A worker whose module fails as it loads (a compiled binary without it, say).
    const failing = "data:text/javascript,throw new Error('this worker cannot start')";
    using pool = new HashPool({ size: 2, workerModule: failing });
    const hashes = await hashInBatches(pool, jobs);
    assert.equal(pool.workers, 0, "no worker runs");
    assert.deepEqual(hashes, jobs.map((job) => hashSmallFile(job.path, job.seen, null)));
  });
});

Deno.test("a small file changed or replaced after the walk is hashed as it is now, on workers too", async () => {
  await withTempDir(async (dir) => {
    const jobs = await poolJobs(dir);
    // After the walk: one rewritten with other bytes, one replaced by another file renamed over it.
    const [rewritten, replaced, unchanged] = [jobs[3], jobs[HashPool.START_AT + 7], jobs[20]];
    await Deno.writeFile(rewritten.path, new Uint8Array(4000).fill(7));
    await Deno.writeFile(`${replaced.path}.new`, new Uint8Array(123).fill(9));
    await Deno.rename(`${replaced.path}.new`, replaced.path);
    unchanged.before = { ...unchanged.seen };
    using pool = new HashPool({ size: 2 });
    const hashes = await hashInBatches(pool, jobs);
    assert.equal(pool.workers, 2, "its workers started and ran");
    for (const job of [rewritten, replaced]) {
      const hash = hashes[jobs.indexOf(job)];
      assert.deepEqual(hash, hashSmallFile(job.path, jobOf(job.path).seen, null), job.path);
      assert.notEqual(
        hash!.identity.size,
        job.seen.size,
        "the file as read, not as the walk saw it",
      );
    }
    assert.equal(hashes[jobs.indexOf(unchanged)], null, "unchanged since it was last hashed");
  });
});

Deno.test("a folder the tracker refuses leaves the home as it was: the share it replaced, or none", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "course");
    await writeSmallFiles(root, 20);
    using home = PeerHome.open(join(dir, "home"));
    const earlier = await describeFolder("course", root, []);
    home.addShare(earlier.share, earlier.files);
    const before = { share: home.share("course"), files: home.folderFiles("course") };
    await Deno.writeTextFile(join(root, "d1", "new.txt"), "a new file");
    const changed = await describeFolder("course", root, before.files);
    for (const refused of ["members", "publish"]) {
      // A tracker that refuses the members or the publication, as one over its limits does.
      const tracker = {
        call: (method: string) =>
          method === refused
            ? Promise.reject(new ShoalError("LIMIT_EXCEEDED", `refused ${method}`))
            : Promise.resolve(method === "publish" ? { replaced: true } : {}),
      } as unknown as TrackerClient;
      await assert.rejects(
        announceFolder(home, tracker, changed, before),
        shoalError("LIMIT_EXCEEDED", new RegExp(refused)),
      );
      assert.deepEqual(home.share("course"), before.share, refused);
      assert.deepEqual(home.folderFiles("course"), before.files, refused);
      await assert.rejects(
        announceFolder(home, tracker, { ...changed, share: { ...changed.share, name: "new" } }, {
          share: null,
          files: [],
        }),
        shoalError("LIMIT_EXCEEDED"),
      );
      assert.equal(home.share("new"), null, "a name that held nothing holds nothing");
      assert.deepEqual(home.folderFiles("new"), []);
    }
  });
});
