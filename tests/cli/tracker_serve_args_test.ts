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

Deno.test("tracker serve - `serve admin grant alice` (deno task tracker admin ...) names the command to run", async () => {
  await assert.rejects(
    buildTrackerProgram().parseAsync(["serve", "admin", "grant", "alice"], { from: "user" }),
    new UsageError(
      "serve takes no arguments; run the admin command on its own: `tracker.ts admin grant alice`",
    ),
  );
});

Deno.test("tracker serve - other stray words are a usage error that names them", async () => {
  await assert.rejects(
    buildTrackerProgram().parseAsync(["serve", "now"], { from: "user" }),
    new UsageError("serve takes no arguments (got now)"),
  );
});

Deno.test("tracker serve --name - a name that cannot be one DNS label is a usage error", async () => {
  for (const name of ["", "x".repeat(64), "lab\u0007"]) {
    await assert.rejects(
      buildTrackerProgram().parseAsync(["serve", "--name", name], { from: "user" }),
      (error) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, /^--name: expected 1 to 63 bytes/);
        return true;
      },
    );
  }
});
