import assert from "node:assert/strict";
import { join } from "node:path";
import {
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";

Deno.test("three peers fetch a 50 MB file from one source at the same time", async () => {
  await using dir = await tempDir();
  const tracker = await startTracker({ db: join(dir.path, "tracker.db") });
  const owner = new TestPeer(join(dir.path, "owner"), tracker.address);
  const source = join(dir.path, "dataset.bin");
  await writeRandomFile(source, 50 * 1000 * 1000);
  await owner.signUp("owner");
  await owner.ok(["publish", "dataset", source]);
  const serving = await owner.serve();
  try {
    const fetchers = ["ann", "ben", "cai"].map((name) =>
      new TestPeer(join(dir.path, name), tracker.address)
    );
    await Promise.all(fetchers.map((peer, i) => peer.signUp(["ann", "ben", "cai"][i])));
    const results = await Promise.all(
      fetchers.map((peer) =>
        peer.ok([
          "fetch",
          "dataset",
          "--from",
          "owner",
          "--json",
          "--output",
          join(peer.home, "dataset.bin"),
        ])
      ),
    );
    const expected = await sha256File(source);
    for (const [i, peer] of fetchers.entries()) {
      const summary = JSON.parse(results[i]);
      assert.equal(summary.size, 50_000_000);
      assert.equal(summary.sources[0].owner, "owner");
      assert.equal(await sha256File(join(peer.home, "dataset.bin")), expected);
    }
  } finally {
    await serving.stop();
    await tracker.daemon.stop();
  }
});
