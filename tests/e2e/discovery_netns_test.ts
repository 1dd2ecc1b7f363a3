/**
 * Zero-config discovery across hosts: a tracker announces itself by DNS-SD
 * over multicast DNS in one network namespace, and a peer in another, with
 * no tracker configured, finds it, pins it and signs up. Multicast stays on
 * the test's own bridge: every namespace is made here, with a multicast route
 * to its own eth0, and removed afterwards.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CHILD_ENV,
  denoCommand,
  PEER_TS,
  runCommand,
  startTracker,
  tempDir,
  TRACKER_TS,
} from "../helpers/processes.ts";
import { ip, netnsSkipReason, TestLan } from "../helpers/netns.ts";
import { denoRun, hasCommand, TmuxPane } from "../cli/_terminal.ts";

const unavailable = await netnsSkipReason("tests/e2e/discovery_netns_test.ts");

const HAS_TMUX = hasCommand("tmux");
if (unavailable === null && !HAS_TMUX) {
  console.log(
    "skipped the terminal test of tests/e2e/discovery_netns_test.ts: tmux is not installed",
  );
}

/** Runs `peer.ts ARGS` in `netns` with no tracker configured and discovery on. */
function peerIn(netns: string, home: string, args: string[], stdin = "") {
  const [command, full] = denoCommand(["run", "--allow-all", PEER_TS, "--home", home, ...args], {
    netns,
  });
  // An empty SHOAL_NO_DISCOVERY counts as unset: the peer looks on this LAN.
  return runCommand(command, full, { stdin, env: { ...CHILD_ENV, SHOAL_NO_DISCOVERY: "" } });
}

interface TrackerJson {
  name: string;
  address: string;
  tls: boolean;
  fingerprint?: string;
  usedHere: boolean;
}

/** A LAN of namespaces named `names`, each with a multicast route to its own eth0. */
async function multicastLan(names: string[]) {
  const lan = await TestLan.create(names);
  try {
    for (const host of Object.values(lan.hosts)) {
      await ip("-n", host.netns, "route", "add", "224.0.0.0/4", "dev", "eth0");
    }
  } catch (error) {
    await lan[Symbol.asyncDispose]();
    throw error;
  }
  return lan;
}

/**
 * A tracker in each of `hosts` (its namespace, its database `db`.db in
 * `dir`, announced as `name`), started one after the other, each once the
 * one before has said it is announced; the caller stops them (all of them
 * are stopped here if one fails to start).
 */
async function trackersAnnounced(
  dir: string,
  hosts: readonly (readonly [{ netns: string }, string, string])[],
) {
  const trackers = [];
  try {
    for (const [host, db, name] of hosts) {
      const tracker = await startTracker({
        db: join(dir, `${db}.db`),
        host: "0.0.0.0",
        netns: host.netns,
        announce: true,
        extra: ["--name", name],
      });
      trackers.push(tracker);
      await tracker.daemon.waitFor(/^announced on the local network/);
    }
  } catch (error) {
    for (const tracker of trackers) await tracker.daemon.stop();
    throw error;
  }
  return trackers;
}

Deno.test({
  name: "discovery - a peer with no tracker configured finds the one announced on its LAN",
  ignore: unavailable !== null,
  async fn() {
    await using lan = await multicastLan(["t", "p"]);
    const { t, p } = lan.hosts;
    await using dir = await tempDir("shoal-discovery-");
    const tracker = await startTracker({
      db: join(dir.path, "tracker.db"),
      host: "0.0.0.0",
      netns: t.netns,
      announce: true,
      extra: ["--name", "lab-1"],
    });
    try {
      await tracker.daemon.waitFor(/^announced on the local network as "lab-1"/);
      const fingerprint = (await tracker.daemon.waitFor(/fingerprint: (SHA256:\S+)/))[1];
      const home = join(dir.path, "alice");

      const listed = await peerIn(p.netns, home, ["trackers", "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      const trackers: TrackerJson[] = JSON.parse(listed.stdout);
      assert.deepEqual(
        trackers.map((x) => [x.name, x.address, x.tls, x.fingerprint, x.usedHere]),
        [["lab-1", `${t.ip}:${tracker.port}`, true, fingerprint, false]],
      );

      const table = await peerIn(p.netns, home, ["trackers"]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /lab-1/);
      assert.ok(table.stdout.includes(`${t.ip}:${tracker.port}`), table.stdout);

      const stdin = "alice-password\n";
      const registered = await peerIn(
        p.netns,
        home,
        ["register", "alice", "--password-stdin"],
        stdin,
      );
      assert.equal(registered.code, 0, registered.stderr);
      assert.ok(
        registered.stderr.includes(
          `found tracker lab-1 at ${t.ip}:${tracker.port}, fingerprint ${fingerprint}`,
        ),
        registered.stderr,
      );
      assert.match(
        registered.stderr,
        /first contact with the tracker at .*It is pinned from now on/,
      );

      // Now pinned here: found again (without waiting for others) and used as it is.
      const loggedIn = await peerIn(p.netns, home, ["login", "alice", "--password-stdin"], stdin);
      assert.equal(loggedIn.code, 0, loggedIn.stderr);
      assert.match(loggedIn.stdout, /logged in as alice/);
      assert.doesNotMatch(loggedIn.stderr, /first contact/);

      const again = await peerIn(p.netns, home, ["trackers", "--json"]);
      assert.equal(JSON.parse(again.stdout)[0].usedHere, true, again.stdout);

      // The shell looks once, at start, and checks and pins what it found before any line.
      const carol = join(dir.path, "carol");
      const shell = await peerIn(p.netns, carol, ["shell"], "quit\n");
      assert.equal(shell.code, 0, shell.stderr);
      assert.match(shell.stderr, /found tracker lab-1 at /);
      assert.match(shell.stderr, /first contact with the tracker at /);
      const pinned = await peerIn(p.netns, carol, ["trackers", "--json"]);
      assert.equal(JSON.parse(pinned.stdout)[0].usedHere, true, pinned.stdout);

      // An explicit --tracker wins: no search, the address given is the one tried.
      const explicit = await peerIn(p.netns, home, ["--tracker", `${t.ip}:1`, "search", "x"]);
      assert.equal(explicit.code, 1);
      assert.doesNotMatch(explicit.stderr, /found tracker/);
      assert.ok(explicit.stderr.includes(`${t.ip}:1`), explicit.stderr);
    } finally {
      await tracker.daemon.stop();
    }
  },
});

Deno.test({
  name: "discovery - with none announced, a peer tries the default and says none was found",
  ignore: unavailable !== null,
  async fn() {
    await using lan = await multicastLan(["p"]);
    const { p } = lan.hosts;
    await using dir = await tempDir("shoal-discovery-");
    const home = join(dir.path, "bob");
    const listed = await peerIn(p.netns, home, ["trackers"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /no tracker announced itself on the local network/);
    assert.match(
      listed.stdout,
      /loopback only, or started with --no-announce, .*--tracker HOST:PORT/,
    );

    const result = await peerIn(
      p.netns,
      home,
      ["register", "bob", "--password-stdin"],
      "bob-pw-123\n",
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: cannot reach 127\.0\.0\.1:5050/m);
    assert.match(result.stderr, /hint: no tracker is configured, and none announced itself/);
    assert.match(result.stderr, /--tracker HOST:PORT/);
  },
});

Deno.test({
  name:
    "discovery - with two trackers announced, a terminal is asked which; without one, both are named",
  ignore: unavailable !== null || !HAS_TMUX,
  async fn() {
    await using lan = await multicastLan(["t1", "t2", "p"]);
    const { t1, t2, p } = lan.hosts;
    await using dir = await tempDir("shoal-discovery-");
    const trackers = await trackersAnnounced(dir.path, [[t1, "lab-1", "lab-1"], [
      t2,
      "lab-2",
      "lab-2",
    ]]);
    try {
      const [one, two] = trackers;
      const home = join(dir.path, "dave");
      const listed = await peerIn(p.netns, home, ["trackers", "--json"]);
      assert.deepEqual(
        JSON.parse(listed.stdout).map((x: TrackerJson) => [x.name, x.address]),
        [["lab-1", `${t1.ip}:${one.port}`], ["lab-2", `${t2.ip}:${two.port}`]],
      );

      const piped = await peerIn(p.netns, home, ["register", "dave", "--password-stdin"], "x\n");
      assert.equal(piped.code, 1);
      assert.match(piped.stderr, /^error: 2 trackers found on the local network: lab-1 at /m);
      assert.ok(piped.stderr.includes(`lab-2 at ${t2.ip}:${two.port}`), piped.stderr);
      assert.match(piped.stderr, /^hint: choose one with --tracker/m);

      // On a terminal: the list, a question, and the one chosen is used and pinned.
      const [deno, ...args] = denoRun(PEER_TS, "--home", home, "register", "dave");
      await using pane = await TmuxPane.start(["ip", "netns", "exec", p.netns, deno, ...args], {
        env: { SHOAL_NO_DISCOVERY: "" },
      });
      await pane.waitFor("Use tracker no. [1-2]");
      await pane.type("2");
      await pane.waitFor(`found tracker lab-2 at ${t2.ip}:${two.port}`);
      await pane.waitFor("Password:");
      await pane.type("dave-password");
      await pane.waitFor("Password again:");
      await pane.type("dave-password");
      assert.equal(await pane.exitCode(), 0, await pane.capture());
      assert.match(await pane.capture(), /registered dave/);
      const after = await peerIn(p.netns, home, ["trackers", "--json"]);
      assert.deepEqual(
        JSON.parse(after.stdout).map((x: TrackerJson) => [x.name, x.usedHere]),
        [["lab-1", false], ["lab-2", true]],
      );
      // Used before, it is taken from then on without asking, even with both announced.
      const again = await peerIn(
        p.netns,
        home,
        ["login", "dave", "--password-stdin"],
        "dave-password\n",
      );
      assert.equal(again.code, 0, again.stderr);
      assert.ok(again.stderr.includes(`found tracker lab-2 at ${t2.ip}:${two.port}`), again.stderr);
    } finally {
      for (const tracker of trackers) await tracker.daemon.stop();
    }
  },
});

Deno.test({
  name:
    "discovery - a second tracker given a name another tracker announces takes NAME-2 and says so, and peers see both",
  ignore: unavailable !== null,
  async fn() {
    await using lan = await multicastLan(["t1", "t2", "p"]);
    const { t1, t2, p } = lan.hosts;
    await using dir = await tempDir("shoal-discovery-");
    const trackers = await trackersAnnounced(dir.path, [[t1, "first", "lab"], [
      t2,
      "second",
      "lab",
    ]]);
    try {
      const [first, second] = trackers;
      await first.daemon.waitFor(/^announced on the local network as "lab"/);
      await second.daemon.waitFor(/^announced on the local network as "lab-2"/);
      const listed = await peerIn(p.netns, join(dir.path, "dave"), ["trackers", "--json"]);
      assert.deepEqual(
        JSON.parse(listed.stdout).map((x: TrackerJson) => [x.name, x.address]),
        [["lab", `${t1.ip}:${first.port}`], ["lab-2", `${t2.ip}:${second.port}`]],
      );
      // The second says why on stderr (its log), once it is stopped and its stderr read whole.
      await second.daemon.stop();
      assert.match(
        await second.daemon.stderrSoFar(),
        /another tracker announces "lab" on the local network; announcing this one as "lab-2" \(give each tracker its own name: serve --name NAME\)/,
      );
    } finally {
      for (const tracker of trackers) await tracker.daemon.stop();
    }
  },
});

Deno.test({
  name:
    "discovery - with the admin shell open, the line saying the tracker is announced (a second after start) comes above the prompt, not typed over it",
  ignore: unavailable !== null || !HAS_TMUX,
  async fn() {
    await using lan = await multicastLan(["t"]);
    const { t } = lan.hosts;
    await using dir = await tempDir("shoal-discovery-");
    const [deno, ...args] = denoRun(
      TRACKER_TS,
      "serve",
      "--host",
      "0.0.0.0",
      "--port",
      "0",
      "--http-port",
      "off",
      "--name",
      "lab",
      "--db",
      join(dir.path, "tracker.db"),
    );
    await using pane = await TmuxPane.start(["ip", "netns", "exec", t.netns, deno, ...args]);
    const screen = await pane.waitFor(/announced on the local network as "lab"/);
    assert.match(screen, /^announced on the local network as "lab"/m, screen);
    // The prompt is drawn again below it, and still takes commands.
    await pane.waitFor(/^announced on the local network as "lab".*\ntracker> /m);
    await pane.type("quit");
    assert.equal(await pane.exitCode(), 0, await pane.capture());
  },
});
