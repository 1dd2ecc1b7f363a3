import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkFolderPaths,
  collisionKey,
  folderPathProblem,
  MAX_DEPTH,
  MAX_FOLDER_ENTRIES,
  resolveAllInside,
  resolveInside,
  utf8Length,
} from "../../lib/peer/folder_paths.ts";
import { checkFreeSpace, freeBytes } from "../../lib/peer/disk_space.ts";
import { taskFlags } from "../../lib/cli/install.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { HIDDEN_CHARACTER } from "../../lib/protocol/validate.ts";
import { shoalError } from "../helpers/errors.ts";

/** One hostile list per rule, with what the refusal must say. */
const HOSTILE: { rule: string; paths: string[]; says: RegExp }[] = [
  { rule: "empty path", paths: [""], says: /is empty/ },
  { rule: "absolute", paths: ["/etc/passwd"], says: /is absolute/ },
  { rule: "Windows drive", paths: ["C:/Windows/win.ini"], says: /drive letter/ },
  { rule: "Windows separator", paths: ["a\\..\\..\\evil"], says: /'\\'/ },
  { rule: "'..' component", paths: ["notes/../../.bashrc"], says: /'\.\.' component/ },
  { rule: "'..' alone", paths: [".."], says: /'\.\.' component/ },
  { rule: "'.' component", paths: ["notes/./a.txt"], says: /'\.' component/ },
  { rule: "empty component", paths: ["notes//a.txt"], says: /empty component/ },
  { rule: "trailing slash", paths: ["notes/"], says: /empty component/ },
  { rule: "NUL", paths: ["a\0.txt"], says: /NUL/ },
  { rule: "control (ESC)", paths: ["a\x1b[2J.txt"], says: /control character U\+001B/ },
  { rule: "control (newline)", paths: ["a\nb.txt"], says: /control character U\+000A/ },
  { rule: "control (C1)", paths: ["a\u0085b"], says: /control character U\+0085/ },
  { rule: "bidi override", paths: ["invoice\u202Efdp.exe"], says: /text-direction .*U\+202E/ },
  { rule: "bidi isolate", paths: ["a\u2067b"], says: /text-direction .*U\+2067/ },
  { rule: "bidi mark", paths: ["a\u200Fb"], says: /text-direction .*U\+200F/ },
  { rule: "zero-width space", paths: ["report\u200B.pdf"], says: /invisible .*U\+200B/ },
  { rule: "lone surrogate", paths: ["a\uD800b"], says: /invisible .*U\+D800/ },
  { rule: "component over 255 bytes", paths: [`${"é".repeat(128)}/a`], says: /over 255 bytes/ },
  {
    rule: "file name over 244 bytes (its .shoal-part would not fit)",
    paths: [`${"é".repeat(120)}.txtx`],
    says: /file name over 244 bytes .*\.shoal-part/,
  },
  {
    rule: "path over 4096 bytes",
    paths: [Array.from({ length: 20 }, () => "x".repeat(250)).join("/")],
    says: /over 4096 bytes/,
  },
  {
    rule: `deeper than ${MAX_DEPTH}`,
    paths: [Array.from({ length: MAX_DEPTH + 1 }, () => "d").join("/")],
    says: /more than 64 folders deep/,
  },
  { rule: "duplicate", paths: ["a.txt", "b.txt", "a.txt"], says: /"a\.txt" appears twice/ },
  {
    rule: "differs only in case",
    paths: ["Notes/A.txt", "notes/a.TXT"],
    says: /"notes\/a\.TXT" differs from "Notes\/A\.txt" only in letter case/,
  },
  {
    rule: "differs only in normalisation (NFC vs NFD)",
    paths: ["caf\u00e9.txt", "cafe\u0301.txt"],
    says: /Unicode normalisation/,
  },
  {
    rule: "a name a partial download would take",
    paths: ["x", "x.shoal-part"],
    says: /"x\.shoal-part" is named as a download in progress/,
  },
  {
    rule: "a folder a partial download would take, in another case",
    paths: ["a", "A.Shoal-Part/b.txt"],
    says: /is named as a download in progress/,
  },
  {
    rule: "file and folder",
    paths: ["a", "a/b.txt"],
    says: /"a" is a file and also a folder of "a\/b\.txt"/,
  },
  {
    rule: "file and folder, folder listed first",
    paths: ["x/y/z.txt", "x/y"],
    says: /"x\/y" is a file and also a folder/,
  },
  {
    rule: "file and folder in another case",
    paths: ["A", "a/b"],
    says: /"A" is a file and also a folder/,
  },
];

for (const { rule, paths, says } of HOSTILE) {
  Deno.test(`checkFolderPaths - refuses: ${rule}`, () => {
    assert.throws(() => checkFolderPaths(paths), shoalError("UNSAFE_PATH", says));
  });
}

Deno.test("checkFolderPaths - the refusal escapes the path's hidden characters and names the source", () => {
  const error = (() => {
    try {
      checkFolderPaths(["ok.txt", "evil\x1b]0;pwned\x07\u202E.txt"], {
        source: "mallory at 10.0.0.9:7000",
      });
    } catch (caught) {
      return caught;
    }
  })();
  assert.ok(error instanceof ShoalError);
  assert.equal(error.code, "UNSAFE_PATH");
  assert.doesNotMatch(error.message, HIDDEN_CHARACTER);
  assert.match(error.message, /evil\\u\{1b\}\]0;pwned\\u\{7\}\\u\{202e\}\.txt/);
  assert.match(error.message, /from mallory at 10\.0\.0\.9:7000/);
  assert.match(error.hint ?? "", /nothing was written/);
});

Deno.test("checkFolderPaths - accepts unicode names, deep-but-legal paths, empty folders and dotfiles", () => {
  const deepest = Array.from({ length: MAX_DEPTH }, (_, i) => `d${i}`).join("/");
  const paths = [
    "slides/week 1.pdf",
    "slides/week 2.pdf",
    "données/café.txt",
    "日本語/ファイル.txt",
    "emoji/🐟 shoal.md",
    ".hidden/.gitignore",
    "..dots/...",
    "a.b/c..d",
    "empty-file",
    "empty folder",
    deepest,
    `${"é".repeat(125)}x.txt/a`, // 255 bytes of UTF-8, the most a folder's name may have
    `${"é".repeat(120)}.txt`, // 244 bytes, the most a file's name may have
    [...Array(15).fill("x".repeat(250)), "x".repeat(240)].join("/"), // 4005 bytes
  ];
  checkFolderPaths(paths, { folders: ["empty folder"] });
});

Deno.test("checkFolderPaths - a listed folder may hold other paths; a file may not", () => {
  checkFolderPaths(["docs", "docs/a.txt"], { folders: ["docs"] });
  assert.throws(
    () => checkFolderPaths(["docs", "docs/a.txt"]),
    shoalError("UNSAFE_PATH", /is a file and also a folder/),
  );
});

Deno.test("checkFolderPaths - a folder share of more than the entry limit is refused by count", () => {
  const tooMany = { length: MAX_FOLDER_ENTRIES + 1 } as unknown as readonly string[];
  assert.throws(
    () => checkFolderPaths(tooMany),
    shoalError("UNSAFE_PATH", /more than the 1000000/),
  );
});

Deno.test("checkFolderPaths - a very long path is shortened in the message, keeping both ends", () => {
  const long = [...Array(20).fill("x".repeat(250)), "end.txt"].join("/");
  assert.throws(
    () => checkFolderPaths([long]),
    (error: unknown) => {
      assert.ok(error instanceof ShoalError);
      assert.ok(error.message.length < 400, error.message);
      assert.match(error.message, /"xxxx.*….*x\/end\.txt" is over 4096 bytes/);
      return true;
    },
  );
});

Deno.test("folderPathProblem - null for a good path, the rule for a bad one", () => {
  assert.equal(folderPathProblem("a/b/c.txt"), null);
  assert.match(folderPathProblem("a/../b")!, /'\.\.'/);
});

Deno.test("folderPathProblem - a printable-ASCII path gets the rule a path with other characters gets", () => {
  const deep = (name: string) => Array.from({ length: 65 }, () => name).join("/");
  const long = (name: string) => Array.from({ length: 20 }, () => "x".repeat(250) + name).join("/");
  // Each pair breaks the same rule (or none); only the second has a character outside ASCII.
  const pairs: [string, string][] = [
    ["a/b.txt", "\u00e9/b.txt"],
    ["/abs/x", "/abs/\u00e9"],
    ["C:x/y", "C:x/\u00e9"],
    ["a\\b", "\u00e9\\b"],
    ["a//b", "a//\u00e9"],
    ["a/b/", "\u00e9/b/"],
    ["./a", "./\u00e9"],
    ["a/.", "\u00e9/."],
    ["a/./b", "\u00e9/./b"],
    ["a/../b", "\u00e9/../b"],
    ["..", "\u00e9/.."],
    ["a/.../b", "\u00e9/.../b"],
    ["a/..b/.c", "\u00e9/..b/.c"],
    ["x".repeat(256) + "/b", "x".repeat(256) + "/\u00e9"],
    ["x".repeat(255) + "/b", "x".repeat(253) + "\u00e9/b"],
    [deep("a"), deep("\u00e9")],
    [deep("a").slice(2), deep("\u00e9").slice(2)],
    [long("a"), long("\u00e9")],
  ];
  for (const [plain, other] of pairs) {
    assert.equal(folderPathProblem(plain), folderPathProblem(other), plain.slice(0, 40));
  }
  assert.equal(folderPathProblem(deep("a").slice(2)), null);
  assert.match(folderPathProblem(deep("a"))!, /64 folders deep/);
});

Deno.test("collisionKey - case and NFC/NFD spellings of one name share a key", () => {
  assert.equal(collisionKey("Caf\u00e9"), collisionKey("CAFE\u0301"));
  assert.notEqual(collisionKey("cafe"), collisionKey("café"));
});

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-folder-paths-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The two ways to resolve: one path at a time, and a folder's paths at once. */
const RESOLVERS: [string, (out: string, path: string) => Promise<string>][] = [
  ["resolveInside", resolveInside],
  ["resolveAllInside", async (out, path) => (await resolveAllInside(out, [path]))[0]],
];

for (const [label, resolver] of RESOLVERS) {
  Deno.test(`${label} - a path in a fresh or existing tree resolves under the output folder`, async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      assert.equal(await resolver(out, "a/b/c.txt"), join(out, "a", "b", "c.txt"));
      await Deno.mkdir(join(out, "a"), { recursive: true });
      await Deno.writeTextFile(join(out, "a", "c.txt"), "kept");
      assert.equal(await resolver(out, "a/c.txt"), join(out, "a", "c.txt"));
    });
  });

  Deno.test(`${label} - a symlinked folder inside the output folder cannot carry a file outside it`, async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      const outside = join(dir, "outside");
      await Deno.mkdir(out);
      await Deno.mkdir(outside);
      await Deno.symlink(outside, join(out, "docs"));
      await assert.rejects(
        resolver(out, "docs/evil.txt"),
        shoalError("UNSAFE_PATH", /"docs", a symlink already in/),
      );
      // A symlink as the file itself: writing it would follow the link.
      await Deno.symlink(join(outside, "target"), join(out, "file.txt"));
      await assert.rejects(resolver(out, "file.txt"), shoalError("UNSAFE_PATH", /symlink/));
      // A dangling symlink is refused as well.
      await Deno.symlink(join(dir, "nowhere"), join(out, "gone"));
      await assert.rejects(resolver(out, "gone/x"), shoalError("UNSAFE_PATH", /symlink/));
      assert.deepEqual([...Deno.readDirSync(outside)], []);
    });
  });

  Deno.test(`${label} - a file where a folder must go is refused; the output folder itself may be a symlink`, async () => {
    await withTempDir(async (dir) => {
      const real = join(dir, "real");
      await Deno.mkdir(real);
      await Deno.writeTextFile(join(real, "a"), "a file");
      await assert.rejects(
        resolver(real, "a/b.txt"),
        shoalError("UNSAFE_PATH", /needs "a" to be a folder/),
      );
      const link = join(dir, "link");
      await Deno.symlink(real, link);
      assert.equal(await resolver(link, "b.txt"), join(link, "b.txt"));
    });
  });

  Deno.test(`${label} - refuses a path that breaks a rule, without touching the disk`, async () => {
    await assert.rejects(
      resolver("/nonexistent-out", "../x"),
      shoalError("UNSAFE_PATH", /'\.\.'/),
    );
    await assert.rejects(
      resolver("/nonexistent-out", "/etc/x"),
      shoalError("UNSAFE_PATH", /absolute/),
    );
  });
}

Deno.test("resolveAllInside - resolves a folder's paths in order, and refuses the one through a symlink", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    await Deno.mkdir(join(out, "a"), { recursive: true });
    await Deno.writeTextFile(join(out, "a", "half.txt"), "from an earlier run");
    const paths = ["a", "a/half.txt", "a/new/deep.txt", "b/c.txt", "top.txt"];
    assert.deepEqual(
      await resolveAllInside(out, paths),
      paths.map((path) => join(out, ...path.split("/"))),
    );
    await Deno.mkdir(join(dir, "elsewhere"));
    await Deno.symlink(join(dir, "elsewhere"), join(out, "a", "new"));
    await assert.rejects(
      resolveAllInside(out, paths),
      shoalError("UNSAFE_PATH", /"a\/new\/deep\.txt" would be written through "a\/new", a symlink/),
    );
  });
});

Deno.test("resolveAllInside - a symlink in another case or normalisation is refused too, as macOS would follow it", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    await Deno.mkdir(out);
    await Deno.mkdir(join(dir, "elsewhere"));
    await Deno.symlink(join(dir, "elsewhere"), join(out, "Cafe\u0301"));
    await assert.rejects(
      resolveAllInside(out, ["caf\u00e9/x.txt"]),
      shoalError("UNSAFE_PATH", /symlink/),
    );
  });
});

Deno.test("freeBytes - agrees with df, and looks at the nearest existing parent of a new folder", async () => {
  await withTempDir(async (dir) => {
    const free = await freeBytes(join(dir, "not", "yet", "made"));
    assert.ok(free !== null && free > 0);
    const df = await new Deno.Command("df", { args: ["-B1", "--output=avail", dir] }).output();
    if (df.success) {
      const dfFree = Number(new TextDecoder().decode(df.stdout).trim().split("\n").at(-1));
      // Other processes write meanwhile: within 1 GiB of each other.
      assert.ok(Math.abs(dfFree - free!) < 2 ** 30, `statfs ${free}, df ${dfFree}`);
    }
  });
});

Deno.test("freeBytes - the peer's task permissions let it read the free space, without a prompt", async () => {
  // Without --allow-sys=statfs, Deno asks on a terminal and refuses elsewhere, and the
  // folder fetch's free-space check before the first byte silently did nothing.
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const flags = taskFlags(config.tasks.peer, "peer.ts");
  const module = new URL("../../lib/peer/disk_space.ts", import.meta.url).href;
  await withTempDir(async (dir) => {
    const script = join(dir, "free.ts");
    await Deno.writeTextFile(
      script,
      `import { freeBytes } from ${JSON.stringify(module)};\n` +
        `console.log(JSON.stringify(await freeBytes(${JSON.stringify(dir)})));\n`,
    );
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(run.stdout).trim();
    assert.ok(run.success, new TextDecoder().decode(run.stderr));
    assert.ok(Number(out) > 0, `freeBytes under the peer task's flags: ${out}`);
  });
});

Deno.test("checkFreeSpace - a total that does not fit says how much is needed and how much is free", async () => {
  await withTempDir(async (dir) => {
    await checkFreeSpace(dir, 1024);
    await checkFreeSpace(dir, 0);
    await assert.rejects(
      checkFreeSpace(join(dir, "new"), 2 ** 60),
      shoalError(
        "IO",
        /not enough disk space in .*new: 1048576\.0 TiB needed \(\d+ bytes\), .* free \(\d+ bytes\)/,
      ),
    );
  });
});

Deno.test("utf8Length - counts as TextEncoder does, surrogate pairs and lone surrogates included", () => {
  const encoder = new TextEncoder();
  for (const text of ["", "abc", "é", "日本語", "🐟", "a\uD800b", "\uDC00", "x🐟é日"]) {
    assert.equal(utf8Length(text), encoder.encode(text).length, JSON.stringify(text));
  }
});
