/**
 * A publisher who lies to the tracker about a file's size: the fetch must
 * refuse the content before writing anything, and say whose listing lied.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAddress } from "../../lib/protocol/address.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { withSession } from "../../lib/peer/tracker_link.ts";
import { tempDir, trackerWithAliceAndBob, writeRandomFile } from "../helpers/processes.ts";

Deno.test("a file listed at a size other than its content's is refused, and nothing is written", async () => {
  await using dir = await tempDir();
  await using network = await trackerWithAliceAndBob(dir.path);
  const { alice, bob, tracker } = network;
  const file = join(dir.path, "tiny.bin");
  await writeRandomFile(file, 1024 * 1024);
  await alice.ok(["publish", "tiny", file]);
  const serving = await alice.serve();
  try {
    // Alice publishes the same content again through the protocol, claiming it is 1000 bytes.
    {
      using home = PeerHome.open(alice.home);
      const share = home.share("tiny")!;
      const endpoint = {
        address: parseAddress(tracker.address),
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
    const fetched = await bob.run(["fetch", "tiny"], { cwd: downloads });
    assert.equal(fetched.code, 1, fetched.stderr);
    assert.match(
      fetched.stderr,
      /^error: refusing "tiny": alice lists it as 1000 B, but its content is 1048576 B \(manifest from alice\)$/m,
    );
    assert.match(fetched.stderr, /hint: .*--from <username>/);
    assert.deepEqual([...Deno.readDirSync(downloads)], [], "nothing written, not even a part file");
  } finally {
    await serving.stop();
  }
});
