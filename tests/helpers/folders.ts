/**
 * What the folder-share tests have in common: a tree to publish, and a
 * `diff -r` of two trees.
 */
import { join } from "node:path";
import { writeRandomFile } from "./processes.ts";

/** A tree with nested and empty folders, empty files, unicode names, and one multi-piece file. */
export async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(join(root, "slides", "week 1"), { recursive: true });
  await Deno.mkdir(join(root, "empty", "deeper"), { recursive: true });
  await Deno.mkdir(join(root, "données"), { recursive: true });
  await writeRandomFile(join(root, "slides", "week 1", "intro.pdf"), 40_000);
  await writeRandomFile(join(root, "slides", "overview.pdf"), 3_000);
  await writeRandomFile(join(root, "données", "résumé ü.txt"), 1_000);
  await writeRandomFile(join(root, "big.bin"), 1_200_000);
  await Deno.writeFile(join(root, "empty file"), new Uint8Array());
  await Deno.writeTextFile(join(root, "readme.md"), "hello\n");
}

/** What `diff -r a b` prints, and its exit status if not 0: "" when the trees are the same. */
export async function diffTree(a: string, b: string): Promise<string> {
  const out = await new Deno.Command("diff", { args: ["-r", a, b] }).output();
  return new TextDecoder().decode(out.stdout) + (out.code === 0 ? "" : `exit ${out.code}`);
}
