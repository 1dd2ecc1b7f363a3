/**
 * What the CLIs print: colours only on a terminal and never with NO_COLOR,
 * tables no wider than the terminal, sizes human-readable in tables and
 * exact in `--json`. What needs a terminal or its own environment runs a
 * child; the sizes run tracker and programs in this process (but the view
 * on a terminal).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CHILD_ENV, PEER_TS, tempDir, writeRandomFile } from "../helpers/processes.ts";
import { CliPeer, runTrackerCli } from "../helpers/cli.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { baseEnv, denoRun, hasColour, hasCommand, runPeer, TmuxPane } from "./_terminal.ts";
import { plural } from "../../lib/cli/output.ts";

const HAS_SCRIPT = hasCommand("script");
const HAS_TMUX = hasCommand("tmux");
if (!HAS_SCRIPT) console.log("skipped the NO_COLOR test of tests/cli/output_test.ts: no `script`");
if (!HAS_TMUX) console.log("skipped the width tests of tests/cli/output_test.ts: no tmux");

const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Runs a command on a pseudo-terminal of 200 columns made by `script`, with
 * NO_COLOR set to `noColor` or absent, and returns what the terminal got.
 */
async function onTerminal(argv: string[], noColor: string | null): Promise<string> {
  const env: Record<string, string> = { ...baseEnv(), ...CHILD_ENV };
  delete env.NO_COLOR;
  // The table library's colour support turns itself off under CI=true (as CI sets it).
  delete env.CI;
  if (noColor !== null) env.NO_COLOR = noColor;
  const command = `stty cols 200 rows 50; exec ${argv.map(shellQuote).join(" ")}`;
  const output = await new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env,
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, text + new TextDecoder().decode(output.stderr));
  return text;
}

/** The length of the longest line, in characters (box drawing included). */
const widest = (text: string) =>
  Math.max(...text.split("\n").map((line) => [...line.trimEnd()].length));

Deno.test({
  name:
    "NO_COLOR - a table on a terminal has colours, none with NO_COLOR=1, none without a terminal",
  ignore: !HAS_SCRIPT,
  async fn() {
    await using home = await tempDir("shoal-output-");
    const argv = denoRun(PEER_TS, "--home", home.path, "config", "list");

    const coloured = await onTerminal(argv, null);
    assert.match(coloured, /serve\.port/);
    assert.ok(hasColour(coloured), `colours on a terminal:\n${JSON.stringify(coloured)}`);

    const plain = await onTerminal(argv, "1");
    assert.match(plain, /serve\.port/);
    assert.ok(!hasColour(plain), `no colours with NO_COLOR=1:\n${JSON.stringify(plain)}`);

    const piped = await runPeer(["--home", home.path, "config", "list"], { unset: ["NO_COLOR"] });
    assert.equal(piped.code, 0);
    assert.match(piped.stdout, /serve\.port/);
    assert.ok(!hasColour(piped.stdout + piped.stderr), "no colours without a terminal");
  },
});

Deno.test({
  name: "table width - config list fits a 60-column terminal, and is wider on a wide one",
  ignore: !HAS_TMUX,
  async fn() {
    await using home = await tempDir("shoal-output-");
    const argv = denoRun(PEER_TS, "--home", home.path, "config", "list");
    const run = async (columns: number) => {
      await using pane = await TmuxPane.start(argv, { columns, rows: 80 });
      assert.equal(await pane.exitCode(), 0, await pane.capture());
      const text = await pane.capture();
      return text.slice(0, text.indexOf("[exited"));
    };

    const narrow = await run(60);
    assert.ok(widest(narrow) <= 60, `every line fits 60 columns:\n${narrow}`);
    for (const key of ["tracker", "insecure-plaintext", "serve.host", "serve.port"]) {
      assert.match(narrow, new RegExp(`│ ${RegExp.escape(key)} +│`), `${key} stays whole`);
    }
    // The descriptions wrap instead of being cut.
    assert.match(narrow.replace(/[│\s]+/g, " "), /SHOAL_INSECURE_PLAINTEXT\)/);

    const wide = await run(200);
    assert.ok(widest(wide) > 60, `the same table is wider when there is room:\n${wide}`);
    assert.ok(widest(wide) <= 200);
  },
});

Deno.test("sizes - human-readable in tables, exact bytes in --json", async () => {
  await using dir = await tempDir("shoal-output-");
  const db = join(dir.path, "tracker.db");
  const tracker = await startLocalTracker(dir.path);
  try {
    const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
    await alice.signUp("alice");
    const size = 1_572_864 + 7;
    const source = join(dir.path, "slides.bin");
    await writeRandomFile(source, size);
    assert.match(await alice.ok(["publish", "slides", source]), /published "slides" \(1\.5 MiB,/);

    const table = await alice.ok(["view"]);
    assert.match(table, /│ slides +│ .*slides\.bin +│ bin +│ 1\.5 MiB +│/);
    assert.doesNotMatch(table, new RegExp(String(size)));
    const json = JSON.parse(await alice.ok(["view", "--json"]));
    assert.equal(json.length, 1);
    assert.equal(json[0].size, size);
    assert.equal(json[0].name, "slides");
    // What a user or script needs, not the home's bookkeeping (modification times, inodes).
    const folder = join(dir.path, "course");
    await Deno.mkdir(folder);
    await Deno.writeTextFile(join(folder, "notes.md"), "notes");
    await alice.ok(["publish", folder]);
    const both = JSON.parse(await alice.ok(["view", "--json"]));
    const fields = ["contentId", "files", "folder", "link", "name", "path", "publishedAt", "size"];
    for (const share of both) assert.deepEqual(Object.keys(share).sort(), [...fields, "type"]);
    assert.deepEqual(
      both.map((share: { name: string; files: number; folder: boolean; type: string }) => [
        share.name,
        share.files,
        share.folder,
        share.type,
      ]),
      [["course", 1, true, "folder"], ["slides", 1, false, "bin"]],
    );

    assert.match(await alice.ok(["search", "slid"]), /│ slides +│ bin +│ 1\.5 MiB +│ alice +│/);
    const found = JSON.parse(await alice.ok(["search", "slid", "--json"]));
    assert.deepEqual(found.map((f: { name: string; size: number }) => [f.name, f.size]), [
      ["slides", size],
    ]);

    const files = await runTrackerCli(["files", "--db", db]);
    assert.match(files.stdout, /│ alice +│ slides +│ bin +│ 1\.5 MiB +│/);
    const filesJson = JSON.parse((await runTrackerCli(["files", "--db", db, "--json"])).stdout);
    assert.equal(filesJson.find((f: { name: string }) => f.name === "slides").size, size);

    if (!HAS_TMUX) return;
    // A long location wraps inside its column instead of widening the table.
    await using pane = await TmuxPane.start(
      denoRun(PEER_TS, "--tracker", tracker.address, "--home", alice.home, "view"),
      { columns: 60, rows: 40 },
    );
    assert.equal(await pane.exitCode(), 0, await pane.capture());
    const text = await pane.capture();
    const view = text.slice(0, text.indexOf("[exited"));
    assert.ok(widest(view) <= 60, `the view table fits 60 columns:\n${view}`);
    assert.match(view, /1\.5 MiB/);
  } finally {
    await tracker.stop();
  }
});

Deno.test({
  // lib bug (issue 6): on a terminal that reports 0 columns (a `script` or serial console with
  // no size), lib/cli/output.ts squeezes every column to 8 characters; 0 should mean unknown.
  name: "a terminal that reports no width gets the table at its natural width",

  async fn() {
    await using home = await tempDir("shoal-output-");
    const argv = denoRun(PEER_TS, "--home", home.path, "config", "list");
    const output = await new Deno.Command("script", {
      args: ["-qec", argv.map(shellQuote).join(" "), "/dev/null"],
      stdin: "null",
      stdout: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    assert.match(text, /│ insecure-plaintext +│/, text);
  },
});

Deno.test("plural - one source, two sources, zero sources", () => {
  assert.equal(plural(1, "source"), "1 source");
  assert.equal(plural(2, "source"), "2 sources");
  assert.equal(plural(0, "source"), "0 sources");
  assert.equal(plural(1, "match", "matches"), "1 match");
});

Deno.test("a fetched folder's summary line gives a rate, but not when all of it was resumed", async () => {
  const { folderSummaryLine } = await import("../../lib/cli/folder_commands.ts");
  const result = {
    output: "/somewhere/course",
    files: 3,
    size: 3 * 1024 * 1024,
    seconds: 2,
    resumed: 0,
    kept: { files: 0, bytes: 0 },
    sources: [
      {
        owner: "alice",
        address: "127.0.0.1:1",
        partial: false,
        pieces: 12,
        bytes: 0,
        queued: null,
      },
    ],
    dropped: [],
    shared: true,
  };
  assert.match(
    folderSummaryLine(result, "course"),
    // Worded as a file's: how many sources, then each.
    /3\.0 MiB in 2\.00 s \(1\.5 MiB\/s\) from 1 source: alice 12 pieces$/,
  );
  const resumed = folderSummaryLine({ ...result, resumed: result.size }, "course");
  assert.doesNotMatch(resumed, /\/s\)/);
  assert.match(
    resumed,
    /3\.0 MiB in 2\.00 s from 1 source: alice 12 pieces; 3\.0 MiB resumed from before/,
  );
  // Fetched over an earlier version (--force): what was there already is neither fetched nor rated.
  const kept = folderSummaryLine(
    { ...result, kept: { files: 2, bytes: 2 * 1024 * 1024 } },
    "course",
  );
  assert.match(
    kept,
    /3\.0 MiB in 2\.00 s \(512 KiB\/s\) .*; 2 files \(2\.0 MiB\) already there with the same content, kept$/,
  );
});

Deno.test("a cut shoal: link (the 12 digits publish shows beside 'content') is refused as a link, saying how many digits it holds, not as a name with ':'", async () => {
  const { contentIdOfLink } = await import("../../lib/cli/folder_commands.ts");
  const id = "d915ba14fc2bb21e2e0b7cb8f77e4204a1b3e2d2fe41b2dc8dfe93f868f777db";
  assert.equal(contentIdOfLink(`shoal:${id.toUpperCase()}`), id);
  assert.equal(contentIdOfLink("notes"), null);
  assert.throws(() => contentIdOfLink("shoal:d915ba14fc2b"), (error: Error & { code?: string }) => {
    assert.equal(error.code, "INVALID_INPUT");
    assert.match(
      error.message,
      /^shoal:d915ba14fc2b is not a whole link: a shoal: link holds the 64 hex digits of a content id \(this one has 12\)$/,
    );
    return true;
  });
  assert.throws(() => contentIdOfLink("shoal:"), /not a whole link/);
});

Deno.test("renderTable draws one rule under the header and none between rows, so a long listing takes a line a row", async () => {
  const { renderTable } = await import("../../lib/cli/output.ts");
  const lines = renderTable(["path", "size"], [["a.txt", "6 B"], ["sub/b.txt", "1 KiB"], [
    "c",
    "0 B",
  ]]).split("\n");
  assert.equal(lines.length, 3 + 4, lines.join("\n"));
  assert.equal(lines.filter((line) => line.includes("├")).length, 1);
  assert.match(lines[1], /│ path +│ size +│/);
  assert.match(lines[3], /│ a\.txt +│ 6 B +│/);
  assert.match(lines[4], /│ sub\/b\.txt +│ 1 KiB +│/);
});

Deno.test("barWidth: 40 columns of bar where there is room, fewer on a narrow terminal so the rate and ETA stay on the line, never under 10", async () => {
  const { barWidth } = await import("../../lib/cli/progress.ts");
  assert.equal(barWidth(null, 90), 40);
  assert.equal(barWidth(200, 90), 40);
  assert.equal(barWidth(120, 90), 29);
  assert.equal(barWidth(80, 90), 10);
});

Deno.test("renderTable on a narrow terminal breaks a path longer than its column across lines instead of cutting it off with '…'", async () => {
  const { renderTable } = await import("../../lib/cli/output.ts");
  const path = "/tmp/nc2/other/some-long-folder/big.bin.shoal-part";
  const table = renderTable(
    ["no.", "name", "done", "size", "partial file", "last active"],
    [["1", "big", "69%", "19 MiB", path, "2026-11-30T16:00:12.345Z"]],
    70,
  );
  const lines = table.split("\n");
  assert.ok(lines.every((line) => line.length <= 70), table);
  assert.ok(!table.includes("…"), `nothing is cut off:\n${table}`);
  // Read down the column, the pieces of the path and of the timestamp make them whole again.
  const column = (i: number) =>
    lines.filter((line) => line.startsWith("│")).slice(1)
      .map((line) => line.split("│")[i + 1].trim()).join("");
  assert.equal(column(4), path);
  assert.equal(column(5), "2026-11-30T16:00:12.345Z");
  // Words that fit still wrap at their spaces.
  assert.match(table, /│ 19 MiB +│/);
});
