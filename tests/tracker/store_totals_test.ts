import assert from "node:assert/strict";
import { type TrackerStats } from "../../lib/tracker/store.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";

/** What stats() must say: counted the slow way, straight from the rows. */
async function counted(store: SqliteTrackerStore): Promise<TrackerStats> {
  const peers = await store.listPeers();
  const files = await store.allFiles();
  return {
    accounts: (await store.listAccounts()).length,
    peers: peers.length,
    peersOnline: peers.filter((peer) => peer.online).length,
    shares: files.length,
    bytesPublished: files.reduce((sum, file) => sum + file.size, 0),
  };
}

Deno.test("SqliteTrackerStore - stats() (kept by triggers) match the rows through every change", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-totals-" });
  try {
    using store = SqliteTrackerStore.open(`${dir}/tracker.db`);
    const file = (owner: string, name: string, size: number) => ({
      owner,
      name,
      type: "bin",
      size,
      contentId: "c".repeat(64),
      publishedAt: new Date().toISOString(),
    });
    const steps: [string, () => Promise<unknown>][] = [
      ["users", async () => {
        for (const u of ["alice", "bob", "carl"]) await store.createUser(u, "h");
      }],
      ["online", async () => {
        for (const [i, u] of ["alice", "bob"].entries()) {
          await store.setPeerOnline(u, "10.0.0.1", i, null);
        }
      }],
      ["online again", () => store.setPeerOnline("alice", "10.0.0.1", 5, null)],
      ["publish", async () => {
        await store.publish(file("alice", "a", 100));
        await store.publish(file("bob", "b", 7));
      }],
      ["replace", () => store.publish(file("alice", "a", 250))],
      ["unpublish", () => store.unpublish("bob", "b")],
      ["offline", () => store.setPeerOffline("bob")],
      ["restore", () => store.restorePeer("bob", "10.0.0.1", 1, null)],
      ["all offline", () => store.joinPresence()],
      ["delete", async () => {
        await store.setPeerOnline("alice", "10.0.0.1", 5, null);
        await store.deleteUser("alice");
      }],
    ];
    for (const [what, step] of steps) {
      await step();
      assert.deepEqual(await store.stats(), await counted(store), what);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
