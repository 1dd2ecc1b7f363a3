/**
 * The peer's config: built-in defaults < config.toml in the home < env vars
 * < flags, and `config set/get/list/unset` on that file. The tracker address
 * in effect is observed without a tracker: in the `--help` default, and in
 * the "cannot reach HOST:PORT" error of a command that connects. The ports
 * are loopback ports nothing listens on (1–3). What does not depend on the
 * environment runs the program in this process; the environment's part runs
 * it as a child with its own variables.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { PEER_TS, tempDir } from "../helpers/processes.ts";
import { runPeerCli } from "../helpers/cli.ts";
import { denoRun, hasCommand, runPeer, TmuxPane } from "./_terminal.ts";

/** The address `register` tried, from its "cannot reach HOST:PORT" error. */
async function trackerTried(
  home: string,
  globals: string[] = [],
  env: Record<string, string> = {},
): Promise<string> {
  const { code, stderr } = await runPeer(
    [...globals, "register", "carol", "--password-stdin"],
    { env: { SHOAL_HOME: home, ...env }, stdin: "carol-password\n" },
  );
  assert.equal(code, 1, stderr);
  const match = /^error: cannot reach (\S+?):? /m.exec(stderr);
  assert.ok(match, `a "cannot reach" error: ${stderr}`);
  return match[1];
}

/** The `--tracker` default `peer.ts --help` shows for this home. */
async function helpDefault(home: string): Promise<string> {
  const { stdout } = await runPeerCli(["--home", home, "--help"]);
  const match = /--tracker <host:port>\s+the tracker to use[^"]*?\(default:\s+"([^"]+)"/.exec(
    stdout,
  );
  assert.ok(match, stdout);
  return match[1];
}

Deno.test("config precedence - defaults < config.toml < SHOAL_TRACKER < --tracker", async () => {
  await using dir = await tempDir("shoal-config-");
  const home = join(dir.path, "home");

  assert.equal(await helpDefault(home), "127.0.0.1:5050", "built-in default");

  await Deno.mkdir(home);
  await Deno.writeTextFile(join(home, "config.toml"), 'tracker = "127.0.0.1:1"\n');
  assert.equal(await helpDefault(home), "127.0.0.1:1", "the file overrides the default");
  assert.equal(await trackerTried(home), "127.0.0.1:1", "the file overrides the default");

  const env = { SHOAL_TRACKER: "127.0.0.1:2" };
  assert.equal(await trackerTried(home, [], env), "127.0.0.1:2", "env overrides the file");

  const flag = ["--tracker", "127.0.0.1:3"];
  assert.equal(await trackerTried(home, flag, env), "127.0.0.1:3", "the flag overrides env");
  assert.equal(await trackerTried(home, ["--tracker=127.0.0.1:3"]), "127.0.0.1:3");
});

Deno.test("config precedence - the file is read from the home --home or SHOAL_HOME names", async () => {
  await using dir = await tempDir("shoal-config-");
  const [first, second] = [join(dir.path, "first"), join(dir.path, "second")];
  for (const [home, port] of [[first, 1], [second, 2]] as const) {
    await Deno.mkdir(home);
    await Deno.writeTextFile(join(home, "config.toml"), `tracker = "127.0.0.1:${port}"\n`);
  }
  assert.equal(await trackerTried(first), "127.0.0.1:1");
  // --home wins over SHOAL_HOME, for the file as for everything else.
  assert.equal(await trackerTried(first, ["--home", second]), "127.0.0.1:2");
});

Deno.test("config precedence - serve.port and serve.host in the file become serve's defaults", async () => {
  await using home = await tempDir("shoal-config-");
  await Deno.writeTextFile(
    join(home.path, "config.toml"),
    '[serve]\nhost = "127.0.0.1"\nport = 6123\n',
  );
  const { code, stdout } = await runPeerCli(["--home", home.path, "serve", "--help"]);
  assert.equal(code, 0);
  const text = stdout.replace(/\s+/g, " ");
  assert.match(text, /--host <host> .*\(default: "127\.0\.0\.1"\)/);
  assert.match(text, /--port <port> .*\(default: "6123"\)/);
});

Deno.test("config set/get/list/unset - round-trip through the home's config.toml", async () => {
  await using dir = await tempDir("shoal-config-");
  const home = join(dir.path, "home");
  const peer = (...args: string[]) => runPeerCli(["--home", home, "config", ...args]);

  const set = await peer("set", "tracker", "127.0.0.1:1");
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /tracker = 127\.0\.0\.1:1/);
  assert.equal((await peer("set", "serve.port", "6123")).code, 0);
  assert.equal((await peer("set", "insecure-plaintext", "no")).code, 0);

  assert.equal((await peer("get", "tracker")).stdout, "127.0.0.1:1\n");
  assert.equal((await peer("get", "serve.port")).stdout, "6123\n");
  assert.equal((await peer("get", "insecure-plaintext")).stdout, "false\n");
  const unsetKey = await peer("get", "serve.advertise");
  assert.equal(unsetKey.code, 0);
  assert.equal(unsetKey.stdout, "", "an unset key prints nothing");

  // The file is TOML a person can read and edit, dotted keys as tables.
  const file = await Deno.readTextFile(join(home, "config.toml"));
  assert.match(file, /^tracker = "127\.0\.0\.1:1"$/m);
  assert.match(file, /^\[serve\]\nport = 6123$/m);

  const list = await peer("list");
  assert.equal(list.code, 0, list.stderr);
  assert.ok(list.stdout.includes(join(home, "config.toml")), "list names the file");
  const row = (key: string) =>
    list.stdout.split("\n").find((line) => new RegExp(`^│ ${RegExp.escape(key)} +│`).test(line));
  assert.match(row("tracker") ?? "", /│ 127\.0\.0\.1:1 +│/);
  assert.match(row("serve.port") ?? "", /│ 6123 +│/);
  assert.match(row("serve.advertise") ?? "", /│ - +│/);

  const unset = await peer("unset", "tracker");
  assert.equal(unset.code, 0, unset.stderr);
  const toml = join(home, "config.toml");
  assert.equal(unset.stdout, `tracker removed from ${toml}: its default applies\n`);
  const again = await peer("unset", "tracker");
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `tracker is not set in ${toml}: nothing to remove\n`);
  assert.equal((await peer("get", "tracker")).stdout, "");
  assert.equal((await peer("get", "serve.port")).stdout, "6123\n", "other keys stay");
  assert.equal(await helpDefault(home), "127.0.0.1:5050", "back to the built-in default");
});

Deno.test("config set - an invalid value exits 1 with a clear message and leaves the file alone", async () => {
  await using home = await tempDir("shoal-config-");
  const peer = (...args: string[]) => runPeerCli(["--home", home.path, "config", ...args]);
  assert.equal((await peer("set", "serve.port", "6123")).code, 0);
  for (
    const [key, value] of [
      ["serve.port", "abc"],
      ["serve.port", "70000"],
      ["tracker", "not an address:x"],
      ["insecure-plaintext", "maybe"],
    ]
  ) {
    const { code, stdout, stderr } = await peer("set", key, value);
    assert.equal(code, 1, `${key}=${value}: ${stderr}`);
    assert.match(stderr, new RegExp(`^error: invalid ${RegExp.escape(key)} "${value}"`), stderr);
    assert.equal(stderr.trim().split("\n").length, 1, "one line");
    assert.equal(stdout, "");
  }
  assert.equal((await peer("get", "serve.port")).stdout, "6123\n");
});

Deno.test("config - an unknown key exits 1 and lists the known ones", async () => {
  await using home = await tempDir("shoal-config-");
  for (const args of [["set", "colour", "red"], ["get", "colour"], ["unset", "colour"]]) {
    const { code, stderr } = await runPeerCli(["--home", home.path, "config", ...args]);
    assert.equal(code, 1, `config ${args.join(" ")}: ${stderr}`);
    assert.match(stderr, /^error: unknown config key "colour"; known keys: .*tracker.*serve\.port/);
  }
  assert.equal(
    await Deno.stat(join(home.path, "config.toml")).then(() => true, () => false),
    false,
    "nothing was written",
  );
});

/** Runs commands on a home whose config.toml holds `text`; each must fail with one line naming the file. */
async function assertBrokenConfig(text: string, detail: RegExp): Promise<void> {
  await using home = await tempDir("shoal-config-");
  const path = join(home.path, "config.toml");
  await Deno.writeTextFile(path, text);
  for (const args of [["view"], ["config", "list"], ["--help"]]) {
    const { code, stdout, stderr } = await runPeerCli(["--home", home.path, ...args]);
    const label = `${JSON.stringify(text)} with ${args.join(" ")}`;
    assert.equal(code, 1, `${label}: ${stderr}`);
    assert.equal(stdout, "", label);
    const lines = stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `${label}: one line, got ${stderr}`);
    assert.ok(lines[0].startsWith(`error: ${path}: `), `${label}: names the file: ${stderr}`);
    assert.match(lines[0], detail, label);
  }
}

Deno.test("config - a broken config.toml gives a one-line error naming the file", async () => {
  await assertBrokenConfig('tracker = "127.0.0.1:1\n', /TOML/);
  await assertBrokenConfig("tracker = [\n", /TOML/);
});

Deno.test("config - an unknown key in config.toml is warned about once; every command still works", async () => {
  await using home = await tempDir("shoal-config-");
  const path = join(home.path, "config.toml");
  await Deno.writeTextFile(path, 'colour = "red"\ntracker = "127.0.0.1:2"\n');
  // The hint is the command as these tests run it: `deno run -A`, the script, the same --home.
  const warning = `warning: ${path}: unknown key "colour" ignored; remove it with: ` +
    `deno run -A ${relative(Deno.cwd(), PEER_TS)} --home ${home.path} config unset colour`;
  for (const args of [["--help"], ["config", "list"], ["config", "get", "tracker"]]) {
    const { code, stdout, stderr } = await runPeer(["--home", home.path, ...args]);
    assert.equal(code, 0, `${args.join(" ")}: ${stderr}`);
    assert.equal(stderr, `${warning}\n`, `${args.join(" ")} warns once`);
    assert.ok(stdout.length > 0, args.join(" "));
  }
  assert.equal(await helpDefault(home.path), "127.0.0.1:2", "the known keys still apply");

  // Setting a known key keeps the unknown one; unsetting the unknown one removes it.
  assert.equal(
    (await runPeer(["--home", home.path, "config", "set", "serve.port", "7000"])).code,
    0,
  );
  assert.match(await Deno.readTextFile(path), /colour = "red"/);
  const unset = await runPeer(["--home", home.path, "config", "unset", "colour"]);
  assert.equal(unset.code, 0, unset.stderr);
  assert.equal(unset.stdout, `colour removed from ${path}\n`);
  const text = await Deno.readTextFile(path);
  assert.doesNotMatch(text, /colour/);
  assert.match(text, /tracker = "127\.0\.0\.1:2"/);
  assert.match(text, /port = 7000/);
  const after = await runPeer(["--home", home.path, "config", "list"]);
  assert.equal(after.stderr, "", "no warning once the key is gone");
});

Deno.test("config precedence - an empty SHOAL_TRACKER means unset: the file's, else the default", async () => {
  await using home = await tempDir("shoal-config-");
  const { code, stdout, stderr } = await runPeer(["--home", home.path, "--help"], {
    env: { SHOAL_TRACKER: "" },
  });
  assert.equal(code, 0, stderr);
  assert.match(stdout, /the tracker to use[^"]*\(default:\s+"127\.0\.0\.1:5050"/);
  assert.equal(await trackerTried(home.path, [], { SHOAL_TRACKER: "" }), "127.0.0.1:5050");
  await Deno.writeTextFile(join(home.path, "config.toml"), 'tracker = "127.0.0.1:3"\n');
  assert.equal(await trackerTried(home.path, [], { SHOAL_TRACKER: "" }), "127.0.0.1:3");
});

Deno.test({
  // lib bug (issue 6): lib/peer/config.ts loadConfig reports a bad value without the file's
  // path ("error: invalid serve.port ..."). Unignore once the message names the file.
  name: "a bad value in config.toml gives a one-line error naming the file",

  fn: () => assertBrokenConfig("[serve]\nport = 99999\n", /invalid serve\.port "99999"/),
});

/** Whether a command warned that TLS is off. */
async function warnsPlaintext(home: string, globals: string[], env: Record<string, string>) {
  const { stderr } = await runPeer(
    ["--tracker", "127.0.0.1:1", ...globals, "register", "carol", "--password-stdin"],
    { env: { SHOAL_HOME: home, ...env }, stdin: "carol-password\n" },
  );
  return stderr.includes("WARNING: TLS is off");
}

Deno.test("config precedence - insecure-plaintext from the file, env or flag turns TLS off", async () => {
  await using home = await tempDir("shoal-config-");
  assert.equal(await warnsPlaintext(home.path, [], {}), false, "TLS by default");
  assert.equal(await warnsPlaintext(home.path, ["--insecure-plaintext"], {}), true, "flag");
  assert.equal(await warnsPlaintext(home.path, [], { SHOAL_INSECURE_PLAINTEXT: "1" }), true);
  await Deno.writeTextFile(join(home.path, "config.toml"), "insecure-plaintext = true\n");
  assert.equal(await warnsPlaintext(home.path, [], {}), true, "file");
});

Deno.test({
  // lib bug (issue 6): lib/cli/plaintext.ts gives the boolean flag an .env(), and commander
  // turns a boolean flag on whenever its variable is set, whatever the value: TLS goes off.
  name: "SHOAL_INSECURE_PLAINTEXT=0 or false keeps TLS on",

  async fn() {
    await using home = await tempDir("shoal-config-");
    for (const value of ["0", "false", "no"]) {
      const env = { SHOAL_INSECURE_PLAINTEXT: value };
      assert.equal(await warnsPlaintext(home.path, [], env), false, value);
    }
  },
});

Deno.test({
  name: "config get - an unset key prints nothing for a script, and says so at a terminal",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using home = await tempDir("shoal-config-");
    await using pane = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "config", "get", "serve.advertise"),
    );
    await pane.waitFor(/serve\.advertise is not set in .*config\.toml: its default applies/);
    await pane.waitFor("[exited 0]");
  },
});

Deno.test("config - a --home that names a file says so, not 'config.toml: Not a directory'", async () => {
  await using dir = await tempDir("shoal-config-");
  const file = join(dir.path, "notes.txt");
  await Deno.writeTextFile(file, "not a home\n");
  for (const home of [file, join(file, "inside")]) {
    const result = await runPeerCli(["--home", home, "view"]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^error: cannot use ${
          RegExp.escape(home)
        } as the home: it, or a folder above it, is a file$`,
        "m",
      ),
    );
    assert.match(result.stderr, /^hint: pass --home a folder/m);
  }
});
