import assert from "node:assert/strict";
import { delay, sleep } from "../../lib/async/delay.ts";
import { trackTimers } from "../helpers/timers.ts";

Deno.test("delay - resolves once the time has passed", async () => {
  assert.equal(await delay(1), undefined);
});

Deno.test("delay - an abort during the wait rejects with the signal's reason and clears the timer", async () => {
  using timers = trackTimers();
  const stop = new AbortController();
  const waiting = delay(60_000, { signal: stop.signal });
  const reason = new Error("stopped");
  stop.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  assert.equal(timers.pending, 0);
});

Deno.test("delay - a signal aborted before the wait rejects at once", async () => {
  using timers = trackTimers();
  const reason = new Error("already stopped");
  await assert.rejects(delay(60_000, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
  assert.equal(timers.pending, 0);
});

Deno.test("delay - a signal that does not abort during the wait keeps no listener after it", async () => {
  const stop = new AbortController();
  let listeners = 0;
  const add = stop.signal.addEventListener.bind(stop.signal);
  const remove = stop.signal.removeEventListener.bind(stop.signal);
  stop.signal.addEventListener = (...args: Parameters<typeof add>) => (listeners++, add(...args));
  stop.signal.removeEventListener = (...args: Parameters<typeof remove>) => (
    listeners--, remove(...args)
  );
  await delay(1, { signal: stop.signal });
  assert.equal(listeners, 0);
});

Deno.test("sleep - answers true when the whole time passed", async () => {
  assert.equal(await sleep(1, new AbortController().signal), true);
});

Deno.test("sleep - answers false, without rejecting, when stopped during or before the wait", async () => {
  using timers = trackTimers();
  const stop = new AbortController();
  const sleeping = sleep(60_000, stop.signal);
  stop.abort();
  assert.equal(await sleeping, false);
  assert.equal(await sleep(60_000, stop.signal), false);
  assert.equal(timers.pending, 0);
});
