import type { Command } from "commander";
import { reportError } from "./errors.ts";

/** Runs a program on the process's arguments and exits with the right status. */
export async function runProgram(program: Command, args = Deno.args): Promise<never> {
  try {
    await program.parseAsync(args, { from: "user" });
    Deno.exit(0);
  } catch (error) {
    Deno.exit(reportError(error));
  }
}
