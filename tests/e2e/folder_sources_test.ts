/**
 * Where a folder's files come from, and what a hostile source cannot do:
 * the owner of a single file is a source of that file inside someone's
 * folder (and the other way round), and a folder manifest that breaks any
 * path rule is refused, naming its source, with nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer, signedUpCliPeers } from "../helpers/cli.ts";
import { localPeer, servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, TestPeer, writeRandomFile } from "../helpers/processes.ts";
import {
  encodeFolderManifest,
  fileContentId,
  folderContentId,
} from "../../lib/peer/folder_manifest.ts";
import { sha256Hex } from "../../lib/peer/manifest.ts";
import { MAX_BATCH_IDS } from "../../lib/protocol/messages.ts";
import { NO_PIECES } from "../../lib/peer/home.ts";
import { withSession } from "../../lib/peer/tracker_link.ts";
import { diffTree, makeTree } from "../helpers/folders.ts";

Deno.test("two sources: one has the folder, one the single file; each serves what it has", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, carol, bob] = await signedUpCliPeers(
    dir.path,
    tracker.address,
    "alice",
    "carol",
    "bob",
  );
  const tree = join(dir.path, "course");
  await makeTree(tree);
  await alice.ok(["publish", tree]);
  // Carol shares one of its files alone, under another name.
  const single = join(dir.path, "carol-big.bin");
  await Deno.copyFile(join(tree, "big.bin"), single);
  await carol.ok(["publish", "lecture.bin", single]);
  const aliceServing = await servePeer(alice.home, tracker.address);
  await using _carol = await servePeer(carol.home, tracker.address);

  // The single file's sources include the folder's owner.
  const alone = join(dir.path, "alone.bin");
  const fetchedAlone = JSON.parse(
    await bob.ok(["fetch", "lecture.bin", "--output", alone, "--json"]),
  );
  assert.deepEqual(
    fetchedAlone.sources.map((s: { owner: string }) => s.owner).sort(),
    ["alice", "carol"],
  );

  // Alice's copy of big.bin changes after she published: only carol can serve it now. Alice
  // serves again, so that no check of the file she made for the first fetch stands.
  await aliceServing[Symbol.asyncDispose]();
  await Deno.utime(join(tree, "big.bin"), new Date(), new Date(2001, 1, 1));
  await using _alice = await servePeer(alice.home, tracker.address);
  const output = join(dir.path, "fetched");
  const fetched = JSON.parse(await bob.ok(["fetch", "course", "--output", output, "--json"]));
  const byOwner = Object.fromEntries(
    fetched.sources.map((s: { owner: string; pieces: number }) => [s.owner, s.pieces]),
  );
  assert.ok(byOwner.carol >= 5, `carol served big.bin's 5 pieces: ${JSON.stringify(byOwner)}`);
  assert.ok(byOwner.alice >= 4, `alice served the 4 other pieces: ${JSON.stringify(byOwner)}`);
  assert.equal(await diffTree(tree, output), "");
});

/** Paths that break each rule of issue 14, each as the one file of a folder manifest. */
const HOSTILE: [string, string[]][] = [
  ["an absolute path", ["/tmp/evil"]],
  ["a '..' component", ["../evil"]],
  ["a '..' deeper down", ["a/../../evil"]],
  ["an empty component", ["a//b"]],
  ["a NUL", ["evil\u0000.txt"]],
  ["a control character", ["evil\u001b[2J.txt"]],
  ["a text-direction character", ["evil\u202Etxt.exe"]],
  ["a name over 255 bytes", ["n".repeat(256)]],
  ["a path over 4096 bytes", [Array.from({ length: 20 }, () => "d".repeat(250)).join("/")]],
  ["a depth over 64", [Array.from({ length: 65 }, () => "d").join("/")]],
  ["two paths differing in case", ["Readme.txt", "README.txt"]],
  ["two paths differing in normalisation", ["caf\u00e9.txt", "cafe\u0301.txt"]],
  ["a file that is also a folder", ["a", "a/b"]],
  ["a name a partial download takes", ["notes", "notes.shoal-part"]],
];

Deno.test("a source serving a hostile folder manifest: each rule refuses it, naming the source, nothing written", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  using mallory = await localPeer(dir.path, "mallory", tracker.address);
  const [bob] = await signedUpCliPeers(dir.path, tracker.address, "bob");
  // Mallory's home serves crafted manifests: built by hand, published as folders.
  for (const [i, [, paths]] of HOSTILE.entries()) {
    const text = encodeFolderManifest({
      version: 1,
      files: paths.map((path) => ({ path, size: 0, pieces: [] })),
      folders: [],
    });
    const contentId = folderContentId(text);
    await Deno.mkdir(join(mallory.home.dir, "folders"), { recursive: true });
    await Deno.writeTextFile(mallory.home.folderManifestPath(contentId), text);
    const share = {
      name: `trap${i}`,
      path: dir.path,
      type: "folder",
      size: 0,
      mtimeMs: 0,
      fileId: null,
      contentId,
      manifest: NO_PIECES,
      publishedAt: new Date().toISOString(),
      kind: "folder" as const,
      files: paths.length,
    };
    await withSession(
      mallory.home,
      mallory.endpoint,
      (client) =>
        client.call("publish", { name: share.name, type: "folder", size: 0, contentId, files: 1 }),
    );
    mallory.home.addShare(share);
  }
  await using _serving = await servePeer(mallory.home.dir, tracker.address);
  const outputs = join(dir.path, "outputs");
  await Deno.mkdir(outputs);
  for (const [i, [rule]] of HOSTILE.entries()) {
    const result = await bob.run(["fetch", `trap${i}`, "--output", join(outputs, `trap${i}`)]);
    assert.notEqual(result.code, 0, rule);
    assert.match(result.stderr, /refused a folder from mallory/, `${rule}: ${result.stderr}`);
  }
  assert.deepEqual([...Deno.readDirSync(outputs)], [], "nothing was written");
  await assert.rejects(Deno.lstat("/tmp/evil"));
});

Deno.test("a folder fetched into a folder holding a symlink never writes through it", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(join(tree, "slides"), { recursive: true });
  await writeRandomFile(join(tree, "slides", "a.pdf"), 1000);
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  const outside = join(dir.path, "outside");
  await Deno.mkdir(outside);
  const output = join(dir.path, "out");
  await Deno.mkdir(output);
  await Deno.symlink(outside, join(output, "slides"));
  const result = await bob.run(["fetch", "course", "--output", output, "--force"]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /symlink/);
  assert.deepEqual([...Deno.readDirSync(outside)], []);
});

Deno.test("a folder of more files than one batch carries: every file's owner is found, and it fetches whole", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice] = await signedUpCliPeers(dir.path, tracker.address, "alice");
  using bob = await localPeer(dir.path, "bob", tracker.address);
  const tree = join(dir.path, "many");
  const count = MAX_BATCH_IDS + 100;
  for (let d = 0; d < 10; d++) await Deno.mkdir(join(tree, `d${d}`), { recursive: true });
  for (let i = 0; i < count; i++) {
    Deno.writeTextFileSync(join(tree, `d${i % 10}`, `f${i}`), `${i}\n`);
  }
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  // The last file's content id went in the second `members` batch.
  const last = fileContentId({ size: 5, pieces: [sha256Hex(`${count - 1}\n`)] });
  const reply = await withSession(
    bob.home,
    bob.endpoint,
    (client) => client.call("holders", { contentIds: [last] }),
  );
  assert.deepEqual(reply.holds[0].map((i) => reply.sources[i].owner), ["alice"]);
  const output = join(dir.path, "fetched");
  await new CliPeer(bob.home.dir, tracker.address).ok(["fetch", "many", "--output", output]);
  assert.equal(await diffTree(tree, output), "");
});

/**
 * Alice's folder of 150 notes and a big last file, which changed after she
 * published it: only carol, who shares it alone, can serve it. Bob fetches
 * the folder, from alice serving with `pieceDelayMs` before each piece.
 */
async function lateFileOnlyAnotherHas(pieceDelayMs: number) {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, carol, bob] = await signedUpCliPeers(
    dir.path,
    tracker.address,
    "alice",
    "carol",
    "bob",
  );
  // More files than the first `holders` batch the download starts with, the last of them big.
  const tree = join(dir.path, "notes");
  await Deno.mkdir(tree);
  for (let i = 0; i < 150; i++) {
    Deno.writeTextFileSync(join(tree, `n${String(i).padStart(3, "0")}.txt`), `note ${i}\n`);
  }
  await writeRandomFile(join(tree, "z-last.bin"), 600 * 1024);
  await alice.ok(["publish", tree]);
  const single = join(dir.path, "carol-last.bin");
  await Deno.copyFile(join(tree, "z-last.bin"), single);
  await carol.ok(["publish", "last.bin", single]);
  await Deno.utime(join(tree, "z-last.bin"), new Date(), new Date(2001, 1, 1));
  const serving = await new TestPeer(alice.home, tracker.address)
    .serve([], pieceDelayMs ? { SHOAL_TEST_PIECE_DELAY_MS: String(pieceDelayMs) } : {});
  await using _alice = { [Symbol.asyncDispose]: () => serving.stop().then(() => {}) };
  await using _carol = await servePeer(carol.home, tracker.address);
  const output = join(dir.path, "fetched");
  const fetched = JSON.parse(await bob.ok(["fetch", "notes", "--output", output, "--json"]));
  const byOwner = Object.fromEntries(
    fetched.sources.map((s: { owner: string; pieces: number }) => [s.owner, s.pieces]),
  );
  assert.equal(byOwner.carol, 3, `carol served z-last.bin's 3 pieces: ${JSON.stringify(byOwner)}`);
  assert.equal(byOwner.alice, 150, `alice served the notes: ${JSON.stringify(byOwner)}`);
  assert.equal(await diffTree(tree, output), "");
}

Deno.test("a folder of many files: a file only another peer has alone, late in the list, comes from it", async () => {
  await lateFileOnlyAnotherHas(0);
});

Deno.test("a folder of many files from a slow owner: a file only another peer has alone comes from it, found while the owner still sends", async () => {
  // Slow enough that the download still runs when the holders of the rest are looked up.
  await lateFileOnlyAnotherHas(30);
});
