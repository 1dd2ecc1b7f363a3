import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { discover, resolvePeer } from "../../lib/tracker/admin.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";

async function withPeers(work: (store: SqliteTrackerStore) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-admin-test-" });
  try {
    using store = SqliteTrackerStore.open(`${dir}/tracker.db`);
    for (
      const [name, host, port] of [["alice", "10.0.0.2", 4000], ["bob", "10.0.0.3", 4000], [
        "carl",
        "10.0.0.3",
        4001,
      ]] as const
    ) {
      await store.createUser(name, "scrypt$hash");
      await store.setPeerOnline(name, host, port, null);
    }
    await work(store);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const code = (expected: string) => (error: unknown) =>
  error instanceof ShoalError && error.code === expected;

Deno.test("resolvePeer - finds a peer by username in any letter case", () =>
  withPeers(async (store) => {
    assert.equal((await resolvePeer(store, "ALICE")).username, "alice");
  }));

Deno.test("resolvePeer - finds a peer by host alone when it is the only one there", () =>
  withPeers(async (store) => {
    assert.equal((await resolvePeer(store, "10.0.0.2")).username, "alice");
  }));

Deno.test("resolvePeer - host:port picks one of several peers on a host", () =>
  withPeers(async (store) => {
    assert.equal((await resolvePeer(store, "10.0.0.3:4001")).username, "carl");
  }));

Deno.test("resolvePeer - a host shared by several peers is ambiguous and names them", () =>
  withPeers(async (store) => {
    await assert.rejects(() => resolvePeer(store, "10.0.0.3"), code("AMBIGUOUS"));
    await assert.rejects(() => resolvePeer(store, "10.0.0.3"), /bob, carl/);
  }));

Deno.test("resolvePeer - an unknown name or address is not found", () =>
  withPeers(async (store) => {
    await assert.rejects(() => resolvePeer(store, "zed"), code("NOT_FOUND"));
    await assert.rejects(() => resolvePeer(store, "10.9.9.9:1"), code("NOT_FOUND"));
  }));

Deno.test("discover - a user who never served still has their files listed", () =>
  withPeers(async (store) => {
    await store.createUser("dana", "scrypt$hash");
    await store.publish({
      owner: "dana",
      name: "thesis",
      type: "pdf",
      size: 10,
      contentId: "c".repeat(64),
      publishedAt: "2026-01-01T00:00:00.000Z",
    });
    const { peer, files } = await discover(store, "Dana");
    assert.equal(peer, null);
    assert.deepEqual(files.map((f) => f.name), ["thesis"]);
  }));
