import assert from "node:assert/strict";

/**
 * Waits until `check` holds, polling every 10 ms, and fails naming `what`
 * after 500 tries: a bounded wait for state another task changes.
 */
export async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let tries = 0; tries < 500; tries++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`still not true after 500 tries: ${what}`);
}
