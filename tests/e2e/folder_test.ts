/**
 * Folder shares end to end: publish a tree, list it, fetch all of it or
 * part of it, and compare with `diff -r`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { signedUpCliPeers } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, writeRandomFile } from "../helpers/processes.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { diffTree, makeTree } from "../helpers/folders.ts";

Deno.test("a folder fetched from its owner is the same tree (diff -r), its files and folders", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await makeTree(tree);
  const published = await alice.ok(["publish", tree]);
  assert.match(published, /published the folder "course" \(6 files, .*shoal:[0-9a-f]{64}/);
  await using _serving = await servePeer(alice.home, tracker.address);

  const found = await bob.ok(["search", "cour", "--json"]);
  const [listing] = JSON.parse(found);
  assert.equal(listing.type, "folder");
  assert.equal(listing.files, 6);
  assert.equal(listing.link, `shoal:${listing.contentId}`);
  assert.equal(listing.size, 40_000 + 3_000 + 1_000 + 1_200_000 + 6);

  const ls = JSON.parse(await bob.ok(["ls", "course", "--json"]));
  assert.deepEqual(
    ls.files.map((f: { path: string }) => f.path).sort(),
    [
      "big.bin",
      "données/résumé ü.txt",
      "empty file",
      "readme.md",
      "slides/overview.pdf",
      "slides/week 1/intro.pdf",
    ].sort(),
  );

  const output = join(dir.path, "fetched");
  const fetched = await bob.ok(["fetch", "course", "--output", output]);
  assert.match(fetched, /fetched the folder "course"/);
  assert.equal(await diffTree(tree, output), "");

  // Part of it: only the slides.
  const part = join(dir.path, "part");
  await bob.ok(["fetch", "course", "--output", part, "--only", "slides/**", "--only", "*.md"]);
  assert.equal(await diffTree(join(tree, "slides"), join(part, "slides")), "");
  assert.equal(await Deno.readTextFile(join(part, "readme.md")), "hello\n");
  await assert.rejects(Deno.lstat(join(part, "big.bin")));

  // A content-id link fetches it too.
  const link = /shoal:[0-9a-f]{64}/.exec(published)![0];
  const linked = join(dir.path, "linked");
  await bob.ok(["fetch", link, "--output", linked]);
  assert.equal(await diffTree(tree, linked), "");
});

Deno.test("re-publishing a changed folder updates the share; unchanged files keep their ids", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await makeTree(tree);
  const first = await alice.ok(["publish", tree]);
  const idsBefore = new Map(
    fileIds(alice.home, "course").map(({ relative, contentId }) => [relative, contentId]),
  );
  await Deno.writeTextFile(join(tree, "readme.md"), "changed\n");
  await writeRandomFile(join(tree, "slides", "new.pdf"), 2_000);
  await Deno.remove(join(tree, "big.bin"));
  const second = await alice.ok(["publish", tree]);
  assert.match(second, /republished the folder "course" \(6 files/);
  assert.doesNotMatch(second, /nothing in it changed/);
  assert.match(
    await alice.ok(["publish", tree]),
    /^republished the folder "course" \(6 files, .*; nothing in it changed since it was last published$/m,
  );
  assert.notEqual(/shoal:\w+/.exec(first)![0], /shoal:\w+/.exec(second)![0]);
  const idsAfter = new Map(
    fileIds(alice.home, "course").map(({ relative, contentId }) => [relative, contentId]),
  );
  assert.equal(idsAfter.get("slides/overview.pdf"), idsBefore.get("slides/overview.pdf"));
  assert.notEqual(idsAfter.get("readme.md"), idsBefore.get("readme.md"));
  assert.equal(idsAfter.has("big.bin"), false);

  await using _serving = await servePeer(alice.home, tracker.address);
  const [listing] = JSON.parse(await bob.ok(["search", "course", "--json"]));
  assert.equal(listing.files, 6);
  assert.equal(listing.link, `shoal:${listing.contentId}`);
  const output = join(dir.path, "fetched");
  await bob.ok(["fetch", "course", "--output", output]);
  assert.equal(await diffTree(tree, output), "");
});

function fileIds(home: string, share: string) {
  using opened = PeerHome.open(home);
  return opened.folderFiles(share);
}
