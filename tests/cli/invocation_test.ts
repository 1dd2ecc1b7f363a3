import assert from "node:assert/strict";
import { dirname, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  asTyped,
  commandName,
  commandPrefix,
  completionNames,
  isInstalled,
  launcher,
  launcherBeside,
  readEnvironmentFrom,
  setInvocation,
  splitGlobals,
  takeInstalledAs,
} from "../../lib/invocation.ts";

Deno.test("invocation - global options are split from the command, wherever they are", () => {
  assert.deepEqual(splitGlobals(["--home", "alice", "fetch", "notes", "--tracker=h:1", "--json"]), {
    globals: ["--home", "alice", "--tracker=h:1"],
    rest: ["fetch", "notes", "--json"],
  });
  assert.deepEqual(splitGlobals(["--insecure-plaintext", "publish", "--", "--home"]), {
    globals: ["--insecure-plaintext"],
    rest: ["publish", "--", "--home"],
  });
});

Deno.test("invocation - under deno task, hints name the task and repeat --home", () => {
  readEnvironmentFrom({ ...Deno.env.toObject(), INIT_CWD: Deno.cwd() });
  try {
    assert.equal(launcher("peer"), "deno task peer");
    assert.equal(launcher("tracker"), "deno task admin");
    // The tracker's hints name the peer's commands as the user runs them.
    assert.equal(launcherBeside("peer"), "deno task peer");
    assert.equal(launcherBeside("tracker"), "deno task admin");
    setInvocation("peer", ["--home", "my home", "cancel", "x"]);
    assert.equal(commandPrefix("peer"), "deno task peer --home 'my home'");
    assert.equal(
      asTyped("run `peer.ts login <username>` first"),
      "run `deno task peer --home 'my home' login <username>` first",
    );
    assert.equal(
      asTyped("registered bob; now run: peer.ts login bob"),
      "registered bob; now run: deno task peer --home 'my home' login bob",
    );
  } finally {
    readEnvironmentFrom(null);
    setInvocation("peer", [], "peer.ts");
  }
});

Deno.test("invocation - under deno task from outside the repository, hints name its deno.json", () => {
  const config = fromFileUrl(new URL("../../deno.json", import.meta.url));
  try {
    readEnvironmentFrom({ ...Deno.env.toObject(), INIT_CWD: dirname(config) + "/lib/peer" });
    assert.equal(launcher("peer"), "deno task peer", "a folder below deno.json finds it");
    readEnvironmentFrom({ ...Deno.env.toObject(), INIT_CWD: "/" });
    assert.equal(launcher("peer"), `deno task --config ${relative("/", config)} peer`);
    assert.equal(launcherBeside("tracker"), `deno task --config ${relative("/", config)} admin`);
  } finally {
    readEnvironmentFrom(null);
  }
});

Deno.test("invocation - inside a shell, commands are named bare", () => {
  try {
    setInvocation("peer", [], "");
    assert.equal(asTyped("run `peer.ts login <username>` first"), "run `login <username>` first");
  } finally {
    setInvocation("peer", [], "peer.ts");
  }
});

Deno.test("invocation - a file called peer.ts is not a command", () => {
  try {
    setInvocation("peer", [], "deno task peer");
    assert.equal(asTyped('published "peer.ts" (1 KiB)'), 'published "peer.ts" (1 KiB)');
    assert.equal(asTyped("/src/peer.ts is a file"), "/src/peer.ts is a file");
  } finally {
    setInvocation("peer", [], "peer.ts");
  }
});

Deno.test("invocation - under deno task, serve is `deno task tracker` and the rest `deno task admin`", () => {
  try {
    setInvocation("tracker", [], "deno task admin");
    assert.equal(asTyped("$ tracker.ts serve --port 0"), "$ deno task tracker --port 0");
    assert.equal(asTyped("$ tracker.ts ping alice"), "$ deno task admin ping alice");
    // From outside the repository, with its deno.json named.
    setInvocation("tracker", [], "deno task --config '/my repo/deno.json' admin");
    assert.equal(
      asTyped("start one with `tracker.ts serve`"),
      "start one with `deno task --config '/my repo/deno.json' tracker`",
    );
  } finally {
    setInvocation("tracker", [], "tracker.ts");
  }
});

// Last in this file: once taken, the installed marker stays for the rest of the process.
Deno.test("invocation - an installed command is named as typed: bare on PATH, else by its path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-invocation-" });
  const script = `${dir}/shoal`;
  await Deno.writeTextFile(script, "#!/bin/sh\n");
  const path = Deno.env.get("PATH") ?? "";
  try {
    const args = takeInstalledAs([`--installed-as=${script}`, "--home", "h", "login", "a"]);
    assert.deepEqual(args, ["--home", "h", "login", "a"], "the marker is taken off");
    assert.equal(isInstalled(), true);
    assert.equal(commandName("peer"), "shoal");
    assert.deepEqual(completionNames("peer"), ["shoal"]);

    readEnvironmentFrom({ ...Deno.env.toObject(), PATH: `${dir}:${path}` });
    setInvocation("peer", args);
    assert.equal(
      asTyped("run `peer.ts login <username>` first"),
      "run `shoal --home h login <username>` first",
    );
    // Beside the installed shoal-tracker, the peer is the installed shoal.
    assert.equal(launcherBeside("peer"), "shoal");

    readEnvironmentFrom({ ...Deno.env.toObject(), PATH: "/nonexistent" });
    // Its path from the current folder, or the absolute one where that is shorter.
    const near = relative(Deno.cwd(), script);
    assert.equal(launcher("peer"), near.length <= script.length ? near : script, "its path");
    assert.deepEqual(takeInstalledAs(["login", "--installed-as=/x"]), [
      "login",
      "--installed-as=/x",
    ]);
  } finally {
    readEnvironmentFrom(null);
    setInvocation("peer", [], "peer.ts");
    await Deno.remove(dir, { recursive: true });
  }
});
