/**
 * A whole fetched folder becomes the fetcher's share: recorded in its home
 * (each file with its identity on disk), published at the tracker with its
 * members, and served from there to the next peer.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { signedUpCliPeers } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { identityOf } from "../../lib/peer/manifest.ts";
import { diffTree, makeTree } from "../helpers/folders.ts";

Deno.test("a fetched folder is shared by the fetcher afterwards, and served from its copy", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob, carol] = await signedUpCliPeers(
    dir.path,
    tracker.address,
    "alice",
    "bob",
    "carol",
  );
  const tree = join(dir.path, "course");
  await makeTree(tree);
  await alice.ok(["publish", tree]);
  const output = join(dir.path, "bob-course");
  {
    await using _alice = await servePeer(alice.home, tracker.address);
    const fetched = JSON.parse(await bob.ok(["fetch", "course", "--output", output, "--json"]));
    assert.equal(fetched.shared, true);
  }

  // Bob's home holds the share, each file as it lies in bob's copy.
  {
    using home = PeerHome.open(bob.home);
    const share = home.share("course");
    assert.equal(share?.kind, "folder");
    assert.equal(share?.files, 6);
    assert.equal(share?.path, await Deno.realPath(output));
    const files = home.folderFiles("course");
    assert.equal(files.length, 6);
    for (const file of files) {
      assert.equal(file.path, join(output, file.relative));
      const identity = identityOf(await Deno.lstat(file.path));
      assert.equal(file.fileId, identity.fileId, file.relative);
      assert.equal(file.mtimeMs, identity.mtimeMs, file.relative);
    }
  }

  // The tracker lists bob as an owner of the same content.
  const listings = JSON.parse(await carol.ok(["search", "course", "--json"]));
  const owners = listings.map((listing: { owner: string }) => listing.owner).sort();
  assert.deepEqual(owners, ["alice", "bob"]);
  assert.equal(new Set(listings.map((l: { contentId: string }) => l.contentId)).size, 1);

  // With alice gone, bob's copy serves carol the whole folder.
  await using _bob = await servePeer(bob.home, tracker.address);
  const carolCopy = join(dir.path, "carol-course");
  await carol.ok(["fetch", "course", "--from", "bob", "--output", carolCopy]);
  assert.equal(await diffTree(tree, carolCopy), "");
});
