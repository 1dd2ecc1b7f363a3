/**
 * Shoal peer: register, log in, publish, fetch and serve files.
 * Run `deno task peer --help` for the commands.
 */
import { buildPeerProgram, defaultToShell } from "./lib/cli/peer_program.ts";
import { addShellCommand } from "./lib/cli/peer_shell.ts";
import { runProgram } from "./lib/cli/run.ts";

if (import.meta.main) {
  await runProgram(addShellCommand(buildPeerProgram()), defaultToShell(Deno.args));
}
