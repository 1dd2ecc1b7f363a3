import assert from "node:assert/strict";
import { AcceptBackoff } from "../../lib/protocol/accept_backoff.ts";

Deno.test("AcceptBackoff - the wait doubles with each failure in a row, up to the ceiling", () => {
  const backoff = new AcceptBackoff({ firstMs: 5, maxMs: 100 });
  const waits = Array.from({ length: 8 }, () => backoff.fail());
  assert.deepEqual(waits, [5, 10, 20, 40, 80, 100, 100, 100]);
});

Deno.test("AcceptBackoff - a success starts the waits over from the shortest", () => {
  const backoff = new AcceptBackoff({ firstMs: 5, maxMs: 100 });
  backoff.fail();
  backoff.fail();
  backoff.fail();
  backoff.succeed();
  assert.deepEqual([backoff.fail(), backoff.fail()], [5, 10]);
});

Deno.test("AcceptBackoff - by default it waits 5 ms first and never more than a second", () => {
  const backoff = new AcceptBackoff();
  const waits = Array.from({ length: 12 }, () => backoff.fail());
  assert.equal(waits[0], 5);
  assert.equal(Math.max(...waits), 1000);
  assert.equal(waits.at(-1), 1000);
});
