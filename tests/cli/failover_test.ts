/**
 * A tracker at several addresses from the command line: `--tracker A,B`,
 * SHOAL_TRACKER and `config set tracker A,B` take the list, a bad entry is
 * named, a one-shot command moves on to B when A is down, and with every
 * address down one error says what to check. Two in-process trackers on one
 * store and one identity stand for two processes of one tracker.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer, runPeerCli } from "../helpers/cli.ts";
import { tempDir } from "../helpers/processes.ts";
import { startTrackerPair } from "../helpers/tracker_pair.ts";
import { runPeer } from "./_terminal.ts";

Deno.test("failover CLI - config set tracker takes a list; a bad entry is named and nothing is written", async () => {
  await using dir = await tempDir();
  const home = ["--home", dir.path];
  const set = await runPeerCli([...home, "config", "set", "tracker", "10.0.0.1:5050,10.0.0.2"]);
  assert.equal(set.code, 0, set.stderr);
  const got = await runPeerCli([...home, "config", "get", "tracker"]);
  assert.equal(got.stdout.trim(), "10.0.0.1:5050,10.0.0.2");

  const bad = await runPeerCli([...home, "config", "set", "tracker", "10.0.0.1:5050,,10.0.0.2"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: invalid tracker .*empty tracker address \(address 2 of 3/m);
  const still = await runPeerCli([...home, "config", "get", "tracker"]);
  assert.equal(still.stdout.trim(), "10.0.0.1:5050,10.0.0.2");

  // The file's list is the one a command uses.
  await runPeerCli([...home, "config", "set", "tracker", "127.0.0.1:1,127.0.0.1:2"]);
  const login = await runPeerCli([...home, "login", "carol", "--password-stdin"], {
    stdin: "carol-password\n",
  });
  assert.equal(login.code, 1, login.stderr);
  assert.match(
    login.stderr,
    /^error: cannot reach the tracker at any of its 2 addresses: 127\.0\.0\.1:1 \(connection refused\); 127\.0\.0\.1:2 \(connection refused\)$/m,
  );
});

Deno.test("failover CLI - one address where nobody listens: 'connection refused', the address said once", async () => {
  await using dir = await tempDir();
  const home = ["--home", dir.path, "--tracker", "127.0.0.1:1"];
  // A first contact (nothing pinned) connects through node:tls to read the certificate first.
  const first = await runPeerCli([...home, "login", "carol", "--password-stdin"], {
    stdin: "carol-password\n",
  });
  assert.match(first.stderr, /^error: cannot reach 127\.0\.0\.1:1: connection refused$/m);
});

Deno.test("failover CLI - a bad --tracker list is a usage error naming the entry", async () => {
  await using dir = await tempDir();
  const result = await runPeerCli([
    "--home",
    dir.path,
    "--tracker",
    "127.0.0.1:1,127.0.0.1:port",
    "search",
    "x",
  ]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--tracker: "127\.0\.0\.1:port" \(address 2 of 2 in /);
});

Deno.test("failover CLI - SHOAL_TRACKER takes the list: every address is tried, and the error names them all", async () => {
  await using dir = await tempDir();
  const login = await runPeer(["login", "carol", "--password-stdin"], {
    env: { SHOAL_HOME: dir.path, SHOAL_TRACKER: "127.0.0.1:1,127.0.0.1:2" },
    stdin: "carol-password\n",
  });
  assert.equal(login.code, 1, login.stderr);
  assert.match(
    login.stderr,
    /^error: cannot reach the tracker at any of its 2 addresses: 127\.0\.0\.1:1 \(.*\); 127\.0\.0\.1:2 \(/m,
  );
  assert.match(login.stderr, /^hint: .*--tracker 127\.0\.0\.1:1,127\.0\.0\.1:2/m);

  // A bad list is named after where it came from: the user typed no --tracker.
  const bad = await runPeer(["search", "x"], {
    env: { SHOAL_HOME: dir.path, SHOAL_TRACKER: "127.0.0.1:1,,127.0.0.1:2" },
  });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^error: SHOAL_TRACKER: empty tracker address \(address 2 of 3 in /m);
});

Deno.test("failover CLI - a one-shot command with --tracker A,B goes on at B when A is down, without a new login", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), pair.both);
  await alice.signUp("alice");
  const notes = join(dir.path, "notes.txt");
  await Deno.writeTextFile(notes, "lecture notes\n");
  await alice.ok(["publish", notes]);

  await pair.a.stop();
  const found = JSON.parse(await alice.ok(["search", "notes", "--json"]));
  assert.deepEqual(found.map((f: { name: string }) => f.name), ["notes.txt"]);
  const sessions = JSON.parse(await alice.ok(["sessions", "--json"]));
  assert.equal(sessions.length, 1, "still the one session of the login");

  // B was pinned as A's certificate on the way; forget-tracker takes the list to unpin both.
  const forgot = await alice.ok(["forget-tracker", pair.both]);
  assert.match(
    forgot,
    new RegExp(`forgot the certificate pinned for ${pair.a.address}, ${pair.b.address};`),
  );

  await pair.b.stop();
  const down = await alice.run(["search", "notes"]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error: cannot reach the tracker at any of its 2 addresses: /m);
  assert.equal(down.stderr.trim().split("\n").length, 2, down.stderr);
});
