import assert from "node:assert/strict";
import { join } from "node:path";
import {
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";

Deno.test("a tracker restart keeps accounts and shares, and a serving peer comes back by itself", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  let tracker = await startTracker({ db });
  const alice = new TestPeer(join(dir.path, "alice"), tracker.address);
  const bob = new TestPeer(join(dir.path, "bob"), tracker.address);
  const source = join(dir.path, "song.ogg");
  await writeRandomFile(source, 700_000);
  await alice.signUp("alice");
  await bob.signUp("bob");
  await alice.ok(["publish", source]);
  const serving = await alice.serve();
  try {
    const linesBefore = serving.lines.length;
    await tracker.daemon.stop();
    await serving.waitFor(/lost the tracker/, 20_000, linesBefore);
    tracker = await startTracker({ db, port: tracker.port });

    // Nobody re-registers or re-publishes: the peer reconnects with its stored session.
    await serving.waitFor(/^online as alice/, 30_000, linesBefore);
    const output = join(dir.path, "copy.ogg");
    await bob.ok(["fetch", "song.ogg", "--output", output]);
    assert.equal(await sha256File(output), await sha256File(source));
    const view = JSON.parse(await alice.ok(["view", "--json"]));
    assert.equal(view[0].name, "song.ogg");
  } finally {
    await serving.stop();
    await tracker.daemon.stop();
  }
});
