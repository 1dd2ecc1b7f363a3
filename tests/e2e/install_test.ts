/**
 * `deno task install` puts `shoal` and `shoal-tracker` in ROOT/bin with the
 * tasks' permissions, and they work as the user types them: help, messages
 * and completions say `shoal`, a tracker and two peers sign up, publish,
 * serve and fetch through them (loopback, own homes). `deno task uninstall`
 * removes them. Files under /dev/shm need --allow-all in Deno: refused with a
 * clear error by the narrow install, they work with `install --allow-all`.
 */
import assert from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  Daemon,
  runCommand,
  type RunResult,
  sha256File,
  tempDir,
  writeRandomFile,
} from "../helpers/processes.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/**
 * `deno task NAME ARGS` of this repository, run from `cwd` (which deno task
 * passes on as INIT_CWD, unless the test runner's own deno task set it).
 */
function task(name: string, args: string[], cwd: string): Promise<RunResult> {
  return runCommand(
    Deno.execPath(),
    ["task", "--config", join(REPO, "deno.json"), name, ...args],
    { cwd, env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", INIT_CWD: cwd } },
  );
}

/** PATH with the installed commands first, and the deno their scripts start. */
function pathWith(bin: string): string {
  return [bin, dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter);
}

/** Runs an installed command by its bare name, as a user would. */
function installed(bin: string, command: string, args: string[], stdin = "", cwd?: string) {
  return runCommand("sh", ["-c", 'exec "$0" "$@"', command, ...args], {
    stdin,
    cwd,
    env: { NO_COLOR: "1", INIT_CWD: "", DENO_NO_UPDATE_CHECK: "1", PATH: pathWith(bin) },
  });
}

/** A peer through the installed `shoal`, with its home and the tracker. */
function shoal(bin: string, home: string, tracker: string) {
  const run = (args: string[], stdin = "", cwd?: string) =>
    installed(bin, "shoal", ["--home", home, "--tracker", tracker, ...args], stdin, cwd);
  return {
    run,
    async ok(args: string[], stdin = "", cwd?: string): Promise<RunResult> {
      const result = await run(args, stdin, cwd);
      assert.equal(result.code, 0, `shoal ${args.join(" ")}:\n${result.stderr}${result.stdout}`);
      return result;
    },
  };
}

Deno.test("install - shoal and shoal-tracker run as typed, share a file, and uninstall", async () => {
  await using dir = await tempDir("shoal-install-");
  const root = join(dir.path, "root");
  const bin = join(root, "bin");
  // A relative --root means the folder the task is typed in, as for deno install.
  const setup = await task("install", ["--root", "root"], dir.path);
  assert.equal(setup.code, 0, setup.stderr + setup.stdout);
  assert.match(setup.stdout, /installed shoal in .*\(the flags of deno task peer\)/);
  assert.match(setup.stdout, /installed shoal-tracker in .*\(the flags of deno task tracker\)/);
  for (const name of ["shoal", "shoal-tracker"]) {
    assert.ok((await Deno.stat(join(bin, name))).isFile, name);
  }
  const peerScript = await Deno.readTextFile(join(bin, "shoal"));
  assert.match(peerScript, /--allow-sys=networkInterfaces/);
  assert.doesNotMatch(peerScript, /--allow-all|(\s)-A\s/, "the task's narrow flags, not -A");

  const help = await installed(bin, "shoal", ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: shoal \[options\] \[command\]/);
  assert.match(help.stdout, /\$ shoal config set tracker 192\.168\.1\.10:5050/);
  assert.match((await installed(bin, "shoal", ["--version"])).stdout, /^shoal \d+\.\d+\.\d+ /);
  const trackerHelp = await installed(bin, "shoal-tracker", ["--help"]);
  assert.equal(trackerHelp.code, 0, trackerHelp.stderr);
  assert.match(trackerHelp.stdout, /^Usage: shoal-tracker \[options\] \[command\]/);
  assert.match(trackerHelp.stdout, /\$ shoal-tracker ping alice/);

  const completion = await installed(bin, "shoal", ["completions", "bash"]);
  assert.match(
    completion.stdout,
    /^# shoal completion for bash\. Install: mkdir -p \S+ && shoal completions bash/,
  );
  assert.match(completion.stdout, /complete -o default -F _shoal shoal\n/);
  const trackerCompletion = await installed(bin, "shoal-tracker", ["completions", "fish"]);
  assert.match(trackerCompletion.stdout, /complete -c shoal-tracker /);

  const tracker = new Daemon("sh", [
    "-c",
    'exec "$0" "$@"',
    "shoal-tracker",
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--db",
    join(dir.path, "tracker.db"),
  ], { PATH: pathWith(bin) });
  let serving: Daemon | undefined;
  try {
    const [, host, port] = await tracker.waitOrStop(/listening on (\S+):(\d+)/);
    const address = `${host}:${port}`;
    const alice = shoal(bin, join(dir.path, "alice"), address);
    const bob = shoal(bin, join(dir.path, "bob"), address);

    const registered = await alice.ok(
      ["register", "alice", "--password-stdin"],
      "alice-password\n",
    );
    assert.ok(
      registered.stdout.includes(
        `now run: shoal --home ${join(dir.path, "alice")} --tracker ${address} login alice`,
      ),
      registered.stdout,
    );
    await alice.ok(["login", "alice", "--password-stdin"], "alice-password\n");
    const original = join(dir.path, "notes.bin");
    await writeRandomFile(original, 700_000, "installed");
    // A relative path means the folder the command is typed in.
    await alice.ok(["publish", "notes", "notes.bin"], "", dir.path);

    const notLoggedIn = await bob.run(["search", "notes"]);
    assert.equal(notLoggedIn.code, 1);
    assert.ok(
      notLoggedIn.stderr.includes(
        `hint: run \`shoal --home ${join(dir.path, "bob")} --tracker ${address} login <username>\``,
      ),
      notLoggedIn.stderr,
    );

    const serve = async () => {
      const daemon = new Daemon("sh", [
        "-c",
        'exec "$0" "$@"',
        "shoal",
        "--home",
        join(dir.path, "alice"),
        "--tracker",
        address,
        "serve",
        "--host",
        "127.0.0.1",
      ], { PATH: pathWith(bin) });
      await daemon.waitOrStop(/^online as alice/);
      return daemon;
    };
    serving = await serve();

    await bob.ok(["register", "bob", "--password-stdin"], "bob-password\n");
    await bob.ok(["login", "bob", "--password-stdin"], "bob-password\n");
    const downloads = join(dir.path, "downloads");
    await Deno.mkdir(downloads);
    const fetched = await bob.ok(["fetch", "notes", "--output", downloads, "--json"]);
    assert.equal(await sha256File(JSON.parse(fetched.stdout).path), await sha256File(original));

    // Deno opens nothing under /dev without --allow-all: the narrow install says so clearly.
    const shm = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "shoal-install-" }).catch(
      () => null,
    );
    if (shm === null) {
      console.log("skipped the /dev/shm part of install_test.ts: /dev/shm is not writable here");
    } else {
      try {
        const inShm = join(shm, "ram.bin");
        await writeRandomFile(inShm, 300_000, "shm");
        const refused = await alice.run(["publish", "ram", inShm]);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /^error: cannot use \/dev\/shm\/.*--allow-all/m);
        assert.match(refused.stderr, /^hint: .*deno task install --allow-all/m);
        // So does a fetch into it: once "the folder /dev/shm/... does not exist", which it does.
        const into = await bob.run(["fetch", "notes", "--output", join(shm, "notes.txt")]);
        assert.equal(into.code, 1);
        assert.match(into.stderr, /^error: cannot use \/dev\/shm\/.*--allow-all/m);
        assert.doesNotMatch(into.stderr, /does not exist/);

        const all = await task("install", ["--root", root, "--allow-all"], dir.path);
        assert.equal(all.code, 0, all.stderr + all.stdout);
        assert.match(await Deno.readTextFile(join(bin, "shoal")), /--allow-all/);
        // Serving runs with the flags it started with: again, with the new ones.
        await serving.stop();
        serving = await serve();
        await alice.ok(["publish", "ram", inShm]);
        const shmOut = join(shm, "fetched");
        await Deno.mkdir(shmOut);
        const got = await bob.ok(["fetch", "ram", "--output", shmOut, "--json"]);
        const path: string = JSON.parse(got.stdout).path;
        assert.ok(path.startsWith(shmOut), path);
        assert.equal(await sha256File(path), await sha256File(inShm));
      } finally {
        await Deno.remove(shm, { recursive: true });
      }
    }
  } finally {
    await serving?.stop();
    await tracker.stop();
  }

  const removed = await task("uninstall", ["--root", root], dir.path);
  assert.equal(removed.code, 0, removed.stderr + removed.stdout);
  assert.match(removed.stdout, /removed shoal from/);
  assert.match(removed.stdout, /removed shoal-tracker from/);
  for (const name of ["shoal", "shoal-tracker"]) {
    assert.equal(await Deno.stat(join(bin, name)).then(() => true, () => false), false, name);
  }
  const again = await task("uninstall", ["--root", root], dir.path);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /shoal is not installed in /);
});
