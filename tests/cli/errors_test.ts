import assert from "node:assert/strict";
import { hintFor } from "../../lib/cli/errors.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";

Deno.test("hintFor - a taken username says what to do next", () => {
  const error = new ShoalError("USERNAME_TAKEN", 'the username "alice" is already taken');
  assert.equal(
    hintFor(error),
    "choose another name, or run `peer.ts login <username>` if it is yours",
  );
});

Deno.test("hintFor - an error's own hint wins over its code's", () => {
  const error = new ShoalError("AUTH_REQUIRED", "not logged in", { hint: "log in as bob" });
  assert.equal(hintFor(error), "log in as bob");
});
