/** `peer.ts unregister`, with the peer and tracker programs run in this process. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer, runTrackerCli } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";

Deno.test("liveness - unregister removes the user's publications and the user", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  await using tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
  await alice.signUp("alice");
  await bob.signUp("bob");
  const notes = join(dir.path, "notes.txt");
  await Deno.writeTextFile(notes, "lecture notes\n");
  await alice.ok(["publish", "alice-notes", notes]);
  await alice.ok(["publish", "shared-notes", notes]);
  await bob.ok(["publish", "bob-notes", notes]);
  await using _serving = await servePeer(alice.home, tracker.address);

  const before = await runTrackerCli(["discover", "alice", "--db", db, "--json"]);
  assert.equal(before.code, 0, before.stderr);
  assert.deepEqual(
    JSON.parse(before.stdout).files.map((f: { name: string }) => f.name),
    ["alice-notes", "shared-notes"],
  );

  await alice.ok(["unregister", "--password-stdin"], { stdin: "alice-password\n" });

  // The account is gone, so discover no longer knows the name at all.
  const after = await runTrackerCli(["discover", "alice", "--db", db, "--json"]);
  assert.equal(after.code, 1);
  // With --json the error is one JSON object on stdout.
  const { error } = JSON.parse(after.stdout);
  assert.deepEqual([error.code, error.message], ["NOT_FOUND", 'no peer named or at "alice"']);
  assert.match(error.hint, /tracker\.ts peers` lists the peers/);

  const files = await runTrackerCli(["files", "--db", db, "--json"]);
  assert.equal(files.code, 0, files.stderr);
  assert.deepEqual(
    JSON.parse(files.stdout).map((f: { owner: string; name: string }) => [f.owner, f.name]),
    [["bob", "bob-notes"]],
  );
  const found = JSON.parse(await bob.ok(["search", "notes", "--json"]));
  assert.deepEqual(found.map((f: { owner: string }) => f.owner), ["bob"]);
  const peers = await runTrackerCli(["peers", "--db", db, "--json"]);
  assert.equal(peers.code, 0, peers.stderr);
  const rows: { username: string; online: boolean }[] = JSON.parse(peers.stdout);
  assert.equal(rows.find((peer) => peer.username === "alice")?.online, undefined);
});
