/**
 * The interactive shells, driven through a pseudo-terminal (a tmux pane) as a
 * person would: the peer shell from register to view, with hidden password
 * prompts, TAB completion and history across sessions; the tracker's admin
 * shell from `peers` to `quit`. The shells are real processes on the pane;
 * the trackers and peers they talk to run in this process (but the admin
 * shell's own tracker).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { PEER_TS, tempDir, TestPeer, TRACKER_TS, writeRandomFile } from "../helpers/processes.ts";
import { CliPeer, signedUpCliPeers } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { denoRun, hasCommand, TmuxPane } from "./_terminal.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";

const HAS_TMUX = hasCommand("tmux");
if (!HAS_TMUX) console.log("skipped tests/cli/shell_test.ts: tmux is not installed");

const PEER_PROMPT = /^shoal \([^)]*\)> /m;
const PASSWORD = "correct horse battery";

/**
 * Types a line at the shell's prompt, answers the questions it asks (each
 * answer typed once its question shows), waits for `expect`, then for the
 * next prompt.
 */
async function step(
  pane: TmuxPane,
  prompt: RegExp,
  line: string,
  expect: string | RegExp,
  answers: [question: string, answer: string][] = [],
): Promise<string> {
  const before = await pane.capture();
  const count = (text: string, what: string | RegExp) =>
    typeof what === "string"
      ? text.split(what).length - 1
      : text.match(new RegExp(what.source, what.flags + "g"))?.length ?? 0;
  await pane.type(line);
  for (const [question, answer] of answers) {
    await pane.waitFor(question, count(before, question) + 1);
    await pane.type(answer);
  }
  await pane.waitFor(expect, count(before, expect) + 1);
  return await pane.waitFor(prompt, count(before, prompt) + 1);
}

Deno.test({
  name: "peer shell - register, login, publish and view on a terminal; the lines go to its history",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-shell-");
    const tracker = await startLocalTracker(dir.path);
    const home = join(dir.path, "alice");
    const source = join(dir.path, "week3.pdf");
    await writeRandomFile(source, 200_000);
    try {
      await using pane = await TmuxPane.start(
        denoRun(
          PEER_TS,
          "--tracker",
          tracker.address,
          "--home",
          home,
          "shell",
          "--host",
          "127.0.0.1",
        ),
        { cwd: dir.path },
      );
      await pane.waitFor("shoal (not logged in)> ");
      await step(pane, PEER_PROMPT, "register alice", "registered alice", [
        ["Password:", PASSWORD],
        ["Password again:", PASSWORD],
      ]);
      await step(pane, PEER_PROMPT, "login alice", "logged in as alice", [["Password:", PASSWORD]]);
      await pane.waitFor(/serving your files on 127\.0\.0\.1:\d+/);
      await pane.waitFor("shoal (alice)> ");
      // Logging in again while serving serves on under the new session, without a word of a lost
      // tracker (the old session's connection was once dropped by its own revocation).
      await pane.waitFor("online as alice");
      await step(pane, PEER_PROMPT, "login alice", /logged in as alice[^]*logged in as alice/, [
        ["Password:", PASSWORD],
      ]);
      await pane.waitFor(/online as alice[^]*online as alice/);
      assert.doesNotMatch(await pane.capture(), /lost the tracker/);
      await step(pane, PEER_PROMPT, `publish notes ${source}`, 'published "notes" (195 KiB');
      // A usage error names the help to read, typed bare as everything in the shell.
      await step(pane, PEER_PROMPT, "view --bogus", "hint: `view --help` lists its options");
      await step(pane, PEER_PROMPT, "veiw", "hint: `help` lists the commands");

      // TAB completes the command name; Enter runs it.
      await pane.keys("vi", "Tab");
      await pane.waitFor("shoal (alice)> view");
      const shown = await step(
        pane,
        PEER_PROMPT,
        "",
        /│ 1 +│ notes +│ .*week3\.pdf +│ pdf +│ 195 KiB +│/,
      );
      assert.match(shown, /│ no\. +│ name +│ location +│ type +│ size +│/);
      assert.ok(!shown.includes(PASSWORD), "passwords are never echoed");

      await pane.type("quit");
      assert.equal(await pane.exitCode(), 0, await pane.capture());

      const history = (await Deno.readTextFile(join(home, "shell_history"))).split("\n");
      for (
        const line of ["register alice", "login alice", `publish notes ${source}`, "view", "quit"]
      ) {
        assert.ok(history.includes(line), `"${line}" in the history: ${history}`);
      }
      assert.ok(!history.some((line) => line.includes(PASSWORD)), "no password in the history");
    } finally {
      await tracker.stop();
    }
  },
});

Deno.test({
  name:
    "peer shell - `peer.ts` alone on a terminal opens it; history and Ctrl-D work across sessions",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-shell-");
    const tracker = await startLocalTracker(dir.path);
    const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
    try {
      await alice.signUp("alice");
      // The shell serves while logged in; the config keeps it on loopback.
      await Deno.writeTextFile(join(alice.home, "config.toml"), '[serve]\nhost = "127.0.0.1"\n');
      await Deno.writeTextFile(join(alice.home, "shell_history"), "search nothing\nview\n");

      await using pane = await TmuxPane.start(
        denoRun(PEER_TS, "--tracker", tracker.address, "--home", alice.home),
      );
      await pane.waitFor(/serving your files on 127\.0\.0\.1:\d+/);
      await pane.waitFor("shoal (alice)> ");
      // Up recalls the last sessions' lines, newest first.
      await pane.keys("Up");
      await pane.waitFor("shoal (alice)> view");
      await pane.keys("Up");
      await pane.waitFor("shoal (alice)> search nothing");
      await pane.keys("Down", "Enter");
      await pane.waitFor("no shares yet");
      await pane.waitFor("shoal (alice)> ", 2);
      await pane.keys("C-d");
      assert.equal(await pane.exitCode(), 0, await pane.capture());
      const history = await Deno.readTextFile(join(alice.home, "shell_history"));
      assert.equal(history, "search nothing\nview\nview\n");
    } finally {
      await tracker.stop();
    }
  },
});

Deno.test({
  name: "admin shell - peers, help and quit on a serving tracker's terminal",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-shell-");
    const db = join(dir.path, "tracker.db");
    await using pane = await TmuxPane.start(
      denoRun(TRACKER_TS, "serve", "--host", "127.0.0.1", "--port", "0", "--db", db),
    );
    const started = await pane.waitFor("tracker> ");
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(started)?.[1];
    assert.ok(port, started);

    const prompt = /^tracker> /m;
    // Ctrl-C at an empty prompt, as a newcomer stops a program: it says how to stop this one.
    await pane.keys("C-c");
    await pane.waitFor('"quit", "exit" or Ctrl-D stops the tracker)');
    await pane.waitFor(prompt, 2);
    await step(pane, prompt, "peers", "no peer has served yet");
    // A log line while the operator types lands above the prompt, which is drawn again with
    // what was typed so far.
    await pane.keys("-l", "pee");
    const bob = new CliPeer(join(dir.path, "bob"), `127.0.0.1:${port}`);
    await bob.signUp("bob");
    const logged = await pane.waitFor("login.ok");
    const lastLine = logged.trimEnd().split("\n").at(-1);
    assert.equal(lastLine, "tracker> pee", logged);
    await pane.keys("C-u");
    const serving = await servePeer(bob.home, bob.tracker);
    try {
      await step(pane, prompt, "peers", /│ bob +│ 127\.0\.0\.1:\d+ +│ online +│/);
      const help = await step(pane, prompt, "help", "quit, exit, Ctrl-D");
      const helpText = help.slice(help.lastIndexOf("tracker> help"));
      for (const command of ["ping", "discover", "peers", "files"]) {
        assert.match(helpText, new RegExp(`^ {2}${command}\\b`, "m"), `${command} in help`);
      }
      await step(pane, prompt, "discovr bob", /unknown command 'discovr'/);
      // Each usage error says where to read on, as the peer's shell does.
      await step(pane, prompt, "pign bob", /unknown command 'pign'[^]*hint: `help` lists the/);
      // A typo is no admin action: the log (and the dashboard's feed) has the commands only.
      const log = await pane.capture();
      assert.match(log, /INFO +admin action=peers/);
      assert.doesNotMatch(log, /admin action=(pign|discovr)/);
      await step(
        pane,
        prompt,
        "discover",
        /missing required argument 'peer'\n(.*\n)?hint: `discover --help` lists its options/,
      );
      // A one-shot command typed here says where it runs, with this tracker's database.
      await step(
        pane,
        prompt,
        "admin grant bob",
        /another terminal: .*tracker\.ts admin grant bob --db \S*tracker\.db/,
      );
    } finally {
      await serving[Symbol.asyncDispose]();
    }
    await pane.type("quit");
    await pane.waitFor("tracker stopped");
    assert.equal(await pane.exitCode(), 0, await pane.capture());
    assert.equal(
      await Deno.readTextFile(`${db}.history`),
      "peers\npeers\nhelp\ndiscovr bob\npign bob\ndiscover\nadmin grant bob\nquit\n",
    );
  },
});

/** A port that accepts connections and never answers: a probe of it runs until cancelled. */
function silentListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed: Promise<void>[] = [];
  let next = Promise.withResolvers<void>();
  (async () => {
    for await (const conn of listener) {
      // Settles when the other side closes the connection.
      closed.push(conn.readable.pipeTo(new WritableStream()).catch(() => {}));
      next.resolve();
      next = Promise.withResolvers<void>();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    /** Settles at the next connection accepted from now on. */
    nextConnection: () => next.promise,
    closedAll: () => Promise.all(closed),
    close: () => listener.close(),
  };
}

Deno.test({
  name: "admin shell - Ctrl-C cancels a running ping, which prints nothing later; " +
    "lines typed while a command runs run after it, in order",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-shell-");
    const db = join(dir.path, "tracker.db");
    const silent = silentListener();
    try {
      {
        using store = SqliteTrackerStore.open(db);
        await store.createUser("quiet", "not a real hash");
        await store.setPeerOnline("quiet", "127.0.0.1", silent.port, null);
      }
      await using pane = await TmuxPane.start(
        denoRun(TRACKER_TS, "serve", "--host", "127.0.0.1", "--port", "0", "--db", db),
      );
      await pane.waitFor("tracker> ");
      let connected = silent.nextConnection();
      await pane.type("ping quiet");
      await deadline(connected, 30_000, { what: "the probe's connection" });
      await pane.keys("C-c");
      await pane.waitFor("cancelled");
      await pane.waitFor("tracker> ", 2);
      // The cancelled probe let go of its connection: it has nothing left to print.
      await deadline(silent.closedAll(), 30_000, {
        what: "the cancelled probe closing its connection",
      });
      await step(pane, /^tracker> /m, "files", "nothing is published yet");
      let shown = await pane.capture();
      assert.ok(!shown.includes("app ping:"), `the cancelled ping printed later:\n${shown}`);
      assert.ok(shown.includes("tracker> files"), "the tracker still runs after Ctrl-C");

      // Typed while ping waits for its silent peer: both run once it is done, in order.
      connected = silent.nextConnection();
      await pane.type("ping quiet");
      await deadline(connected, 30_000, { what: "the second probe's connection" });
      await pane.type("peers");
      await pane.type("files");
      shown = await pane.waitFor("nothing is published yet", 2);
      const report = shown.lastIndexOf("app ping: no answer");
      const peers = shown.lastIndexOf("│ quiet ");
      const files = shown.lastIndexOf("nothing is published yet");
      assert.ok(report > 0 && report < peers && peers < files, shown);

      await pane.keys("C-d");
      await pane.waitFor("tracker stopped");
      assert.equal(await pane.exitCode(), 0, await pane.capture());
    } finally {
      silent.close();
    }
  },
});

Deno.test({
  name:
    "peer shell - pause stops a background folder fetch and says so in one line, with what it kept",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-shell-");
    await using tracker = await startLocalTracker(dir.path);
    const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
    const tree = join(dir.path, "data");
    await Deno.mkdir(tree);
    await writeRandomFile(join(tree, "big.bin"), 3_000_000);
    await alice.ok(["publish", tree]);
    const serving = await new TestPeer(alice.home, tracker.address)
      .serve([], { SHOAL_TEST_PIECE_DELAY_MS: "300" });
    try {
      await using pane = await TmuxPane.start(
        denoRun(PEER_TS, "--tracker", tracker.address, "--home", bob.home, "shell"),
        { cwd: dir.path },
      );
      await pane.waitFor("shoal (bob)> ");
      await step(
        pane,
        PEER_PROMPT,
        "fetch data --from alice --output out",
        'fetching the folder "data" in the background',
      );
      const part = join(dir.path, "out.shoal-part", "big.bin.shoal-part");
      await pane.waitFor(PEER_PROMPT, 2);
      for (
        let i = 0;
        i < 300 && !(await Deno.stat(part).then((f) => f.size > 0, () => false));
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const shown = await step(
        pane,
        PEER_PROMPT,
        "pause data",
        /paused "data": 0 of 1 file done, .* verified, kept in \S*out\.shoal-part; run `fetch data --from alice --output out` to resume/,
      );
      // One line: no notice of the same pause after it.
      await step(pane, PEER_PROMPT, "downloads", /data/);
      const text = await pane.capture();
      assert.doesNotMatch(text, /\[paused\]/, shown);
      assert.equal(text.split('paused "data"').length - 1, 1, text);
      await pane.type("quit");
      assert.equal(await pane.exitCode(), 0, await pane.capture());
    } finally {
      await serving.stop();
    }
  },
});
