/**
 * One tracker on two processes: two real `tracker.ts serve` children on one
 * throwaway PostgreSQL, sharing one identity, and real peers on each. A peer
 * signed up through one process and serving through the other is found and
 * fetched from by a peer on the first; when a tracker process is killed
 * (SIGKILL) the other takes its peers offline within the liveness window, and
 * a peer that reconnects through the survivor is fetchable again. Skipped
 * with a message where PostgreSQL is not installed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initTrackerIdentity } from "../helpers/failover.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import {
  CHILD_ENV,
  runCommand,
  type RunningTracker,
  runTrackerCommand,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  TRACKER_TS,
  writeRandomFile,
} from "../helpers/processes.ts";

interface PeerRow {
  username: string;
  online: boolean;
}

/** The peers as any process sees them: `tracker.ts peers --db URL --json`. */
async function listPeers(url: string): Promise<PeerRow[]> {
  const result = await runTrackerCommand(["peers", "--db", url, "--json"]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** Polls the peers list until `done` holds (at most `tries` times); returns the last list. */
async function pollPeers(
  url: string,
  done: (peers: PeerRow[]) => boolean,
  tries = 60,
): Promise<PeerRow[]> {
  let peers: PeerRow[] = [];
  for (let tried = 0; tried < tries; tried++) {
    peers = await listPeers(url);
    if (done(peers)) return peers;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return peers;
}

const onlineOf = (peers: PeerRow[], username: string) =>
  peers.find((peer) => peer.username === username)?.online;

Deno.test("two tracker processes on one PostgreSQL are one tracker, and the survivor takes a killed one's peers offline", async () => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;
  await using dir = await tempDir();
  const url = await pg.newDatabase();
  const identity = await initTrackerIdentity(dir.path);
  const fingerprint = /fingerprint: (\S+)/.exec(identity.stdout)![1];
  // An admin command finds no tracker there yet, through SHOAL_TRACKER_DB and the PG* variables.
  const { port, pathname } = new URL(url);
  const empty = await runCommand(Deno.execPath(), ["run", "-A", TRACKER_TS, "peers"], {
    env: {
      ...CHILD_ENV,
      SHOAL_TRACKER_DB: "postgres://",
      PGHOST: "127.0.0.1",
      PGPORT: port,
      PGUSER: "postgres",
      PGDATABASE: pathname.slice(1),
    },
  });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /no tracker database at PostgreSQL at 127\.0\.0\.1:\d+\/shoal_test_1/);

  // A short liveness window: a process silent 2 s is dead.
  const extra = ["--identity", identity.path, "--dead-after", "2"];
  const trackers: RunningTracker[] = [];
  try {
    const a = await startTracker({ db: url, extra });
    trackers.push(a);
    const b = await startTracker({ db: url, extra });
    trackers.push(b);
    // One identity: both print the fingerprint identity init printed.
    for (const tracker of [a, b]) await tracker.daemon.waitFor(new RegExp(fingerprint));

    // alice registers through A, logs in and serves through B; bob is on A.
    const aliceOnA = new TestPeer(join(dir.path, "alice"), a.address);
    const stdin = "alice-password\n";
    await aliceOnA.ok(["register", "alice", "--password-stdin"], { stdin });
    const alice = new TestPeer(join(dir.path, "alice"), b.address);
    await alice.ok(["login", "alice", "--password-stdin"], { stdin });
    const bob = new TestPeer(join(dir.path, "bob"), a.address);
    await bob.signUp("bob");

    const notes = join(dir.path, "notes.bin");
    await writeRandomFile(notes, 300_000, "notes");
    await alice.ok(["publish", notes]);
    const serving = await alice.serve();
    try {
      // Found through A, fetched with a ticket A signed from the peer that announced to B.
      assert.match(await bob.ok(["search", "notes"]), /notes\.bin/);
      const first = join(dir.path, "bob-first");
      await Deno.mkdir(first);
      await bob.ok(["fetch", "notes.bin"], { cwd: first });
      assert.equal(await sha256File(join(first, "notes.bin")), await sha256File(notes));

      // Nor does one failing to start (its port taken): it writes nothing.
      await assert.rejects(() => startTracker({ db: url, extra, port: a.port }), /port is in use/);
      assert.equal(onlineOf(await listPeers(url), "alice"), true);

      // A stopping tracker changes nobody else's peers: a third process starting and
      // stopping leaves alice online.
      const c = await startTracker({ db: url, extra });
      await c.daemon.stop();
      assert.equal(onlineOf(await listPeers(url), "alice"), true);

      // B dies without a word; A takes its peers offline within the window.
      await b.daemon.stop("SIGKILL");
      trackers.splice(trackers.indexOf(b), 1);
      const after = await pollPeers(url, (peers) => onlineOf(peers, "alice") === false);
      assert.equal(onlineOf(after, "alice"), false, JSON.stringify(after));
    } finally {
      await serving.stop();
    }

    // alice reconnects through the survivor, with the session she made through B.
    // (Once peers take several tracker addresses, `--tracker B,A` fails over to A by itself.)
    const aliceOnSurvivor = new TestPeer(join(dir.path, "alice"), a.address);
    const again = await aliceOnSurvivor.serve();
    try {
      assert.equal(onlineOf(await listPeers(url), "alice"), true);
      const second = join(dir.path, "bob-second");
      await Deno.mkdir(second);
      await bob.ok(["fetch", "notes.bin"], { cwd: second });
      assert.equal(await sha256File(join(second, "notes.bin")), await sha256File(notes));
    } finally {
      await again.stop();
    }
  } finally {
    for (const tracker of trackers) await tracker.daemon.stop();
  }
});
