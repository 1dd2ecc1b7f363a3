import assert from "node:assert/strict";

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** How many times `check` is asked before the wait fails. @default 500 */
  tries?: number;
  /** The pause between two tries. @default 10 */
  everyMs?: number;
}

/**
 * Waits until `check` holds, asking it every `everyMs`, and fails naming
 * `what` after `tries` tries: a bounded wait for state another task (or
 * process) changes. `what` may be a function, to describe the state as it
 * was at the last try.
 *
 * @example
 * ```ts
 * await eventually(() => store.getPeer("alice")?.online === true, "alice is online");
 * ```
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  options: EventuallyOptions = {},
): Promise<void> {
  const tries = options.tries ?? 500;
  for (let tried = 0; tried < tries; tried++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 10));
  }
  assert.fail(`still not true after ${tries} tries: ${typeof what === "string" ? what : what()}`);
}
