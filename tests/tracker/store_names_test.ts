/** The tracker finds a file's name as `search` does: without regard to case. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { type FileRecord } from "../../lib/tracker/store.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";

const file = (owner: string, name: string): FileRecord => ({
  owner,
  name,
  type: "pdf",
  size: 10,
  contentId: "c".repeat(64),
  publishedAt: "2026-01-01T00:00:00.000Z",
});

async function withStore(work: (store: SqliteTrackerStore) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-store-names-" });
  try {
    using store = SqliteTrackerStore.open(join(dir, "tracker.db"));
    for (const name of ["alice", "bob", "carol"]) await store.createUser(name, "h");
    await work(store);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SqliteTrackerStore - filesNamed finds a name in any case, as search does", () =>
  withStore(async (store) => {
    await store.publish(file("alice", "Week3.PDF"));
    assert.deepEqual((await store.filesNamed("week3.pdf")).map((f) => [f.owner, f.name]), [
      ["alice", "Week3.PDF"],
    ]);
    assert.deepEqual(
      (await store.searchFiles("week3")).map((f) => f.name),
      (await store.filesNamed("WEEK3.pdf")).map((f) => f.name),
    );
  }));

Deno.test("SqliteTrackerStore - filesNamed: names that differ only in case are AMBIGUOUS, listed", () =>
  withStore(async (store) => {
    await store.publish(file("alice", "Notes.pdf"));
    await store.publish(file("bob", "NOTES.pdf"));
    await assert.rejects(() => store.filesNamed("notes.pdf"), (error) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, "AMBIGUOUS");
      assert.match(error.message, /"NOTES\.pdf", "Notes\.pdf"/);
      return true;
    });
  }));

Deno.test("SqliteTrackerStore - filesNamed: the exact spelling wins over other cases", () =>
  withStore(async (store) => {
    await store.publish(file("alice", "Notes.pdf"));
    await store.publish(file("bob", "NOTES.pdf"));
    await store.publish(file("carol", "Notes.pdf"));
    assert.deepEqual((await store.filesNamed("Notes.pdf")).map((f) => f.owner), ["alice", "carol"]);
    assert.deepEqual((await store.filesNamed("NOTES.pdf")).map((f) => f.owner), ["bob"]);
  }));
