/**
 * A folder fetch narrowed by `--only` after a wider run: what that run left
 * in its staging folder outside the selection is removed, and counted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { dropUnselected } from "../../lib/peer/unselected.ts";
import { tempDir } from "../helpers/processes.ts";

const file = (path: string, size: number) => ({ path, size, pieces: [] });

/** A tree as an earlier whole run left it: a whole file, one cut short, a partial, an empty folder. */
async function leftByWiderRun(into: string) {
  await Deno.mkdir(join(into, "slides"), { recursive: true });
  await Deno.mkdir(join(into, "data", "raw"), { recursive: true });
  await Deno.mkdir(join(into, "empty"), { recursive: true });
  await Deno.writeTextFile(join(into, "slides", "a.pdf"), "selected");
  await Deno.writeTextFile(join(into, "data", "whole.csv"), "12345");
  await Deno.writeTextFile(join(into, "data", "raw", "cut.bin"), "12");
  await Deno.writeTextFile(join(into, "data", "raw", "big.bin.shoal-part"), "pieces");
  await Deno.writeTextFile(join(into, "data", "mine.txt"), "not the fetch's");
}

const OUTSIDE = [
  file("data/whole.csv", 5),
  file("data/raw/cut.bin", 9),
  file("data/raw/big.bin", 100),
  file("data/never.bin", 3),
];

/** Every path under `dir`, relative, sorted. */
function tree(dir: string, at = ""): string[] {
  return [...Deno.readDirSync(join(dir, at))].flatMap((entry) => {
    const path = at ? `${at}/${entry.name}` : entry.name;
    return entry.isDirectory ? [`${path}/`, ...tree(dir, path)] : [path];
  }).sort();
}

Deno.test("dropUnselected - in the staging folder a fetch made, everything outside the selection goes, and is counted", async () => {
  await using dir = await tempDir();
  const into = join(dir.path, "out.shoal-part");
  await leftByWiderRun(into);
  const removed = await dropUnselected(into, OUTSIDE, ["empty"]);
  assert.deepEqual(removed, { files: 1, bytes: 5, partial: 2 });
  // What is not the fetch's (not in its manifest) stays, and so does the folder holding it.
  assert.deepEqual(tree(into), ["data/", "data/mine.txt", "slides/", "slides/a.pdf"]);
});

Deno.test("dropUnselected - goes through no link: a folder link inside leads nothing to be deleted outside", async () => {
  await using dir = await tempDir();
  const into = join(dir.path, "out.shoal-part");
  const elsewhere = join(dir.path, "elsewhere");
  await Deno.mkdir(elsewhere);
  await Deno.mkdir(into);
  await Deno.writeTextFile(join(elsewhere, "whole.csv"), "12345");
  await Deno.symlink(elsewhere, join(into, "data"));
  await dropUnselected(into, OUTSIDE, []);
  assert.equal(await Deno.readTextFile(join(elsewhere, "whole.csv")), "12345");
});
