/**
 * With `--json`, an error is one JSON object on stdout (the programs run in this process),
 * `{"error": {"code", "message", "hint"}}`, with the exit status it has without.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { PEER_TS, tempDir } from "../helpers/processes.ts";
import { runPeerCli as runPeer, runTrackerCli as runTracker } from "../helpers/cli.ts";

/** Runs a peer command and parses the one JSON error object it prints. */
async function jsonError(args: string[], home: string) {
  const result = await runPeer(["--home", home, "--tracker", "127.0.0.1:1", ...args]);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stdout: ${result.stdout}${result.stderr}`);
  const parsed = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(parsed), ["error"]);
  return { code: result.code, error: parsed.error as Record<string, string> };
}

Deno.test("--json errors - not logged in: AUTH_REQUIRED with its hint, exit 1", async () => {
  await using dir = await tempDir("shoal-json-");
  const home = join(dir.path, "home");
  const { code, error } = await jsonError(["search", "x", "--json"], home);
  assert.equal(code, 1);
  assert.deepEqual(error, {
    code: "AUTH_REQUIRED",
    message: "not logged in",
    hint: `run \`deno run -A ${relative(Deno.cwd(), PEER_TS)} --home ${home} --tracker ` +
      "127.0.0.1:1 login <username>` first (with no account yet, " +
      `\`deno run -A ${relative(Deno.cwd(), PEER_TS)} --home ${home} --tracker ` +
      "127.0.0.1:1 register <username>` makes one)",
  });
});

Deno.test("--json errors - a missing argument is a USAGE error, exit 2, as without --json", async () => {
  await using dir = await tempDir("shoal-json-");
  const home = join(dir.path, "home");
  const plain = await runPeer(["--home", home, "fetch"]);
  assert.equal(plain.code, 2);
  const { code, error } = await jsonError(["fetch", "--json"], home);
  assert.equal(code, 2);
  assert.deepEqual(error, { code: "USAGE", message: "missing required argument 'name'" });
});

Deno.test("--json errors - a bad --tracker is a USAGE error, exit 2", async () => {
  await using dir = await tempDir("shoal-json-");
  const result = await runPeer([
    "--home",
    join(dir.path, "home"),
    "--tracker",
    "not a host:port:",
    "view",
    "--json",
  ]);
  assert.equal(result.code, 2, result.stderr);
  const { error } = JSON.parse(result.stdout);
  assert.equal(error.code, "USAGE");
  assert.match(error.message, /^--tracker: /);
  assert.equal(error.hint, undefined);
});

Deno.test("--json errors - the tracker's admin commands too: NOT_FOUND for a missing database", async () => {
  await using dir = await tempDir("shoal-json-");
  const result = await runTracker(["peers", "--json", "--db", join(dir.path, "none.db")]);
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stderr, "");
  const { error } = JSON.parse(result.stdout);
  assert.equal(error.code, "NOT_FOUND");
  assert.match(error.message, /^no tracker database at .*none\.db$/);
  assert.match(error.hint, /pass --db FILE/);
});
