import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  describeSkipped,
  noneSkipped,
  type TreeEntry,
  TreeWalk,
} from "../../lib/peer/tree_walk.ts";
import { shoalError } from "../helpers/errors.ts";

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-tree-walk-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function entriesOf(walk: TreeWalk): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  for await (const entry of walk) entries.push(entry);
  return entries;
}

/** `kind path size` of each entry, to compare whole walks at a glance. */
function lines(entries: TreeEntry[]): string[] {
  return entries.map(({ kind, path, size }) => `${kind} ${path} ${size}`);
}

async function run(command: string, args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(command, { args, stderr: "null" }).output();
  return success;
}

Deno.test("TreeWalk - yields nested, empty and unicode entries sorted by path in code-unit order", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(join(root, "a", "deep", "er"), { recursive: true });
    await Deno.mkdir(join(root, "empty"));
    await Deno.mkdir(join(root, "日本"));
    await Deno.writeTextFile(join(root, "a", "deep", "er", "x.txt"), "xyz");
    await Deno.writeTextFile(join(root, "a-b"), "12345");
    await Deno.writeTextFile(join(root, "a", "z"), "");
    await Deno.writeTextFile(join(root, "B.txt"), "b");
    await Deno.writeTextFile(join(root, "café.md"), "café");
    await Deno.writeTextFile(join(root, "日本", "ファイル"), "");
    const entries = await entriesOf(new TreeWalk(root));
    assert.deepEqual(lines(entries), [
      "file B.txt 1",
      "folder a 0",
      "file a-b 5",
      "folder a/deep 0",
      "folder a/deep/er 0",
      "file a/deep/er/x.txt 3",
      "file a/z 0",
      "file café.md 5",
      "folder empty 0",
      "folder 日本 0",
      "file 日本/ファイル 0",
    ]);
    const paths = entries.map((entry) => entry.path);
    assert.deepEqual(paths, [...paths].sort());
    assert.ok(entries.every((entry) => typeof entry.mtimeMs === "number"));
  });
});

Deno.test("TreeWalk - skips symlinks, a FIFO, a socket and a device without opening them, and counts them", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(join(root, "sub"));
    await Deno.writeTextFile(join(root, "sub", "kept.txt"), "kept");
    await Deno.symlink(join(root, "sub"), join(root, "link-to-folder"));
    await Deno.symlink("/etc/passwd", join(root, "sub", "link-to-file"));
    await Deno.symlink(join(root, "nowhere"), join(root, "dangling"));
    assert.ok(await run("mkfifo", [join(root, "sub", "pipe")]), "mkfifo failed");
    const listener = Deno.listen({ transport: "unix", path: join(root, "socket") });
    const device = await run("mknod", [join(root, "null-device"), "c", "1", "3"]);
    try {
      const walk = new TreeWalk(root);
      // A FIFO opened for reading would block this for ever: the walk only looks at it.
      const entries = await entriesOf(walk);
      assert.deepEqual(lines(entries), ["folder sub 0", "file sub/kept.txt 4"]);
      assert.deepEqual(walk.skipped, {
        ...noneSkipped(),
        symlinks: 3,
        fifos: 1,
        sockets: 1,
        devices: device ? 1 : 0,
      });
      assert.equal(
        describeSkipped(walk.skipped),
        `skipped 3 symlinks, 1 FIFO, 1 socket${device ? ", 1 device" : ""}`,
      );
      if (!device) console.log("mknod needs root: the device case was not exercised");
    } finally {
      listener.close();
    }
  });
});

Deno.test("TreeWalk - the partial file of an unfinished download is skipped and counted", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(join(root, "notes.pdf.shoal-part"), "half");
    await Deno.mkdir(join(root, "more.shoal-part"));
    const walk = new TreeWalk(root);
    // A folder of that name is a folder like any other: only a fetch's partial file is left out.
    assert.deepEqual(lines(await entriesOf(walk)), ["folder more.shoal-part 0"]);
    assert.deepEqual(walk.skipped, { ...noneSkipped(), partials: 1 });
    assert.equal(describeSkipped(walk.skipped), "skipped 1 unfinished download (.shoal-part)");
  });
});

Deno.test("TreeWalk - a name that is not UTF-8 is skipped and counted, not fatal", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(join(root, "good.txt"), "ok");
    // Deno cannot spell such a name; the shell's printf can.
    assert.ok(await run("sh", ["-c", `touch "$(printf '%s/bad\\377' "$1")"`, "sh", root]));
    const walk = new TreeWalk(root);
    assert.deepEqual(lines(await entriesOf(walk)), ["file good.txt 2"]);
    assert.equal(describeSkipped(walk.skipped), "skipped 1 name that is not UTF-8");
  });
});

Deno.test("describeSkipped - plurals are right, and nothing skipped says nothing", () => {
  assert.equal(describeSkipped(noneSkipped()), "");
  assert.equal(
    describeSkipped({ ...noneSkipped(), symlinks: 2, fifos: 1 }),
    "skipped 2 symlinks, 1 FIFO",
  );
  assert.equal(
    describeSkipped({ ...noneSkipped(), symlinks: 1, fifos: 2, sockets: 2, devices: 3 }),
    "skipped 1 symlink, 2 FIFOs, 2 sockets, 3 devices",
  );
  assert.equal(
    describeSkipped({ ...noneSkipped(), badNames: 2, vanished: 1 }),
    "skipped 2 names that are not UTF-8, 1 entry that vanished during the walk",
  );
});

Deno.test("TreeWalk - the root may be a symlink to a folder (the user named it)", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "real"));
    await Deno.writeTextFile(join(dir, "real", "a"), "a");
    await Deno.symlink(join(dir, "real"), join(dir, "link"));
    assert.deepEqual(lines(await entriesOf(new TreeWalk(join(dir, "link")))), ["file a 1"]);
  });
});

Deno.test("TreeWalk - a file or a missing path as the root is refused", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "file"), "x");
    await assert.rejects(
      entriesOf(new TreeWalk(join(dir, "file"))),
      shoalError("INVALID_INPUT", /is not a folder/),
    );
    await assert.rejects(
      entriesOf(new TreeWalk(join(dir, "missing"))),
      shoalError("IO", /^no such folder: .*missing$/),
    );
  });
});

Deno.test("TreeWalk - a tree deeper than the limit is refused with a clear error", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(join(root, "1", "2", "3", "4"), { recursive: true });
    await entriesOf(new TreeWalk(root, { maxDepth: 4 }));
    await assert.rejects(
      entriesOf(new TreeWalk(root, { maxDepth: 3 })),
      shoalError("INVALID_INPUT", /1\/2\/3\/4 is more than 3 folders deep/),
    );
  });
});

Deno.test("TreeWalk - more entries than the limit is refused, even inside one folder", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(join(root, "sub"));
    for (const name of ["a", "b", "sub/c", "sub/d"]) await Deno.writeTextFile(join(root, name), "");
    assert.equal((await entriesOf(new TreeWalk(root, { maxEntries: 5 }))).length, 5);
    await assert.rejects(
      entriesOf(new TreeWalk(root, { maxEntries: 4 })),
      shoalError("INVALID_INPUT", /more than 4 files and folders/),
    );
    await assert.rejects(
      entriesOf(new TreeWalk(join(root, "sub"), { maxEntries: 1 })),
      shoalError("INVALID_INPUT", /more than 1 files and folders/),
    );
  });
});

Deno.test("TreeWalk - an aborted walk stops with CANCELLED", async () => {
  await withTempDir(async (root) => {
    for (const name of ["a", "b", "c"]) await Deno.mkdir(join(root, name));
    const controller = new AbortController();
    const walk = new TreeWalk(root, { signal: controller.signal });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const entry of walk) {
          seen.push(entry.path);
          controller.abort();
        }
      })(),
      shoalError("CANCELLED", /stopped walking/),
    );
    assert.deepEqual(seen, ["a"]);
  });
});

/**
 * The walk of `root` in a child process that is still root but holds no
 * capabilities: root reads every folder whatever its mode, a root without
 * CAP_DAC_OVERRIDE meets an unreadable one. It stays root so that it can read
 * the repository wherever it was cloned (another user cannot read a clone in
 * a private folder, say one `mktemp -d` made).
 */
async function walkWithoutCapabilities(
  root: string,
): Promise<{ success: boolean; stderr: string }> {
  const module = resolve(import.meta.dirname!, "../../lib/peer/tree_walk.ts");
  const script = `import { TreeWalk } from ${JSON.stringify(`file://${module}`)};
try { for await (const _ of new TreeWalk(${JSON.stringify(root)})) {} }
catch (error) { console.error(error.code, error.message); Deno.exit(1); }`;
  const output = await new Deno.Command("setpriv", {
    args: [
      "--inh-caps=-all",
      "--ambient-caps=-all",
      "--bounding-set=-all",
      Deno.execPath(),
      "eval",
      "--no-config",
      script,
    ],
    env: { DENO_DIR: join(root, "..", "deno-dir"), HOME: join(root, "..") },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { success: output.success, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("TreeWalk - an unreadable folder fails the walk with one error naming it", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "tree");
    await Deno.mkdir(join(root, "open"), { recursive: true });
    await Deno.mkdir(join(root, "locked", "inner"), { recursive: true });
    await Deno.chmod(join(root, "locked"), 0o000);
    try {
      if (Deno.uid() !== 0) {
        await assert.rejects(
          entriesOf(new TreeWalk(root)),
          shoalError("IO", /cannot read the folder \S*tree\/locked: Permission denied$/),
        );
        return;
      }
      await Deno.chmod(dir, 0o777);
      const walked = await walkWithoutCapabilities(root);
      if (walked.stderr.startsWith("setpriv:")) {
        console.log(
          `cannot drop capabilities here, unreadable folder not exercised: ${walked.stderr}`,
        );
        return;
      }
      assert.equal(walked.success, false);
      assert.match(
        walked.stderr,
        /^IO cannot read the folder \S*tree\/locked: Permission denied$/m,
      );
    } finally {
      await Deno.chmod(join(root, "locked"), 0o755);
    }
  });
});
