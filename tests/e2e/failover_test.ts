/**
 * A tracker process killed with SIGKILL while a peer serves through it: the
 * peer, started with `--tracker A,B`, moves its control connection to B by
 * itself and stays fetchable there. Real processes for both trackers and the
 * serving peer. B stands for a second process of the same tracker: it runs
 * on a consistent copy of A's database (accounts and sessions as they were)
 * with A's identity files (certificate, key, ticket key), which is what two
 * processes on one shared store and one identity look like to a peer.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { killTrackerAndWaitForMove } from "../helpers/failover.ts";
import {
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";

/** Copies the tracker in `from` (a live database, its identity files) into `to`. */
async function copyTracker(from: string, to: string): Promise<void> {
  await Deno.mkdir(to);
  const db = new DatabaseSync(join(from, "tracker.db"), { readOnly: true });
  try {
    // A consistent snapshot of a database in use, WAL and all.
    db.exec(`VACUUM INTO '${join(to, "tracker.db").replaceAll("'", "''")}'`);
  } finally {
    db.close();
  }
  for (const name of ["tls-cert.pem", "tls-key.pem", "ticket-key.pem"]) {
    await Deno.copyFile(join(from, `tracker.db.${name}`), join(to, `tracker.db.${name}`));
  }
}

Deno.test("failover e2e - a tracker process killed with SIGKILL: the serving peer moves to the other and stays fetchable", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "a"));
  const a = await startTracker({ db: join(dir.path, "a", "tracker.db") });
  let b;
  let serving;
  try {
    const alice = new TestPeer(join(dir.path, "alice"), a.address);
    const bob = new TestPeer(join(dir.path, "bob"), a.address);
    await alice.signUp("alice");
    await bob.signUp("bob");
    const song = join(dir.path, "song.ogg");
    await writeRandomFile(song, 1_500_000);
    await alice.ok(["publish", song]);

    await copyTracker(join(dir.path, "a"), join(dir.path, "b"));
    b = await startTracker({ db: join(dir.path, "b", "tracker.db") });
    alice.tracker = bob.tracker = `${a.address},${b.address}`;

    serving = await alice.serve();
    await killTrackerAndWaitForMove(serving, a, b, "alice");

    // Bob's commands move on too; B lists alice online and hands out her address.
    const found = JSON.parse(await bob.ok(["search", "song", "--json"]));
    assert.deepEqual(found.map((f: { owner: string; online: boolean }) => [f.owner, f.online]), [
      ["alice", true],
    ]);
    const output = join(dir.path, "copy.ogg");
    const fetched = await bob.run(["fetch", "song.ogg", "--output", output]);
    assert.equal(fetched.code, 0, fetched.stderr + fetched.stdout);
    assert.equal(await sha256File(output), await sha256File(song));
    // Nobody was asked for a certificate again: B's was pinned as A's, without a first contact.
    assert.doesNotMatch(fetched.stderr, /first contact/);
  } finally {
    await serving?.stop();
    await b?.daemon.stop();
    await a.daemon.stop();
  }
});
