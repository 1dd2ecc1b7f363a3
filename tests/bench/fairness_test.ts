import assert from "node:assert/strict";
import { jainIndex, worstExcessWait } from "../../bench/rate_limit.ts";

Deno.test("jainIndex - 1 for equal rates, 1/n when one gets everything, 0.9 for half at half rate", () => {
  assert.equal(jainIndex([5, 5, 5, 5]), 1);
  assert.equal(jainIndex([8, 0, 0, 0]), 0.25);
  assert.ok(Math.abs(jainIndex([2, 2, 2, 2, 1, 1, 1, 1]) - 0.9) < 1e-12);
});

Deno.test("worstExcessWait - place p is due at the p-th finish plus the slack", () => {
  const served = (finishedAt: number) => ({ finishedAt, waited: 0, place: null, servedRate: 1 });
  const queued = (place: number, waited: number) => ({
    finishedAt: 10,
    waited,
    place,
    servedRate: 1,
  });
  // Finishes at 3 and 4 s: place 1 is due by 3.5 s, place 2 by 4.5 s.
  assert.equal(worstExcessWait([served(3), served(4), queued(1, 3.2), queued(2, 4.4)], 0.5), 0);
  assert.ok(Math.abs(worstExcessWait([served(3), served(4), queued(2, 5)], 0.5) - 0.5) < 1e-12);
});
