/**
 * The rate and slot options as a user meets them: flags, config keys that
 * become their defaults, one-line errors for bad values, and the shell.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatSeconds, ordinal, queueNote } from "../../lib/cli/progress.ts";
import { tempDir } from "../helpers/processes.ts";
import { runPeerCli } from "../helpers/cli.ts";
import { runPeer } from "./_terminal.ts";

Deno.test("rate options - config keys become the defaults of serve, shell and fetch", async () => {
  await using home = await tempDir("shoal-rates-");
  const peer = (...args: string[]) => runPeerCli(["--home", home.path, ...args]);
  for (
    const [key, value] of [
      ["serve.upload-rate", "20MB/s"],
      ["serve.upload-slots", "2"],
      ["fetch.download-rate", "500KiB/s"],
    ]
  ) {
    const set = await peer("config", "set", key, value);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((await peer("config", "get", key)).stdout, `${value}\n`);
  }
  assert.match(
    await Deno.readTextFile(join(home.path, "config.toml")),
    /\[serve\]\nupload-rate = "20MB\/s"\nupload-slots = 2/,
  );
  for (const command of ["serve", "shell"]) {
    const help = (await peer(command, "--help")).stdout.replace(/\s+/g, " ");
    assert.match(help, /--max-upload-rate <rate> .*\(default: "20MB\/s"\)/, command);
    assert.match(help, /--upload-slots <n> .*\(default: "2"\)/, command);
  }
  const fetchHelp = (await peer("fetch", "--help")).stdout.replace(/\s+/g, " ");
  assert.match(fetchHelp, /--max-download-rate <rate> .*\(default: "500KiB\/s"\)/);
});

Deno.test("rate options - the slots default to 4 and the rates to no limit", async () => {
  await using home = await tempDir("shoal-rates-");
  const help = (await runPeerCli(["--home", home.path, "serve", "--help"])).stdout.replace(
    /\s+/g,
    " ",
  );
  assert.match(help, /--upload-slots <n> .*\(default: "4"\)/);
  assert.match(help, /--max-upload-rate <rate> .*\(default: no limit\)/);
});

Deno.test("rate options - a bad rate or slot count is one line naming what to write, from a flag or the config", async () => {
  await using home = await tempDir("shoal-rates-");
  const peer = (...args: string[]) => runPeerCli(["--home", home.path, ...args]);
  const cases: [string[], RegExp][] = [
    [
      ["serve", "--max-upload-rate", "fast"],
      /--max-upload-rate: not a rate: "fast"; write a rate like 500KiB\/s/,
    ],
    [
      ["serve", "--max-upload-rate", "20Mb/s"],
      /could mean bits or bytes.*MB\/s for bytes or Mbit\/s for bits/,
    ],
    [
      ["serve", "--upload-slots", "0"],
      /--upload-slots "0": upload slots are a whole number from 1 to 1000/,
    ],
    [
      ["fetch", "x", "--max-download-rate", "9 parsecs"],
      /--max-download-rate: unknown rate unit "parsecs"/,
    ],
    [
      ["config", "set", "serve.upload-rate", "20XB/s"],
      /invalid serve\.upload-rate "20XB\/s": unknown rate unit "XB"/,
    ],
    [["config", "set", "serve.upload-slots", "many"], /invalid serve\.upload-slots "many"/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await peer(...args);
    assert.notEqual(code, 0, args.join(" "));
    assert.match(stderr, message, args.join(" "));
    assert.equal(stderr.trim().split("\n").filter((l) => l.startsWith("error")).length, 1);
  }
  assert.equal((await peer("config", "get", "serve.upload-rate")).stdout, "");
});

Deno.test("rate options - the shell refuses a bad rate at its start, and its fetch takes --max-download-rate", async () => {
  await using dir = await tempDir("shoal-rates-");
  const home = join(dir.path, "home");
  const bad = await runPeer(
    ["--home", home, "--tracker", "127.0.0.1:1", "shell", "--max-upload-rate", "lots"],
    { stdin: "" },
  );
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--max-upload-rate: not a rate: "lots"/);
  const shell = await runPeer(
    ["--home", home, "--tracker", "127.0.0.1:1", "shell", "--max-upload-rate", "1MB/s"],
    { stdin: "fetch x --max-download-rate lots\nfetch --help\n" },
  );
  assert.equal(shell.code, 0, shell.stderr);
  assert.match(shell.stderr, /--max-download-rate: not a rate: "lots"/);
  assert.match(shell.stdout, /--max-download-rate <rate>/);
});

Deno.test("queue note - the progress line's words for a place in a source's queue", () => {
  assert.equal(queueNote({ owner: "alice", place: 3 }), "queued: 3rd at alice");
  const table: [number, string][] = [
    [1, "1st"],
    [2, "2nd"],
    [3, "3rd"],
    [4, "4th"],
    [11, "11th"],
    [12, "12th"],
    [13, "13th"],
    [21, "21st"],
    [22, "22nd"],
    [101, "101st"],
    [111, "111th"],
  ];
  for (const [n, text] of table) assert.equal(ordinal(n), text);
});

Deno.test("progress - the time left reads as seconds, minutes or hours", () => {
  assert.equal(formatSeconds(6.2), "7s");
  assert.equal(formatSeconds(125), "2m05s");
  assert.equal(formatSeconds(3720), "1h02m");
});
