/**
 * A tracker restart, in this process: the tracker stops and starts again on
 * its port and database while a peer serves, and nobody does anything.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

Deno.test("a tracker restart keeps accounts and shares, and a serving peer comes back by itself", async () => {
  await using dir = await tempDir();
  let tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
  const source = join(dir.path, "song.ogg");
  await writeRandomFile(source, 700_000);
  try {
    await alice.signUp("alice");
    await bob.signUp("bob");
    await alice.ok(["publish", source]);
    await using serving = await servePeer(alice.home, tracker.address);
    const linesBefore = serving.lines.length;
    const saidSince = (pattern: RegExp) => () =>
      serving.lines.slice(linesBefore).some((line) => pattern.test(line));
    const said = () => `serve said:\n${serving.lines.join("\n")}`;
    await tracker.stop();
    await eventually(saidSince(/lost the tracker/), said, { tries: 2000 });
    tracker = await startLocalTracker(dir.path, tracker.port);

    // Nobody re-registers or re-publishes: the peer reconnects with its stored session.
    await eventually(saidSince(/^online as alice/), said, { tries: 3000 });
    const output = join(dir.path, "copy.ogg");
    await bob.ok(["fetch", "song.ogg", "--output", output]);
    assert.equal(await sha256File(output), await sha256File(source));
    const view = JSON.parse(await alice.ok(["view", "--json"]));
    assert.equal(view[0].name, "song.ogg");
  } finally {
    await tracker.stop();
  }
});
