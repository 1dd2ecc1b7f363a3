/** The owner chooser of `fetch`: it offers online owners only, and asks nothing when none is. */
import assert from "node:assert/strict";
import { askForSource } from "../../lib/cli/fetch_command.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import type { Listing } from "../../lib/protocol/messages.ts";

const owner = (name: string, online: boolean, content = "a"): Listing => ({
  owner: name,
  name: "week3.pdf",
  type: "pdf",
  size: 10,
  contentId: content.repeat(64),
  publishedAt: "2026-01-01T00:00:00.000Z",
  online,
  address: online ? "127.0.0.1:7000" : null,
  files: 1,
});

/** A chooser that records its question and answers `answer`. */
function answering(answer: number) {
  const asked: [string, number, number, number][] = [];
  const choose = (message: string, min: number, max: number, preset: number) => {
    asked.push([message, min, max, preset]);
    return Promise.resolve(answer);
  };
  return { asked, choose };
}

Deno.test("chooser - offers the online owners only: their numbers, not the offline ones'", async () => {
  const { asked, choose } = answering(2);
  const owners = [owner("bob", true, "b"), owner("carol", true, "c"), owner("dave", false)];
  const { chosen, onlyChosen } = await askForSource(owners, choose);
  assert.deepEqual(asked, [["Fetch from owner no.", 1, 2, 1]]);
  assert.equal(chosen.owner, "carol");
  assert.equal(onlyChosen, true);
});

Deno.test("chooser - 0 (every source) is offered when the online owners share one content", async () => {
  const { asked, choose } = answering(0);
  const owners = [owner("bob", true), owner("carol", true), owner("dave", false)];
  const { chosen, onlyChosen } = await askForSource(owners, choose);
  assert.deepEqual(asked, [["Fetch from owner no.", 0, 2, 0]]);
  assert.equal(chosen.online, true);
  assert.equal(onlyChosen, false);
});

Deno.test("chooser - with every owner offline it says so and asks nothing", async () => {
  const { asked, choose } = answering(1);
  await assert.rejects(
    askForSource([owner("bob", false), owner("carol", false)], choose),
    (error) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, "UNREACHABLE");
      assert.match(error.message, /every owner of "week3\.pdf" is offline/);
      assert.equal(
        error.hint,
        "run it again once one of them serves (`peer.ts search week3.pdf` shows who is online)",
      );
      return true;
    },
  );
  assert.deepEqual(asked, []);
});
