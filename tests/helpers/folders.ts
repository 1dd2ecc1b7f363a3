/**
 * What the folder-share tests have in common: a tree to publish, a fetch
 * caught in the middle, and a `diff -r` of two trees.
 */
import { join } from "node:path";
import type { CliPeer } from "./cli.ts";
import { eventually } from "./eventually.ts";
import { TestPeer, writeRandomFile } from "./processes.ts";

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

/**
 * The folder "data" (one file of 3 MB, `big.bin`, in `data/<under>`)
 * published by `owner` and served with `delayMs` before each piece, and
 * `fetcher` fetching it to `output` in a process of its own (`child`),
 * returned once a piece of it is written: the fetch is then in the middle
 * for a while. Disposing it stops the serving (`serving`, which a test may
 * stop sooner).
 */
export async function fetchCaughtMidway(
  { dir, tracker, owner, fetcher, delayMs, under = "" }: {
    dir: string;
    tracker: string;
    owner: CliPeer;
    fetcher: CliPeer;
    delayMs: number;
    under?: string;
  },
) {
  const tree = join(dir, "data");
  await Deno.mkdir(join(tree, under), { recursive: true });
  await writeRandomFile(join(tree, under, "big.bin"), 3_000_000);
  await owner.ok(["publish", tree]);
  const serving = await new TestPeer(owner.home, tracker)
    .serve([], { SHOAL_TEST_PIECE_DELAY_MS: String(delayMs) });
  const output = join(dir, "out");
  const staging = `${output}.shoal-part`;
  const child = new TestPeer(fetcher.home, tracker).spawn(["fetch", "data", "--output", output]);
  const part = join(staging, under, "big.bin.shoal-part");
  try {
    await eventually(
      async () => (await Deno.stat(part).then((i) => i.size, () => 0)) > 0,
      "a piece of big.bin written",
      { tries: 3000 },
    );
  } catch (error) {
    await serving.stop();
    throw error;
  }
  return {
    tree,
    output,
    staging,
    part,
    child,
    serving,
    [Symbol.asyncDispose]: async () => {
      await serving.stop();
    },
  };
}
