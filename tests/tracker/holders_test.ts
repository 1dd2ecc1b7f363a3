/**
 * The tracker's `holders`, `sources` and `members` over the protocol: holders
 * are sampled at random (every holder gets named, not always the first few by
 * name), and a hostile peer's `members` cannot grow the tracker's tables.
 */
import assert from "node:assert/strict";
import { MAX_BATCH_IDS, MAX_HOLDERS_PER_ID, MAX_SOURCES } from "../../lib/protocol/messages.ts";
import type { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { shoalError } from "../helpers/errors.ts";
import { startTestTracker } from "../helpers/tracker.ts";

const FILE_ID = "ef".repeat(32);
const FOLDER_ID = "cd".repeat(32);
/** The content id of a test's `n`th file. */
const idOf = (n: number) => n.toString(16).padStart(64, "0");

/** `count` online accounts (u000, u001, ...) publishing `contentId`, as a folder of `files`. */
async function holders(
  store: SqliteTrackerStore,
  count: number,
  contentId: string,
  files = 1,
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `u${String(i).padStart(3, "0")}`);
  for (const [i, owner] of names.entries()) {
    await store.createUser(owner, "not-a-real-hash");
    await store.setPeerOnline(owner, "127.0.0.1", 2000 + i, null);
    await store.publish({
      owner,
      name: "shared",
      type: files > 1 ? "folder" : "iso",
      size: 1,
      contentId,
      publishedAt: new Date().toISOString(),
      files,
    });
  }
  return names;
}

/** Calls `ask` until the owners it returns together are `all`, at most `rounds` times. */
async function untilAllNamed(
  all: string[],
  rounds: number,
  ask: () => Promise<string[]>,
): Promise<void> {
  const seen = new Set<string>();
  for (let round = 0; round < rounds && seen.size < all.length; round++) {
    for (const owner of await ask()) seen.add(owner);
  }
  assert.deepEqual([...seen].sort(), all);
}

Deno.test("holders: 20 holders of one file, 8 a request: repeated requests name every one", async () => {
  await using running = await startTestTracker();
  const owners = await holders(running.store, 20, FILE_ID);
  const bob = await running.login("bob");
  // Each is left out of one reply with probability 0.6, of 200 with about 1e-44.
  await untilAllNamed(owners, 200, async () => {
    const { sources, holds } = await bob.call("holders", { contentIds: [FILE_ID] });
    assert.equal(holds[0].length, MAX_HOLDERS_PER_ID);
    return holds[0].map((at) => sources[at].owner);
  });
});

Deno.test("holders: the files of one folder held by many get the same few sources in one reply", async () => {
  await using running = await startTestTracker();
  const files = Array.from({ length: 50 }, (_, i) => idOf(i + 1));
  const owners: string[] = [];
  for (let i = 0; i < 30; i++) {
    const owner = `f${String(i).padStart(3, "0")}`;
    owners.push(owner);
    await running.store.createUser(owner, "not-a-real-hash");
    await running.store.setPeerOnline(owner, "127.0.0.1", 3000 + i, null);
    await running.store.addFolderMembers(owner, FOLDER_ID, files);
    await running.store.publish({
      owner,
      name: "course",
      type: "folder",
      size: 1,
      contentId: FOLDER_ID,
      publishedAt: new Date().toISOString(),
      files: files.length,
    });
  }
  const bob = await running.login("bob");
  const { sources, holds } = await bob.call("holders", { contentIds: files });
  // Sampled apart for each file, 50 files × 8 of 30 would name nearly all 30 accounts, and past
  // MAX_SOURCES a batch's later files would find none.
  assert.equal(sources.length, MAX_HOLDERS_PER_ID);
  for (const hold of holds) assert.deepEqual([...hold].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
  await untilAllNamed(owners, 200, async () => {
    const reply = await bob.call("holders", { contentIds: files.slice(0, 1) });
    return reply.sources.map((source) => source.owner);
  });
});

Deno.test("sources: 250 owners, 200 a reply: repeated requests name every one", async () => {
  await using running = await startTestTracker();
  const owners = await holders(running.store, 250, FILE_ID);
  const bob = await running.login("bob");
  // Each is left out of one reply with probability 0.2, of 40 with about 1e-28.
  await untilAllNamed(owners, 40, async () => {
    const { sources, total } = await bob.call("sources", { contentId: FILE_ID });
    assert.equal(sources.length, MAX_SOURCES);
    assert.equal(total, 250);
    return sources.map((source) => source.owner);
  });
});

Deno.test("members: a hostile peer's batches past its folder's file count are LIMIT_EXCEEDED", async () => {
  await using running = await startTestTracker();
  const mallory = await running.login("mallory");
  await running.store.setPeerOnline("mallory", "127.0.0.1", 2000, null);
  // The members of a folder of 2 files, then its publish (what a peer does).
  await mallory.call("members", { contentId: FOLDER_ID, files: [idOf(1), idOf(2)] });
  await mallory.call("publish", {
    name: "course",
    type: "folder",
    size: 2,
    contentId: FOLDER_ID,
    files: 2,
  });
  // Then a million more ids it claims the folder holds, 4,096 a batch: the first is refused.
  const batch = Array.from({ length: MAX_BATCH_IDS }, (_, i) => idOf(100 + i));
  await assert.rejects(
    mallory.call("members", { contentId: FOLDER_ID, files: batch }),
    shoalError("LIMIT_EXCEEDED", /published with 2 files/),
  );
  // More than a batch may carry is refused as a message before the tracker reads it.
  await assert.rejects(
    mallory.call("members", { contentId: FOLDER_ID, files: [...batch, idOf(1)] }),
    shoalError("BAD_MESSAGE"),
  );
  // Members sent, then a publication that claims fewer files: refused, and the members forgotten.
  await mallory.call("members", { contentId: idOf(7), files: batch.slice(0, 10) });
  await assert.rejects(
    mallory.call("publish", { name: "lie", type: "iso", size: 1, contentId: idOf(7) }),
    shoalError("LIMIT_EXCEEDED", /10 member files/),
  );
  const bob = await running.login("bob");
  const { holds } = await bob.call("holders", { contentIds: [idOf(100), idOf(2)] });
  assert.deepEqual(holds.map((hold) => hold.length), [0, 1]);
});
