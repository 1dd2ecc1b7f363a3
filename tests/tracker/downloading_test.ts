import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { MAX_DOWNLOADING_PER_CONNECTION } from "../../lib/tracker/partial_sources.ts";
import { startTestTracker } from "../helpers/tracker.ts";
import { eventually } from "../helpers/eventually.ts";

/** The n-th of many distinct content ids. */
const contentId = (n: number) => n.toString(16).padStart(64, "0");

Deno.test("50,000 downloading on one connection are refused past the cap, and forgotten on close", async () => {
  await using running = await startTestTracker();
  const mallory = await running.login("mallory");
  const replies = await Promise.allSettled(
    Array.from(
      { length: 50_000 },
      (_, n) => mallory.call("downloading", { contentId: contentId(n), port: 4000 }),
    ),
  );
  const accepted = replies.filter((reply) => reply.status === "fulfilled").length;
  assert.equal(accepted, MAX_DOWNLOADING_PER_CONNECTION);
  const refused = replies.find((reply) => reply.status === "rejected");
  assert.ok(refused?.status === "rejected" && refused.reason instanceof ShoalError);
  assert.equal(refused.reason.code, "BUSY");
  assert.match(refused.reason.message, /finish one first/);
  assert.equal(running.tracker.partialSourceCount, MAX_DOWNLOADING_PER_CONNECTION);

  // The same content again is no new entry, and the connection still works.
  await mallory.call("downloading", { contentId: contentId(0), port: 4001 });
  assert.equal(running.tracker.partialSourceCount, MAX_DOWNLOADING_PER_CONNECTION);

  mallory.close();
  await eventually(() => running.tracker.partialSourceCount === 0, "the entries are forgotten");
});

Deno.test("past the tracker's total of partial sources, downloading still answers but lists nobody more", async () => {
  await using running = await startTestTracker({ maxPartialSources: 3 });
  const alice = await running.login("alice");
  for (let n = 0; n < 3; n++) {
    await alice.call("downloading", { contentId: contentId(n), port: 4000 });
  }
  const bob = await running.login("bob");
  const { address } = await bob.call("downloading", { contentId: contentId(0), port: 4100 });
  assert.equal(address, "127.0.0.1:4100");
  assert.equal(running.tracker.partialSourceCount, 3);
  const carol = await running.login("carol");
  const { sources } = await carol.call("sources", { contentId: contentId(0) });
  assert.deepEqual(sources.map((source) => source.owner), ["alice"]);
});

Deno.test("a partial source is listed until its connection closes", async () => {
  await using running = await startTestTracker();
  const alice = await running.login("alice");
  await alice.call("downloading", { contentId: contentId(7), port: 4000 });
  const bob = await running.login("bob");
  const before = await bob.call("sources", { contentId: contentId(7) });
  assert.deepEqual(before.sources.map((s) => [s.owner, s.address, s.partial]), [
    ["alice", "127.0.0.1:4000", true],
  ]);
  alice.close();
  await eventually(() => running.tracker.partialSourceCount === 0, "alice is forgotten");
  const after = await bob.call("sources", { contentId: contentId(7) });
  assert.deepEqual(after.sources, []);
});
