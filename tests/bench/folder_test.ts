import assert from "node:assert/strict";
import { join } from "node:path";
import { folderSizes, writeFolderTree } from "../../bench/folder.ts";
import { TreeWalk } from "../../lib/peer/tree_walk.ts";

Deno.test("writeFolderTree - spreads files of distinct random bytes over the subfolders", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-bench-tree-" });
  try {
    const bytes = await writeFolderTree(dir, { files: 7, fileSize: 64, folders: 3 });
    assert.equal(bytes, 7 * 64);
    const entries = [];
    for await (const entry of new TreeWalk(dir)) entries.push(entry);
    const folders = entries.filter((e) => e.kind === "folder").map((e) => e.path);
    const files = entries.filter((e) => e.kind === "file");
    assert.deepEqual(folders, ["dir-0", "dir-1", "dir-2"]);
    assert.equal(files.length, 7);
    assert.ok(files.every((file) => file.size === 64));
    const contents = await Promise.all(
      files.map(async (file) => (await Deno.readFile(join(dir, file.path))).join(",")),
    );
    assert.equal(new Set(contents).size, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folderSizes - the full run has the issue's sizes; quick is smaller", () => {
  const full = folderSizes(false);
  assert.deepEqual(full.small, { files: 10_000, fileSize: 16 * 1024, folders: 100 });
  assert.equal(full.bigFile, 1024 ** 3);
  assert.equal(full.many.files, 100_000);
  const quick = folderSizes(true);
  assert.ok(quick.small.files < full.small.files && quick.many.files < full.many.files);
});
