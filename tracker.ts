/**
 * Shoal tracker: accounts, sessions and the index of who shares what.
 * Run `deno task tracker` to serve on 0.0.0.0:5050, or `tracker.ts --help`.
 */
import { runProgram } from "./lib/cli/run.ts";
import { buildTrackerProgram } from "./lib/cli/tracker_program.ts";
import { launcherBeside, setInvocation, takeInstalledAs } from "./lib/invocation.ts";

if (import.meta.main) {
  const args = takeInstalledAs(Deno.args);
  setInvocation("tracker", args);
  // A tracker's hint may name a peer command (an account registers first): as the user runs it.
  setInvocation("peer", [], launcherBeside("peer"));
  await runProgram(buildTrackerProgram, args);
}
