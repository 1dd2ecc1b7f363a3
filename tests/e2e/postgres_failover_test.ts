/**
 * Failover against real tracker processes: two `tracker.ts serve` children
 * on one throwaway PostgreSQL with one identity (`identity init`,
 * `--identity`), and peers that list both (`--tracker A,B`). When the
 * process a peer serves through is killed (SIGKILL), the peer moves its
 * control connection to the other by itself, with its session, and stays
 * findable and fetchable there; a peer whose commands started at the dead
 * one moves on too. Skipped with a message where PostgreSQL is not installed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initTrackerIdentity, killTrackerAndWaitForMove } from "../helpers/failover.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import {
  type RunningTracker,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";

Deno.test("failover e2e on PostgreSQL - the tracker process a peer serves through is killed: it moves to the other and stays fetchable", async () => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;
  await using dir = await tempDir();
  const url = await pg.newDatabase();
  const identity = await initTrackerIdentity(dir.path);
  const extra = ["--identity", identity.path];
  const trackers: RunningTracker[] = [];
  let serving;
  try {
    const a = await startTracker({ db: url, extra });
    trackers.push(a);
    const b = await startTracker({ db: url, extra });
    trackers.push(b);
    const alice = new TestPeer(join(dir.path, "alice"), `${a.address},${b.address}`);
    const bob = new TestPeer(join(dir.path, "bob"), `${a.address},${b.address}`);
    await alice.signUp("alice");
    await bob.signUp("bob");
    const notes = join(dir.path, "notes.bin");
    await writeRandomFile(notes, 300_000, "notes");
    await alice.ok(["publish", notes]);

    serving = await alice.serve();
    await killTrackerAndWaitForMove(serving, a, b, "alice");

    // bob's home remembers A, which is dead: his commands go on at B, without a new login.
    const found = JSON.parse(await bob.ok(["search", "notes", "--json"]));
    assert.deepEqual(found.map((f: { owner: string; online: boolean }) => [f.owner, f.online]), [
      ["alice", true],
    ]);
    const out = join(dir.path, "bob-out");
    await Deno.mkdir(out);
    const fetched = await bob.run(["fetch", "notes.bin"], { cwd: out });
    assert.equal(fetched.code, 0, fetched.stderr + fetched.stdout);
    assert.equal(await sha256File(join(out, "notes.bin")), await sha256File(notes));
    const sessions = JSON.parse(await bob.ok(["sessions", "--json"]));
    assert.equal(sessions.length, 1, "the session of bob's one login");
  } finally {
    await serving?.stop();
    for (const tracker of trackers) await tracker.daemon.stop();
  }
});
