/**
 * A test waiting on a command that never ends fails with a message naming
 * it, instead of hanging the suite: the helpers' commands have deadlines.
 */
import assert from "node:assert/strict";
import { eventually } from "./helpers/eventually.ts";
import { runCommand } from "./helpers/processes.ts";

Deno.test("runCommand - a command still running at its deadline is killed, and the error names it", async () => {
  // An argument no other process here has, to find this one afterwards.
  const seconds = "600.4242";
  await assert.rejects(
    runCommand("sleep", [seconds], { timeoutMs: 200 }),
    (error: Error) => error.message === `sleep ${seconds} (hung? killed) took over 200 ms`,
  );
  const running = async () => {
    const found = await new Deno.Command("pgrep", { args: ["-f", `^sleep ${seconds}$`] }).output();
    return found.code === 0;
  };
  await eventually(async () => !await running(), "the hung command to be killed", { everyMs: 20 });
});
