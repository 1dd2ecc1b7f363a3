/**
 * A publisher who lies to the tracker about a file's size: the fetch must
 * refuse the content before writing anything, and say whose listing lied.
 * Tracker, source and the fetching peer's program all run in this process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAddress } from "../../lib/protocol/address.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { withSession } from "../../lib/peer/tracker_link.ts";
import { CliPeer } from "../helpers/cli.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, writeRandomFile } from "../helpers/processes.ts";

Deno.test("a file listed at a size other than its content's is refused, and nothing is written", async () => {
  await using dir = await tempDir();
  const tracker = await startLocalTracker(dir.path);
  try {
    const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
    const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
    await alice.signUp("alice");
    await bob.signUp("bob");
    const file = join(dir.path, "tiny.bin");
    await writeRandomFile(file, 1024 * 1024);
    await alice.ok(["publish", "tiny", file]);
    await using _serving = await servePeer(alice.home, tracker.address);
    // Alice publishes the same content again through the protocol, claiming it is 1000 bytes.
    {
      using home = PeerHome.open(alice.home);
      const share = home.share("tiny")!;
      const endpoint = {
        addresses: [parseAddress(tracker.address)],
        plaintext: false,
        notice: () => {},
      };
      await withSession(home, endpoint, (client) =>
        client.call("publish", {
          name: "tiny",
          type: share.type,
          size: 1000,
          contentId: share.contentId,
        }));
    }
    const downloads = join(dir.path, "downloads");
    await Deno.mkdir(downloads);
    // The part file would go beside the output: the folder must stay empty.
    const fetched = await bob.run(["fetch", "tiny", "--output", join(downloads, "tiny")]);
    assert.equal(fetched.code, 1, fetched.stderr);
    assert.match(
      fetched.stderr,
      /^error: refusing "tiny": alice lists it as 1000 B, but its content is 1048576 B \(manifest from alice\)$/m,
    );
    assert.match(fetched.stderr, /hint: .*--from <username>/);
    assert.deepEqual([...Deno.readDirSync(downloads)], [], "nothing written, not even a part file");
  } finally {
    await tracker.stop();
  }
});
