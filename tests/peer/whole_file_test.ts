/**
 * A whole file put in place: written to its part file, renamed over its
 * name, never through a link planted at either path, replacing a leftover
 * part file, and a failure a ShoalError that names the path. Each case runs
 * for the synchronous and the asynchronous way, and for WholeFiles.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { placeWhole, placeWholeSync, WholeFiles } from "../../lib/peer/whole_file.ts";

const WAYS: [string, (partPath: string, path: string, bytes: Uint8Array) => Promise<void>][] = [
  [
    "sync",
    (partPath, path, bytes) => Promise.resolve().then(() => placeWholeSync(partPath, path, bytes)),
  ],
  ["async", placeWhole],
  ["WholeFiles", (partPath, path, bytes) => new WholeFiles().place(partPath, path, bytes)],
];

const BYTES = new TextEncoder().encode("verified bytes\n");

async function withDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-whole-file-" });
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const [way, place] of WAYS) {
  Deno.test(`Whole file (${way}) - written to its part file and renamed into place`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "a.txt");
      await place(`${path}.shoal-part`, path, BYTES);
      assert.deepEqual(await Deno.readFile(path), BYTES);
      await assert.rejects(Deno.lstat(`${path}.shoal-part`), Deno.errors.NotFound);
      // An empty file too.
      await place(join(dir, "empty.shoal-part"), join(dir, "empty"), new Uint8Array());
      assert.equal((await Deno.lstat(join(dir, "empty"))).size, 0);
    });
  });

  Deno.test(`Whole file (${way}) - a link planted at the part path is never followed`, async () => {
    await withDir(async (dir) => {
      const outside = join(dir, "outside.txt");
      await Deno.writeTextFile(outside, "not yours");
      const missing = join(dir, "would-be-created.txt");
      const path = join(dir, "a.txt");
      const other = join(dir, "b.txt");
      await Deno.symlink(outside, `${path}.shoal-part`);
      // A dangling link too: a create that followed it would make its target.
      await Deno.symlink(missing, `${other}.shoal-part`);
      await place(`${path}.shoal-part`, path, BYTES);
      await place(`${other}.shoal-part`, other, BYTES);
      assert.equal(await Deno.readTextFile(outside), "not yours");
      await assert.rejects(Deno.lstat(missing), Deno.errors.NotFound);
      for (const done of [path, other]) {
        assert.ok((await Deno.lstat(done)).isFile, `${done} is a file, not a link`);
        assert.deepEqual(await Deno.readFile(done), BYTES);
      }
    });
  });

  Deno.test(`Whole file (${way}) - a link planted at the final path is replaced, not followed`, async () => {
    await withDir(async (dir) => {
      const outside = join(dir, "outside.txt");
      await Deno.writeTextFile(outside, "not yours");
      const path = join(dir, "a.txt");
      await Deno.symlink(outside, path);
      await place(`${path}.shoal-part`, path, BYTES);
      assert.equal(await Deno.readTextFile(outside), "not yours");
      assert.ok((await Deno.lstat(path)).isFile);
      assert.deepEqual(await Deno.readFile(path), BYTES);
    });
  });

  Deno.test(`Whole file (${way}) - a leftover part file is replaced whole`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "a.txt");
      await Deno.writeTextFile(`${path}.shoal-part`, "a longer leftover of a run that was killed");
      await place(`${path}.shoal-part`, path, BYTES);
      assert.deepEqual(await Deno.readFile(path), BYTES);
      await assert.rejects(Deno.lstat(`${path}.shoal-part`), Deno.errors.NotFound);
    });
  });

  Deno.test(`Whole file (${way}) - a failure is a ShoalError naming the path`, async () => {
    await withDir(async (dir) => {
      // Its folder is gone (say, removed while the fetch ran).
      const path = join(dir, "gone", "a.txt");
      await assert.rejects(place(`${path}.shoal-part`, path, BYTES), (error) => {
        assert.ok(error instanceof ShoalError);
        assert.equal(error.code, "IO");
        assert.match(error.message, /a\.txt\.shoal-part/);
        return true;
      });
      // A folder in the way of the part file (which is not removed with what it holds).
      const blocked = join(dir, "b.txt");
      await Deno.mkdir(`${blocked}.shoal-part`);
      await Deno.writeTextFile(join(`${blocked}.shoal-part`, "kept.txt"), "kept");
      await assert.rejects(place(`${blocked}.shoal-part`, blocked, BYTES), ShoalError);
      assert.equal(await Deno.readTextFile(join(`${blocked}.shoal-part`, "kept.txt")), "kept");
      await assert.rejects(Deno.lstat(blocked), Deno.errors.NotFound);
    });
  });
}

Deno.test("WholeFiles - once files take long, the rest go asynchronously, placed alike", async () => {
  await withDir(async (dir) => {
    // Any time is too long here: the first file goes synchronously, the next ones not.
    const files = new WholeFiles({ slowMs: -1 });
    assert.equal(files.slow, false);
    await files.place(join(dir, "a.shoal-part"), join(dir, "a"), BYTES);
    assert.equal(files.slow, true);
    const outside = join(dir, "outside.txt");
    await Deno.writeTextFile(outside, "not yours");
    await Deno.symlink(outside, join(dir, "b.shoal-part"));
    await Deno.symlink(outside, join(dir, "c"));
    await files.place(join(dir, "b.shoal-part"), join(dir, "b"), BYTES);
    await files.place(join(dir, "c.shoal-part"), join(dir, "c"), BYTES);
    assert.equal(await Deno.readTextFile(outside), "not yours");
    for (const name of ["a", "b", "c"]) {
      assert.ok((await Deno.lstat(join(dir, name))).isFile);
      assert.deepEqual(await Deno.readFile(join(dir, name)), BYTES);
    }
  });
});

Deno.test("WholeFiles - while slow, one file in many is timed, and fast ones bring it back", async () => {
  await withDir(async (dir) => {
    // Every file is slow enough to go asynchronously, and fast enough to come back.
    const files = new WholeFiles({ slowMs: -1, fastMs: Infinity });
    await files.place(join(dir, "f0.shoal-part"), join(dir, "f0"), BYTES);
    assert.equal(files.slow, true);
    let i = 1;
    // Bounded: the timed file comes within 128.
    for (; i <= 200 && files.slow; i++) {
      await files.place(join(dir, `f${i}.shoal-part`), join(dir, `f${i}`), BYTES);
    }
    assert.equal(files.slow, false, "a timed file fast enough brings it back");
    assert.ok(i > 2, "not every file is timed while slow");
    for (let j = 0; j < i; j++) assert.deepEqual(await Deno.readFile(join(dir, `f${j}`)), BYTES);
  });
});
