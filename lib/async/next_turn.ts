/**
 * One turn of the event loop, for a long synchronous loop to let timers,
 * signal listeners (Ctrl-C) and I/O in now and then.
 */
import { setImmediate } from "node:timers";

/**
 * Resolves on the next turn of the event loop, after its timers and I/O.
 * `setTimeout(fn, 0)` is clamped to about 4 ms once nested (some 2.5 ms a
 * turn on the benchmark machine: 100 ms for 40 turns); `setImmediate` is not
 * (some 25 µs a turn).
 *
 * @example
 * ```ts
 * for (const [i, path] of paths.entries()) {
 *   hashSync(path);
 *   if (i % 256 === 255) await nextTurn();
 * }
 * ```
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
