/**
 * What `deno task install` asks of `deno install`: each command with exactly
 * its task's flags from deno.json, in the root deno install would use. (The
 * commands installed and run for real: tests/e2e/install_test.ts.)
 */
import assert from "node:assert/strict";
import {
  allowAll,
  COMMANDS,
  completionsLine,
  installArgs,
  installRoot,
  taskFlags,
} from "../../lib/cli/install.ts";

const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));

Deno.test("install - each command takes its task's flags, never -A", () => {
  for (const command of COMMANDS) {
    const flags = taskFlags(config.tasks[command.task], command.script);
    assert.ok(flags.length > 0, command.name);
    assert.ok(!flags.includes("--allow-all") && !flags.includes("-A"), command.name);
    assert.ok(flags.includes("--allow-net"), command.name);
  }
  const tracker = taskFlags(config.tasks.tracker, "tracker.ts");
  assert.ok(tracker.includes("--allow-run=ping"));
  assert.ok(tracker.some((flag) => flag.startsWith("--v8-flags=")), "the tracker's V8 flag");
  assert.throws(() => taskFlags("deno test tests/", "peer.ts"), /is not `deno run FLAGS peer\.ts`/);
  assert.throws(() => taskFlags(undefined, "peer.ts"), /deno\.json has no task that runs peer\.ts/);
});

Deno.test("install - --allow-all replaces the permission flags and keeps the others", () => {
  assert.deepEqual(
    allowAll(["--v8-flags=--max-semi-space-size=4", "--allow-net", "--allow-run=ping"]),
    ["--allow-all", "--v8-flags=--max-semi-space-size=4"],
  );
});

Deno.test("install - the root is --root, else DENO_INSTALL_ROOT, else ~/.deno", () => {
  // An environment of its own: setting the process's HOME reached the programs other tests
  // started meanwhile (their deno looked for its cache under /home/me and downloaded every package).
  const env = (variables: Record<string, string>) => (name: string) => variables[name];
  assert.equal(installRoot(undefined, env({ HOME: "/home/me" })), "/home/me/.deno");
  const both = env({ HOME: "/home/me", DENO_INSTALL_ROOT: "/opt/deno" });
  assert.equal(installRoot(undefined, both), "/opt/deno");
  assert.equal(installRoot("/srv/tools", both), "/srv/tools");
});

Deno.test("install - deno install gets the repository's config, the script, and the name marker last", () => {
  const args = installArgs("/repo", "/opt/deno", COMMANDS[0], ["--allow-net"]);
  assert.deepEqual(args, [
    "install",
    "--global",
    "--force",
    "--root",
    "/opt/deno",
    "--name",
    "shoal",
    "--config",
    "/repo/deno.json",
    "--allow-net",
    "/repo/peer.ts",
    "--",
    "--installed-as=/opt/deno/bin/shoal",
  ]);
});

Deno.test("install - the completions line names shoal by its path while its folder is not on PATH, so it runs when pasted", () => {
  assert.match(
    completionsLine("/opt/shoal/bin", false),
    /&& \/opt\/shoal\/bin\/shoal completions bash > ~\/\.local\/share\/bash-completion\/completions\/shoal /,
  );
  assert.match(completionsLine("/opt/shoal/bin", true), /&& shoal completions bash > /);
});
