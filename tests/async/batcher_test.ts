import assert from "node:assert/strict";
import { Batcher } from "../../lib/async/batcher.ts";

/** A fetch that records each batch and waits for the test to let it answer. */
function heldFetch() {
  const batches: string[][] = [];
  const gates: PromiseWithResolvers<void>[] = [];
  const fetch = async (keys: string[]) => {
    batches.push(keys);
    const gate = Promise.withResolvers<void>();
    gates.push(gate);
    await gate.promise;
    return new Map(keys.filter((key) => key !== "missing").map((key) => [key, key.toUpperCase()]));
  };
  return { batches, gates, fetch };
}

Deno.test("Batcher - a key asked alone goes out at once; keys asked meanwhile go out together next", async () => {
  const { batches, gates, fetch } = heldFetch();
  const batcher = new Batcher(fetch);
  const first = batcher.get("a");
  assert.deepEqual(batches, [["a"]]);
  const rest = ["b", "c", "missing", "b"].map((key) => batcher.get(key));
  assert.equal(batches.length, 1, "nothing more goes out while a call is under way");
  gates[0].resolve();
  assert.equal(await first, "A");
  await Promise.resolve();
  assert.deepEqual(batches[1], ["b", "c", "missing"], "the waiting keys, each once");
  gates[1].resolve();
  assert.deepEqual(await Promise.all(rest), ["B", "C", undefined, "B"]);
});

Deno.test("Batcher - a key asked again while its call is under way is asked afresh in the next", async () => {
  const { batches, gates, fetch } = heldFetch();
  const batcher = new Batcher(fetch);
  const early = batcher.get("a");
  const late = batcher.get("a");
  const later = batcher.get("a");
  assert.notEqual(early, late, "the first call may have read the answer before the question");
  assert.equal(late, later, "asked twice before the next call: asked once");
  gates[0].resolve();
  await early;
  await Promise.resolve();
  assert.deepEqual(batches, [["a"], ["a"]]);
  gates[1].resolve();
  assert.equal(await late, "A");
});

Deno.test("Batcher - a failed call rejects its batch only, and later keys still go out", async () => {
  let calls = 0;
  const batcher = new Batcher(async (keys: string[]) => {
    calls++;
    await Promise.resolve();
    if (calls === 1) throw new Error("database away");
    return new Map(keys.map((key) => [key, key.length]));
  });
  await assert.rejects(batcher.get("first"), /database away/);
  assert.equal(await batcher.get("second"), 6);
});

Deno.test("Batcher - no call holds more than maxBatch keys", async () => {
  const { batches, gates, fetch } = heldFetch();
  const batcher = new Batcher(fetch, 2);
  const answers = ["a", "b", "c", "d", "e"].map((key) => batcher.get(key));
  for (let i = 0; i < 3; i++) {
    gates[i].resolve();
    await answers[Math.min(4, 2 * i)];
    await Promise.resolve();
  }
  assert.deepEqual(batches, [["a"], ["b", "c"], ["d", "e"]]);
  assert.deepEqual(await Promise.all(answers), ["A", "B", "C", "D", "E"]);
});

Deno.test("Batcher - a batch that fails for one key's sake fails only that key's caller, where isolate says so", async () => {
  const { batches, gates, fetch: held } = heldFetch();
  const fetch = async (keys: string[]) => {
    const found = await held(keys);
    if (keys.includes("bad")) throw new Error("bad key");
    return found;
  };
  const isolated = new Batcher(fetch, 1000, (error) => (error as Error).message === "bad key");
  const first = isolated.get("a");
  const rest = ["b", "bad", "c"].map((key) => isolated.get(key));
  for (const promise of rest) promise.catch(() => {});
  gates[0].resolve();
  assert.equal(await first, "A");
  // The batch of three fails, then each is asked alone (bounded: 1 + 1 + 3 calls).
  for (let i = 1; i < 5; i++) {
    await untilCalls(gates, i + 1);
    gates[i].resolve();
  }
  assert.equal(await rest[0], "B");
  await assert.rejects(rest[1], /bad key/);
  assert.equal(await rest[2], "C");
  assert.deepEqual(batches.slice(1), [["b", "bad", "c"], ["b"], ["bad"], ["c"]]);
  // Without isolate (the database away, say), everyone in the batch sees the failure.
  const plain = heldFetch();
  const together = new Batcher(async (keys: string[]) => {
    const found = await plain.fetch(keys);
    if (keys.includes("bad")) throw new Error("bad key");
    return found;
  });
  const one = together.get("a");
  const others = ["b", "bad"].map((key) => together.get(key));
  for (const promise of others) promise.catch(() => {});
  plain.gates[0].resolve();
  await one;
  await untilCalls(plain.gates, 2);
  plain.gates[1].resolve();
  await assert.rejects(others[0], /bad key/);
  await assert.rejects(others[1], /bad key/);
});

/** Lets microtasks run until `count` calls have been made (a bounded number of turns). */
async function untilCalls(gates: unknown[], count: number): Promise<void> {
  for (let turn = 0; turn < 100 && gates.length < count; turn++) await Promise.resolve();
  assert.ok(gates.length >= count, `${count} calls made (${gates.length})`);
}
