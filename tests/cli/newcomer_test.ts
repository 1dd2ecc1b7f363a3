/**
 * What a newcomer hits in the first hour, in process: a name fetched in
 * another case than published, a missing --output folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runPeerCli, signedUpCliPeers } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

Deno.test("newcomer - case-insensitive fetch, missing --output folder", async (t) => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const source = join(dir.path, "Week3-Notes.pdf");
  await writeRandomFile(source, 100_000);
  await alice.ok(["publish", source]);
  await using _serving = await servePeer(alice.home, tracker.address);
  await t.step("fetch finds a name in any case, as search does", async () => {
    const found = await bob.ok(["search", "week3-notes"]);
    assert.match(found, /Week3-Notes\.pdf/);
    const out = join(dir.path, "got.pdf");
    await bob.ok(["fetch", "week3-notes.PDF", "--output", out]);
    assert.equal(await sha256File(out), await sha256File(source));
  });

  await t.step("--output into a missing folder is one line with a hint", async () => {
    const missing = join(dir.path, "nowhere") + "/";
    const result = await bob.run(["fetch", "Week3-Notes.pdf", "--output", missing]);
    assert.equal(result.code, 1);
    assert.deepEqual(result.stderr.trim().split("\n"), [
      `error: cannot save to ${missing}: no such folder`,
      `hint: create it first (mkdir -p ${missing}), or give --output a file name`,
    ]);
  });
});

Deno.test("newcomer - trackers with discovery turned off says so instead of looking", async () => {
  await using dir = await tempDir();
  // tests/helpers/cli.ts sets SHOAL_NO_DISCOVERY=1 for every command it runs.
  const listed = await runPeerCli(["--home", dir.path, "trackers"]);
  assert.equal(listed.code, 1, listed.stderr);
  assert.equal(listed.stdout, "");
  assert.match(
    listed.stderr,
    /^error: discovery is turned off \(SHOAL_NO_DISCOVERY is set\): nothing was looked for$/m,
  );
  assert.match(
    listed.stderr,
    /^hint: to look, unset SHOAL_NO_DISCOVERY \(or set it empty\) and run trackers again$/m,
  );
  const json = await runPeerCli(["--home", dir.path, "trackers", "--json"]);
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stdout).error.code, "INVALID_INPUT");
});
