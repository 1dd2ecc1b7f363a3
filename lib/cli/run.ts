import type { Command } from "commander";
import { reportError, wantsJson } from "./errors.ts";
import { isInstalled } from "../invocation.ts";

/**
 * Runs a program on the process's arguments and exits with the right status.
 * Under `deno task`, which runs from the folder of deno.json, relative paths
 * (files to publish, where to save, `./tracker.db`) still mean the folder the
 * user typed the command in: deno task passes it as INIT_CWD.
 */
export async function runProgram(build: () => Command, args = Deno.args): Promise<never> {
  try {
    // An installed command runs where it is typed, even from inside some other task.
    const callerCwd = isInstalled() ? undefined : Deno.env.get("INIT_CWD");
    if (callerCwd) Deno.chdir(callerCwd);
    // An empty variable (`SHOAL_TRACKER=`) means unset, as in most programs, not "".
    for (const [name, value] of Object.entries(Deno.env.toObject())) {
      if (name.startsWith("SHOAL_") && value === "") Deno.env.delete(name);
    }
    // Built inside the try: reading a broken config file is an error like any other.
    await build().parseAsync(args, { from: "user" });
    Deno.exit(0);
  } catch (error) {
    Deno.exit(reportError(error, { json: wantsJson(args) }));
  }
}
