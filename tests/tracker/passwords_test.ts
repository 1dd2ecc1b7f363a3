import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { CHEAP_COST } from "../helpers/tracker.ts";

Deno.test("PasswordHasher - a hash verifies its own password and no other", async () => {
  const hasher = new PasswordHasher({ cost: CHEAP_COST });
  const stored = await hasher.hash("correct horse");
  assert.match(stored, /^scrypt\$1024\$8\$1\$/);
  assert.equal(await hasher.verify("correct horse", stored), true);
  assert.equal(await hasher.verify("wrong horse", stored), false);
  assert.equal(await hasher.verify("correct horse", "not-a-hash"), false);
});

Deno.test("PasswordHasher - never runs more than maxRunning hashes at once", async () => {
  const hasher = new PasswordHasher({ cost: CHEAP_COST, maxRunning: 2, maxQueued: 100 });
  const stored = await hasher.hash("correct horse");
  const checks = Array.from({ length: 40 }, () => hasher.verify("correct horse", stored));
  assert.equal(hasher.running, 2);
  assert.equal(hasher.queued, 38);
  assert.deepEqual(await Promise.all(checks), Array(40).fill(true));
  assert.equal(hasher.peakRunning, 2);
  assert.equal(hasher.running, 0);
  assert.equal(hasher.queued, 0);
});

Deno.test("PasswordHasher - past its queue it answers BUSY with a time to try again", async () => {
  const hasher = new PasswordHasher({ cost: CHEAP_COST, maxRunning: 1, maxQueued: 3 });
  const accepted = Array.from({ length: 4 }, () => hasher.hash("correct horse"));
  await assert.rejects(hasher.hash("correct horse"), (error: unknown) => {
    assert.ok(error instanceof ShoalError, String(error));
    assert.equal(error.code, "BUSY");
    assert.match(error.message, /busy checking passwords; try again in \d+ s$/);
    return true;
  });
  await Promise.all(accepted);
  // Once the queue drains there is room again.
  await hasher.hash("correct horse");
});

Deno.test("PasswordHasher - an unknown user's check costs a real verification", async () => {
  const hasher = new PasswordHasher({ cost: CHEAP_COST, maxRunning: 1 });
  await hasher.verifyDummy("whatever");
  // One hash of a random password, then one verification against it.
  assert.equal(hasher.peakRunning, 1);
});
