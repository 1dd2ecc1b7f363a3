/**
 * The life of a file and of an account through the peer and tracker
 * programs, run in this process against an in-process TLS tracker.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer, runTrackerCli, signedUpCliPeers } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

Deno.test("a file travels from one peer to another, and every account step works", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  const tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
  const source = join(dir.path, "report.pdf");
  await writeRandomFile(source, 3_000_000 + 17);
  const downloads = join(dir.path, "downloads");
  await Deno.mkdir(downloads);
  try {
    await alice.signUp("alice");
    await bob.signUp("bob");

    // publish <name> <path>: the name has no extension, so the fetch adds the type's.
    const published = await alice.ok(["publish", "plan", source]);
    assert.match(published, /published "plan"/);
    const serving = await servePeer(alice.home, tracker.address);

    try {
      // Into a folder, under the published name (the current folder is tests/e2e's to check).
      const fetched = await bob.ok(["fetch", "plan", "--output", downloads]);
      assert.match(fetched, /fetched "plan"/);
      assert.equal(await sha256File(join(downloads, "plan.pdf")), await sha256File(source));

      // The fetched file joins bob's shares, so bob is an owner too.
      const bobView = JSON.parse(await bob.ok(["view", "--json"]));
      assert.deepEqual(bobView.map((s: { name: string }) => s.name), ["plan"]);
      const aliceView = await alice.ok(["view"]);
      assert.match(aliceView, /plan.*report\.pdf.*pdf/);

      const discovered = await runTrackerCli(["discover", "alice", "--db", db, "--json"]);
      assert.equal(discovered.code, 0);
      const { files } = JSON.parse(discovered.stdout);
      assert.deepEqual(files.map((f: { name: string; size: number }) => [f.name, f.size]), [
        ["plan", 3_000_017],
      ]);
      const table = await runTrackerCli(["discover", "alice", "--db", db]);
      assert.match(table.stdout, /plan.*pdf.*2\.9 MiB/);

      const ping = JSON.parse(
        (await runTrackerCli(["ping", "alice", "--db", db, "--json"])).stdout,
      );
      assert.equal(ping.probe.answered, true);
      assert.equal(ping.probe.username, "alice");
      if (ping.os.available) assert.equal(ping.os.reachable, true);
      // A peer can also be named by host:port.
      const byAddress = await runTrackerCli(["ping", ping.address, "--db", db]);
      assert.match(byAddress.stdout, /peer alice at .*app ping: peer process answered as alice/s);

      // A name matches in any case, as in fetch.
      assert.equal(await alice.ok(["unpublish", "PLAN"]), 'unpublished "plan"\n');
      await bob.ok(["unpublish", "plan"]);
      const twice = await bob.run(["unpublish", "plan"]);
      assert.equal(twice.code, 1);
      assert.match(twice.stderr, /^error: you share no file or folder named "plan"$/m);
      assert.match(twice.stderr, /^hint: `.*peer\.ts .*view` lists what you share$/m);
      const gone = await bob.run(["fetch", "plan", "--output", join(dir.path, "again")]);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /^error: "plan" not found/m);
    } finally {
      await serving[Symbol.asyncDispose]();
    }

    await bob.ok(["logout"]);
    // A second logout: still logged out, which is what was asked; no hint to log in.
    assert.equal(await bob.ok(["logout"]), "not logged in: nothing to log out\n");
    for (const args of [["view"], ["search", "plan"], ["fetch", "plan"], ["publish", source]]) {
      const result = await bob.run(args);
      assert.equal(result.code, 1, `${args[0]} after logout`);
      assert.match(result.stderr, /^error: not logged in/m);
    }

    await bob.ok(["login", "bob", "--password-stdin"], { stdin: "bob-password\n" });
    const wrong = await bob.run(["unregister", "--password-stdin"], { stdin: "nope-nope\n" });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong username or password/);
    await bob.ok(["unregister", "--password-stdin"], { stdin: "bob-password\n" });
    const after = await bob.run(["login", "bob", "--password-stdin"], { stdin: "bob-password\n" });
    assert.equal(after.code, 1);
    assert.match(after.stderr, /wrong username or password/);
  } finally {
    await tracker.stop();
  }
});

Deno.test("search lists matching files across the network with their owners", async () => {
  await using dir = await tempDir();
  const tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  try {
    await alice.signUp("alice");
    const notes = join(dir.path, "notes.txt");
    await Deno.writeTextFile(notes, "lecture notes\n");
    await alice.ok(["publish", notes]);
    await alice.ok(["publish", "100%_done", notes]);
    const found = JSON.parse(await alice.ok(["search", "note", "--json"]));
    assert.deepEqual(found.map((f: { name: string; owner: string }) => [f.name, f.owner]), [
      ["notes.txt", "alice"],
    ]);
    // LIKE wildcards in the text are matched literally.
    const literal = JSON.parse(await alice.ok(["search", "%_", "--json"]));
    assert.deepEqual(literal.map((f: { name: string }) => f.name), ["100%_done"]);
    assert.match(await alice.ok(["search", "notes"]), /notes\.txt.*txt.*alice.*offline/);
  } finally {
    await tracker.stop();
  }
});

Deno.test("publishing another file or folder under a name already shared says what it replaces", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice] = await signedUpCliPeers(dir.path, tracker.address, "alice");
  const big = join(dir.path, "big.bin");
  const other = join(dir.path, "other.txt");
  const folder = join(dir.path, "slides");
  await writeRandomFile(big, 3_000_000);
  await Deno.writeTextFile(other, "hi");
  await Deno.mkdir(folder);
  await Deno.writeTextFile(join(folder, "a.txt"), "a");

  assert.doesNotMatch(await alice.ok(["publish", big]), /replaces/);
  // The same file again (edited in place, say) replaces nothing worth saying.
  assert.doesNotMatch(await alice.ok(["publish", big]), /replaces/);
  const replaced = await alice.ok(["publish", "big.bin", other]);
  assert.match(replaced, /republished "big\.bin" \(2 B/);
  assert.match(replaced, /it replaces .*big\.bin \(2\.9 MiB\), which is no longer shared/);
  const byFolder = await alice.ok(["publish", "big.bin", folder]);
  assert.match(byFolder, /it replaces .*other\.txt \(2 B\)/);
  const byFile = await alice.ok(["publish", "big.bin", big]);
  assert.match(byFile, /it replaces the folder .*slides \(1 file, 1 B\)/);
});
