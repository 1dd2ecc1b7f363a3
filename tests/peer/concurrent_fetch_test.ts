/** One source, several downloaders at once, all in this process over TLS. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { fetchFile, otherOwners, pickSource } from "../../lib/peer/fetch.ts";
import { heldSource, localPeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

Deno.test("three peers fetch a 50 MB file from one source at the same time", async () => {
  await using dir = await tempDir();
  const tracker = await startLocalTracker(dir.path);
  try {
    using owner = await localPeer(dir.path, "owner", tracker.address);
    const source = join(dir.path, "dataset.bin");
    await writeRandomFile(source, 50 * 1000 * 1000);
    // A source that holds nothing back: it serves like `peer.ts serve`.
    await using _serving = await heldSource(owner, source, "dataset", Infinity);
    const fetchers = await Promise.all(
      ["ann", "ben", "cai"].map((name) => localPeer(dir.path, name, tracker.address)),
    );
    try {
      // As `peer.ts fetch dataset --from owner --json --output ...` does.
      const results = await deadline(
        Promise.all(fetchers.map(async (peer) => {
          const { owners } = await otherOwners(peer.home, peer.endpoint, "dataset", "owner");
          const chosen = pickSource(owners, "owner");
          return await fetchFile(peer.home, peer.endpoint, chosen, {
            onlyChosen: true,
            output: join(dir.path, `${peer.username}.bin`),
            serveHost: "127.0.0.1",
          });
        })),
        120_000,
        { what: "three fetches of 50 MB" },
      );
      const expected = await sha256File(source);
      for (const [i, peer] of fetchers.entries()) {
        const { summary } = results[i];
        assert.equal(summary.size, 50_000_000);
        assert.equal(summary.sources[0].owner, "owner");
        assert.equal(await sha256File(join(dir.path, `${peer.username}.bin`)), expected);
      }
    } finally {
      for (const peer of fetchers) peer[Symbol.dispose]();
    }
  } finally {
    await tracker.stop();
  }
});
