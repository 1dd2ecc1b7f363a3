/**
 * Shoal peer: register, log in, publish, fetch and serve files.
 * Run `deno task peer --help` for the commands.
 */
import { addCompletionsCommand } from "./lib/cli/completions.ts";
import { withPeerExamples } from "./lib/cli/help.ts";
import { buildPeerProgram, defaultToShell } from "./lib/cli/peer_program.ts";
import { addShellCommand } from "./lib/cli/peer_shell.ts";
import { runProgram } from "./lib/cli/run.ts";
import { homeFromArgs } from "./lib/cli/peer_context.ts";
import { loadConfig } from "./lib/peer/config.ts";
import {
  completionNames,
  launcherBeside,
  setInvocation,
  takeInstalledAs,
} from "./lib/invocation.ts";

if (import.meta.main) {
  const typed = takeInstalledAs(Deno.args);
  setInvocation("peer", typed);
  // A peer's hint may name a tracker command (start one): as the user would run it.
  setInvocation("tracker", [], launcherBeside("tracker"));
  const args = defaultToShell(typed);
  await runProgram(() => {
    const config = loadConfig(homeFromArgs(args));
    const program = addShellCommand(buildPeerProgram(undefined, config), config);
    addCompletionsCommand(program, completionNames("peer"));
    return withPeerExamples(program);
  }, args);
}
