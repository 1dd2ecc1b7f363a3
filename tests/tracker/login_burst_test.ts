/**
 * A burst of logins at the real password cost, in process: the tracker
 * hashes them a few at a time without starving other requests.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { delay } from "../../lib/async/delay.ts";
import { loadOrCreateIdentity } from "../../lib/identity/key_files.ts";
import { formatAddress } from "../../lib/protocol/address.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { RegisterLimiter } from "../../lib/tracker/register_limiter.ts";
import { login, register } from "../../lib/peer/account.ts";
import { search } from "../../lib/peer/search.ts";
import { publish } from "../../lib/peer/shares.ts";
import { localPeer } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";
import { startTestTracker } from "../helpers/tracker.ts";

Deno.test("liveness - a burst of 20 concurrent logins all succeed while another peer searches", async () => {
  const COUNT = 20;
  await using dir = await tempDir();
  await using running = await startTestTracker({
    tls: await loadOrCreateIdentity(dir.path, "tracker.db.tls-"),
    // The real cost: the burst is about hashing that many at once.
    passwords: new PasswordHasher(),
    // 21 accounts from this one address, above the default bound.
    registerLimiter: new RegisterLimiter({ burstPerAddress: 30 }),
  });
  const address = formatAddress(running.address);
  using searcher = await localPeer(dir.path, "searcher", address);
  const notes = join(dir.path, "notes.txt");
  await Deno.writeTextFile(notes, "lecture notes\n");
  await publish(searcher.home, searcher.endpoint, notes);
  const peers = await Promise.all(
    Array.from({ length: COUNT }, (_, i) => localPeer(dir.path, `user${i}`, address, false)),
  );
  try {
    // Registration is set-up, not the burst under test: five at a time.
    for (let i = 0; i < COUNT; i += 5) {
      await Promise.all(
        peers.slice(i, i + 5).map((peer) =>
          register(peer.home, peer.endpoint, peer.username, `${peer.username}-password`)
        ),
      );
    }

    let burstDone = false;
    const searches: { name: string; owner: string }[][] = [];
    const searching = (async () => {
      do {
        const { files } = await search(searcher.home, searcher.endpoint, "notes");
        searches.push(files.map(({ name, owner }) => ({ name, owner })));
        // A peer's pace, not a flood: back to back, this loop opened some 800 connections a
        // second (12,000 in a run), which slowed the logins it watches to seconds each and got a
        // connection reset: the test failed about every other run on its own.
        await delay(20);
      } while (!burstDone);
    })();
    const logins = await deadline(
      Promise.all(
        peers.map((peer) =>
          login(peer.home, peer.endpoint, peer.username, `${peer.username}-password`)
        ),
      ).finally(() => burstDone = true),
      60_000,
      { what: "a burst of 20 logins" },
    );
    await deadline(searching, 20_000, { what: "the searches during the burst" });

    // `peer.ts login` prints `logged in as` the name login returns.
    for (const [i, username] of logins.entries()) assert.equal(username, `user${i}`);
    assert.ok(searches.length > 0);
    for (const found of searches) {
      assert.deepEqual(found.map((f) => [f.name, f.owner]), [["notes.txt", "searcher"]]);
    }
    // Every new session works.
    const views = await Promise.all(
      peers.map((peer) => search(peer.home, peer.endpoint, "notes")),
    );
    for (const view of views) assert.equal(view.total, 1);
  } finally {
    for (const peer of peers) peer[Symbol.dispose]();
  }
});
