/** `deno task tracker` always means serve: an admin command typed after it is pointed elsewhere. */
import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli/errors.ts";
import { buildTrackerProgram } from "../../lib/cli/tracker_program.ts";

Deno.test("tracker serve - `serve ping alice` (deno task tracker ping alice) names the admin command to run", async () => {
  await assert.rejects(
    buildTrackerProgram().parseAsync(["serve", "ping", "alice"], { from: "user" }),
    (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(
        error.message,
        "serve takes no arguments; run the admin command on its own: `tracker.ts ping alice`",
      );
      return true;
    },
  );
});

Deno.test("tracker serve - other stray words are a usage error that names them", async () => {
  await assert.rejects(
    buildTrackerProgram().parseAsync(["serve", "now"], { from: "user" }),
    new UsageError("serve takes no arguments (got now)"),
  );
});
