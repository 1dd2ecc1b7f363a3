/**
 * Shoal peer: register, log in, publish, fetch and serve files.
 * Run `deno task peer --help` for the commands.
 */
import { buildPeerProgram, defaultToShell } from "./lib/cli/peer_program.ts";
import { runProgram } from "./lib/cli/run.ts";

if (import.meta.main) await runProgram(buildPeerProgram(), defaultToShell(Deno.args));
