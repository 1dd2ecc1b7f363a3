import assert from "node:assert/strict";
import { matchingNames, spellings } from "../../lib/peer/name_match.ts";

const same = (name: string) => name;

Deno.test("matchingNames - a name in another case finds the download, as fetch and search do", () => {
  assert.deepEqual(matchingNames(["Big", "notes"], "big", same), ["Big"]);
  assert.deepEqual(matchingNames(["Big", "notes"], "NOTES", same), ["notes"]);
  assert.deepEqual(matchingNames(["Big"], "small", same), []);
});

Deno.test("matchingNames - the exact spelling wins over other cases", () => {
  assert.deepEqual(matchingNames(["Big", "big"], "big", same), ["big"]);
});

Deno.test("matchingNames - several other spellings are all returned, so the caller can say it is ambiguous", () => {
  const found = matchingNames(["Big", "BIG", "notes"], "big", same);
  assert.deepEqual(found, ["Big", "BIG"]);
  assert.deepEqual(spellings(found, same), ["Big", "BIG"]);
});
