/**
 * A serving peer going away, three ways. The serve is a real `peer.ts serve`
 * child (SIGKILL, its own exit on logout, SIGINT); the tracker, the admin
 * listing and the peers' other commands run in this process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { CliPeer, runTrackerCli } from "../helpers/cli.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, TestPeer } from "../helpers/processes.ts";

interface PeerRow {
  username: string;
  online: boolean;
}

/** The tracker's peers list, from `tracker.ts peers --db DB --json`. */
async function listPeers(db: string): Promise<PeerRow[]> {
  const result = await runTrackerCli(["peers", "--db", db, "--json"]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/**
 * Polls the peers list until `done` holds, for up to `timeoutMs`; returns
 * the last list seen. Only the eventual state is asserted, never the time.
 */
async function pollPeers(
  db: string,
  done: (peers: PeerRow[]) => boolean,
  timeoutMs = 10_000,
): Promise<PeerRow[]> {
  const giveUpAt = Date.now() + timeoutMs;
  while (true) {
    const peers = await listPeers(db);
    if (done(peers) || Date.now() > giveUpAt) return peers;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const onlineOf = (peers: PeerRow[], username: string) =>
  peers.find((peer) => peer.username === username)?.online;

/** A peer `name` with a home in `dir`: its commands in this process, its serve a real child. */
class Peer extends CliPeer {
  /** Starts `peer.ts serve` in a child and waits until it is online. */
  serve() {
    return new TestPeer(this.home, this.tracker).serve();
  }
}

/** A tracker on a fresh database in `dir`, and alice and bob signed up with it. */
async function setUp(dir: string) {
  const tracker = await startLocalTracker(dir);
  try {
    const alice = new Peer(join(dir, "alice"), tracker.address);
    const bob = new Peer(join(dir, "bob"), tracker.address);
    await alice.signUp("alice");
    await bob.signUp("bob");
    return {
      tracker,
      db: join(dir, "tracker.db"),
      alice,
      bob,
      [Symbol.asyncDispose]: () => tracker.stop(),
    };
  } catch (error) {
    await tracker.stop();
    throw error;
  }
}

Deno.test("liveness - a serving peer killed with SIGKILL goes offline", async () => {
  await using dir = await tempDir();
  await using network = await setUp(dir.path);
  const { db, alice, bob } = network;
  const notes = join(dir.path, "notes.txt");
  await Deno.writeTextFile(notes, "lecture notes\n");
  await alice.ok(["publish", notes]);
  const serving = await alice.serve();
  try {
    assert.equal(onlineOf(await listPeers(db), "alice"), true);
  } finally {
    await serving.stop("SIGKILL");
  }
  // No goodbye was sent: the tracker learns it from the closed connection.
  const peers = await pollPeers(db, (peers) => onlineOf(peers, "alice") === false);
  assert.equal(onlineOf(peers, "alice"), false, JSON.stringify(peers));
  const found = JSON.parse(await bob.ok(["search", "notes", "--json"]));
  assert.deepEqual(
    found.map((f: { owner: string; online: boolean; address: string | null }) => [
      f.owner,
      f.online,
      f.address,
    ]),
    [["alice", false, null]],
  );
});

Deno.test("liveness - logout from another process takes a serving peer offline and ends its serve", async () => {
  await using dir = await tempDir();
  await using network = await setUp(dir.path);
  const { db, alice } = network;
  const serving = await alice.serve();
  try {
    assert.match(await alice.ok(["logout"]), /logged out alice/);
    const peers = await pollPeers(db, (peers) => onlineOf(peers, "alice") === false);
    assert.equal(onlineOf(peers, "alice"), false, JSON.stringify(peers));
    // The serve process notices at its next heartbeat at the latest (every 10 s).
    const status = await deadline(serving.status, 30_000, { what: "serve exiting after logout" });
    assert.equal(status.code, 1);
    assert.match(await serving.stderr(), /^error: not logged in/m);
  } finally {
    await serving.stop();
  }
});

Deno.test("liveness - serve stopped with Ctrl-C (SIGINT) says the files are offline, and they are", async () => {
  await using dir = await tempDir();
  await using network = await setUp(dir.path);
  const { db, alice } = network;
  const serving = await alice.serve();
  const status = await serving.stop("SIGINT");
  assert.equal(status.code, 0);
  assert.ok(
    serving.lines.includes("stopped serving; your files are offline until you serve again"),
    serving.lines.join("\n"),
  );
  const peers = await pollPeers(db, (peers) => onlineOf(peers, "alice") === false);
  assert.equal(onlineOf(peers, "alice"), false, JSON.stringify(peers));
});
