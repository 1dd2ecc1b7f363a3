import assert from "node:assert/strict";
import { BatchBudget } from "../../lib/peer/batch_budget.ts";
import { shoalError } from "../helpers/errors.ts";

Deno.test("BatchBudget - a user's batches past the budget are BUSY; others' are not; a release counts once", () => {
  const budget = new BatchBudget(10);
  const first = budget.take("Mallory", 6);
  budget.take("mallory", 4);
  assert.throws(
    () => budget.take("MALLORY", 1),
    shoalError("BUSY", /has 10 bytes of batches.*at most 10\)/),
  );
  const carol = budget.take("carol", 10);
  first();
  first();
  budget.take("mallory", 6);
  assert.throws(() => budget.take("mallory", 1), shoalError("BUSY"));
  carol();
  budget.take("carol", 10);
});
