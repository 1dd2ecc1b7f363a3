/**
 * A download does not depend on the tracker once it has its sources: the
 * tracker dying mid-fetch leaves a complete, verified, shared file, and the
 * share is published when the tracker is back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { fetchFile, listOwners } from "../../lib/peer/fetch.ts";
import { startServing } from "../../lib/peer/serve.ts";
import { withSession } from "../../lib/peer/tracker_link.ts";
import { heldSource, localPeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

const MIB = 1024 * 1024;

/** Who the tracker lists as owners of `name`, asked as `peer`. */
async function ownersOf(
  peer: Awaited<ReturnType<typeof localPeer>>,
  name: string,
): Promise<string[]> {
  const { files } = await withSession(
    peer.home,
    peer.endpoint,
    (client) => client.call("lookup", { name }),
  );
  return files.map((file) => file.owner).sort();
}

/** Waits for `moment` during a fetch; a fetch that ends first fails the test with its error. */
async function midway(fetching: Promise<unknown>, moment: Promise<void>): Promise<void> {
  const ended = fetching.then(() => {
    throw new Error("the fetch ended before the moment the test waits for");
  });
  await deadline(Promise.race([moment, ended]), 30_000, { what: "the first piece" });
  ended.catch(() => {});
}

Deno.test("fetch - the tracker dying mid-download: the file completes, is shared, and is published once the tracker is back", async () => {
  await using dir = await tempDir();
  let tracker = await startLocalTracker(dir.path);
  try {
    const original = join(dir.path, "notes.bin");
    await writeRandomFile(original, 2 * MIB);
    using alice = await localPeer(dir.path, "alice", tracker.address);
    using bob = await localPeer(dir.path, "bob", tracker.address);
    await using source = await heldSource(alice, original, "notes", 2);
    const { owners: [listing] } = await listOwners(bob.home, bob.endpoint, "notes");

    const output = join(dir.path, "fetched.bin");
    const firstPiece = Promise.withResolvers<void>();
    const fetching = fetchFile(bob.home, bob.endpoint, listing, {
      output,
      onProgress: () => firstPiece.resolve(),
    });
    // Sources and tickets obtained, a piece verified: now the tracker goes.
    await midway(fetching, firstPiece.promise);
    await tracker.stop();
    source.release();
    const { summary, shared, unpublished } = await deadline(fetching, 60_000, {
      what: "the fetch",
    });

    assert.equal(await sha256File(output), await sha256File(original));
    assert.equal(summary.size, 2 * MIB);
    assert.ok(shared);
    assert.equal(unpublished?.pending, true, JSON.stringify(unpublished));
    assert.equal(unpublished?.tracker, tracker.address);
    assert.equal(bob.home.share("notes")?.path, await Deno.realPath(output));
    assert.deepEqual(bob.home.pendingPublishes(tracker.address).map((p) => p.name), ["notes"]);

    // Back on the same address: bob's `serve` publishes what was pending.
    tracker = await startLocalTracker(dir.path, tracker.port);
    const serving = await startServing(bob.home, {
      tracker: bob.endpoint,
      listen: { host: "127.0.0.1", port: 0 },
      log: () => {},
      onLoggedOut: () => {},
    });
    try {
      for (let tries = 0; bob.home.pendingPublishes(tracker.address).length > 0; tries++) {
        assert.ok(tries < 400, "serve never published the pending share");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(await ownersOf(alice, "notes"), ["alice", "bob"]);
      assert.ok(
        bob.notices.some((line) => /published "notes" at the tracker/.test(line)),
        bob.notices.join("\n"),
      );
    } finally {
      await serving.stop();
    }
  } finally {
    await tracker.stop();
  }
});

Deno.test("fetch - a share pending for a tracker is published by the next command that reaches it", async () => {
  await using dir = await tempDir();
  let tracker = await startLocalTracker(dir.path);
  try {
    const original = join(dir.path, "plan.bin");
    await writeRandomFile(original, MIB);
    using alice = await localPeer(dir.path, "alice", tracker.address);
    using bob = await localPeer(dir.path, "bob", tracker.address);
    await using source = await heldSource(alice, original, "plan", 1);
    const { owners: [listing] } = await listOwners(bob.home, bob.endpoint, "plan");
    const firstPiece = Promise.withResolvers<void>();
    const fetching = fetchFile(bob.home, bob.endpoint, listing, {
      output: join(dir.path, "plan.bin.copy"),
      onProgress: () => firstPiece.resolve(),
    });
    await midway(fetching, firstPiece.promise);
    await tracker.stop();
    source.release();
    assert.equal(
      (await deadline(fetching, 60_000, { what: "the fetch" })).unpublished?.pending,
      true,
    );

    tracker = await startLocalTracker(dir.path, tracker.port);
    // Any command with a session: here the lookup a `search` makes.
    assert.deepEqual(await ownersOf(bob, "plan"), ["alice", "bob"]);
    assert.deepEqual(bob.home.pendingPublishes(tracker.address), []);
  } finally {
    await tracker.stop();
  }
});

Deno.test("fetch - a pending share removed meanwhile is not published", async () => {
  await using dir = await tempDir();
  const tracker = await startLocalTracker(dir.path);
  try {
    using bob = await localPeer(dir.path, "bob", tracker.address);
    bob.home.addPendingPublish({
      tracker: tracker.address,
      name: "gone",
      contentId: "ab".repeat(32),
      since: new Date().toISOString(),
      reason: "unreachable",
    });
    assert.deepEqual(await ownersOf(bob, "gone"), []);
    assert.deepEqual(bob.home.pendingPublishes(tracker.address), []);
  } finally {
    await tracker.stop();
  }
});
