import assert from "node:assert/strict";
import { delay, sleep } from "../../lib/async/delay.ts";

// Deno's test sanitizers fail a test that leaves a timer running: every test here also checks
// that the wait cleans up after itself, however it ends.

Deno.test("delay - resolves once the time has passed", async () => {
  assert.equal(await delay(1), undefined);
});

Deno.test("delay - an abort during the wait rejects with the signal's reason and clears the timer", async () => {
  const stop = new AbortController();
  const waiting = delay(60_000, { signal: stop.signal });
  const reason = new Error("stopped");
  stop.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
});

Deno.test("delay - a signal aborted before the wait rejects at once", async () => {
  const reason = new Error("already stopped");
  await assert.rejects(delay(60_000, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
});

Deno.test("delay - a signal that never aborts keeps no listener after the wait", async () => {
  const stop = new AbortController();
  await delay(1, { signal: stop.signal });
  // Had the listener stayed, this abort would reject a settled promise: harmless but a leak.
  stop.abort();
});

Deno.test("sleep - answers true when the whole time passed", async () => {
  assert.equal(await sleep(1, new AbortController().signal), true);
});

Deno.test("sleep - answers false, without rejecting, when stopped during or before the wait", async () => {
  const stop = new AbortController();
  const sleeping = sleep(60_000, stop.signal);
  stop.abort();
  assert.equal(await sleeping, false);
  assert.equal(await sleep(60_000, stop.signal), false);
});
