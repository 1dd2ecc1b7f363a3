/** Validators for the errors a test expects. */
import assert from "node:assert/strict";
import { type ErrorCode, ShoalError } from "../../lib/protocol/errors.ts";

/**
 * A validator for `assert.throws` / `assert.rejects`: a ShoalError with
 * `code`, and with a message matching `pattern` when one is given.
 *
 * @example
 * ```ts
 * await assert.rejects(client.call("lookup", { name: "" }), shoalError("INVALID_INPUT"));
 * ```
 */
export function shoalError(code: ErrorCode, pattern?: RegExp): (error: unknown) => boolean {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ShoalError, `expected a ShoalError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}
