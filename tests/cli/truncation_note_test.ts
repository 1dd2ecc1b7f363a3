import assert from "node:assert/strict";
import { truncationNote } from "../../lib/cli/fetch_command.ts";

Deno.test("a list the tracker cut short says how much of it is shown, and what to do", () => {
  assert.equal(
    truncationNote(400, 4_400, "narrow the search"),
    "showing 400 of 4,400; narrow the search",
  );
});

Deno.test("a whole list needs no note", () => {
  assert.equal(truncationNote(3, 3, "narrow the search"), null);
  assert.equal(truncationNote(0, 0, "narrow the search"), null);
});
