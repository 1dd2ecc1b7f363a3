/**
 * A batch's small files verified and put in place (placeBatchSync), on the
 * placing worker too: each whole under its name with the identity of what
 * was written, a corrupt one not written, never through a link planted at
 * its paths, the batch stopped at the first file that cannot be written;
 * the worker's buffer comes back, and a worker that fails fails its batches
 * instead of hanging them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BatchPlacer, placeBatchSync, type PlaceJob } from "../../lib/peer/batch_placer.ts";
import { identityOf, sha256Hex } from "../../lib/peer/manifest.ts";
import { eventually } from "../helpers/eventually.ts";
import { tempDir } from "../helpers/processes.ts";

const encoder = new TextEncoder();

/** Three files' bytes back to back in one buffer, and their jobs under `dir` (`direct`: no part file). */
function batchOf(dir: string, direct = false) {
  const contents = ["first\n", "second file\n", "third\n"].map((text) => encoder.encode(text));
  const buffer = new Uint8Array(4096);
  const jobs: PlaceJob[] = [];
  let at = 0;
  contents.forEach((bytes, i) => {
    buffer.set(bytes, at);
    const path = join(dir, `f${i}.txt`);
    jobs.push({
      at,
      length: bytes.length,
      sha256: sha256Hex(bytes),
      partPath: direct ? path : `${path}.shoal-part`,
      path,
    });
    at += bytes.length;
  });
  return { contents, buffer, jobs };
}

for (const direct of [false, true]) {
  Deno.test(`placeBatchSync (${direct ? "direct" : "through part files"}) - each file whole under its name, with the identity of what was written`, async () => {
    await using dir = await tempDir();
    const { contents, buffer, jobs } = batchOf(dir.path, direct);
    const { outcomes } = placeBatchSync(buffer, jobs);
    for (const [i, job] of jobs.entries()) {
      assert.deepEqual(await Deno.readFile(job.path), contents[i]);
      assert.deepEqual(outcomes[i], identityOf(await Deno.lstat(job.path)));
    }
    assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), [
      "f0.txt",
      "f1.txt",
      "f2.txt",
    ]);
  });

  Deno.test(`placeBatchSync (${direct ? "direct" : "through part files"}) - a link planted where a file is created is replaced, never followed`, async () => {
    await using dir = await tempDir();
    const outside = join(dir.path, "outside.txt");
    await Deno.writeTextFile(outside, "not yours");
    const { contents, buffer, jobs } = batchOf(dir.path, direct);
    await Deno.symlink(outside, jobs[0].partPath);
    // A dangling one too: a create that followed it would make its target.
    await Deno.symlink(join(dir.path, "would-be-created"), jobs[1].partPath);
    placeBatchSync(buffer, jobs);
    assert.equal(await Deno.readTextFile(outside), "not yours");
    await assert.rejects(Deno.lstat(join(dir.path, "would-be-created")), Deno.errors.NotFound);
    for (const [i, job] of jobs.entries()) {
      assert.ok((await Deno.lstat(job.path)).isFile, `${job.path} is a file, not a link`);
      assert.deepEqual(await Deno.readFile(job.path), contents[i]);
    }
  });
}

Deno.test("placeBatchSync - a corrupt file is said so and not written; the others are", async () => {
  await using dir = await tempDir();
  const { buffer, jobs } = batchOf(dir.path);
  buffer[jobs[1].at] ^= 0xff;
  const { outcomes } = placeBatchSync(buffer, jobs);
  assert.equal(outcomes[1], "corrupt");
  await assert.rejects(Deno.lstat(jobs[1].path), Deno.errors.NotFound);
  await assert.rejects(Deno.lstat(jobs[1].partPath), Deno.errors.NotFound);
  assert.ok((await Deno.lstat(jobs[2].path)).isFile);
});

Deno.test("placeBatchSync - the batch stops at the first file that cannot be written, with its error", async () => {
  await using dir = await tempDir();
  const { buffer, jobs } = batchOf(dir.path);
  const gone = join(dir.path, "no such folder", "f1.txt");
  jobs[1] = { ...jobs[1], partPath: `${gone}.shoal-part`, path: gone };
  const { outcomes } = placeBatchSync(buffer, jobs);
  assert.equal(outcomes.length, 2, "nothing after the failure");
  const failed = outcomes[1] as { error: { code: string; message: string } };
  assert.equal(failed.error.code, "IO");
  assert.match(failed.error.message, /no such folder/);
  await assert.rejects(Deno.lstat(jobs[2].path), Deno.errors.NotFound);
});

Deno.test("BatchPlacer - places a batch on its worker and gives the buffer back", async () => {
  await using dir = await tempDir();
  using placer = new BatchPlacer();
  await eventually(() => placer.ready, "the worker started");
  const { contents, buffer, jobs } = batchOf(dir.path);
  const placed = await placer.place(buffer.buffer, jobs);
  assert.equal(buffer.byteLength, 0, "the buffer went to the worker");
  assert.equal(placed.buffer.byteLength, 4096, "and came back whole");
  assert.equal(placed.outcomes.length, 3);
  for (const [i, job] of jobs.entries()) {
    assert.deepEqual(await Deno.readFile(job.path), contents[i]);
  }
});

Deno.test("BatchPlacer - a worker that cannot start is never used, and nothing is left running", async () => {
  await using dir = await tempDir();
  const broken = join(dir.path, "broken_worker.ts");
  await Deno.writeTextFile(broken, 'throw new Error("no");\n');
  using placer = new BatchPlacer(new URL(`file://${broken}`).href);
  // Long enough for a worker to start and say so (bounded: a few hundred turns).
  for (let i = 0; i < 200 && !placer.ready; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(placer.ready, false);
  await assert.rejects(placer.place(new ArrayBuffer(8), []), /not running/);
});

Deno.test("BatchPlacer - a worker that fails with a batch fails it, with an IO error, instead of hanging it", async () => {
  await using dir = await tempDir();
  const failing = join(dir.path, "failing_worker.ts");
  await Deno.writeTextFile(
    failing,
    'self.onmessage = (event) => { if (event.data === "ready?") self.postMessage("ready"); ' +
      'else throw new Error("the disk caught fire"); };\n',
  );
  using placer = new BatchPlacer(new URL(`file://${failing}`).href);
  await eventually(() => placer.ready, "the worker started");
  await assert.rejects(
    placer.place(new ArrayBuffer(8), []),
    (error: Error & { code?: string }) =>
      error.code === "IO" && /writes small files stopped/.test(error.message),
  );
  assert.equal(placer.ready, false, "not used again");
});
