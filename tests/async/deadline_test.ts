import assert from "node:assert/strict";
import { abortable } from "../../lib/async/abortable.ts";
import { deadline, DeadlineError } from "../../lib/async/deadline.ts";
import { ShoalError, toShoalError } from "../../lib/protocol/errors.ts";
import { trackTimers } from "../helpers/timers.ts";

/** A promise that never settles. */
const never = <T>() => new Promise<T>(() => {});

Deno.test("deadline - a promise settled in time gives its value, and the timer is cleared", async () => {
  using timers = trackTimers();
  assert.equal(await deadline(Promise.resolve(42), 60_000), 42);
  assert.equal(timers.pending, 0);
});

Deno.test("deadline - a promise that fails in time fails with its own error", async () => {
  using timers = trackTimers();
  const failure = new Error("refused");
  await assert.rejects(deadline(Promise.reject(failure), 60_000), (e) => e === failure);
  assert.equal(timers.pending, 0);
});

Deno.test("deadline - a promise past its time rejects with a DeadlineError naming what took too long, which is a TIMEOUT", async () => {
  await assert.rejects(
    deadline(never(), 1, { what: "the handshake" }),
    (error) =>
      error instanceof DeadlineError && error.message === "the handshake took over 1 ms" &&
      toShoalError(error).code === "TIMEOUT",
  );
});

Deno.test("deadline - an abort stops the wait at once with the signal's reason", async () => {
  using timers = trackTimers();
  const stop = new AbortController();
  const waiting = deadline(never(), 60_000, { signal: stop.signal });
  const reason = new ShoalError("CANCELLED", "stopped");
  stop.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  assert.equal(timers.pending, 0);
});

Deno.test("abortable - without an abort, settles as the promise does", async () => {
  const stop = new AbortController();
  assert.equal(await abortable(Promise.resolve("pong"), stop.signal), "pong");
  assert.equal(await abortable(Promise.resolve("pong"), undefined), "pong");
});

Deno.test("abortable - an abort rejects with its reason, and the promise failing later is not left unhandled", async () => {
  const stop = new AbortController();
  const late = Promise.withResolvers<string>();
  const waiting = abortable(late.promise, stop.signal);
  const reason = new Error("cancelled");
  stop.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  // An unhandled rejection would fail this test.
  late.reject(new Error("came late"));
  await Promise.resolve();
});

Deno.test("abortable - a signal aborted already rejects at once", async () => {
  const reason = new Error("cancelled before");
  await assert.rejects(abortable(never(), AbortSignal.abort(reason)), (e) => e === reason);
});
