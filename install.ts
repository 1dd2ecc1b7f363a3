/**
 * Installs the commands `shoal` and `shoal-tracker` (`deno task install
 * [--root DIR]`) or removes them (`deno task uninstall [--root DIR]`).
 */
import { fileURLToPath } from "node:url";
import { buildInstallProgram } from "./lib/cli/install.ts";
import { runProgram } from "./lib/cli/run.ts";

if (import.meta.main) {
  await runProgram(() => buildInstallProgram(fileURLToPath(new URL(".", import.meta.url))));
}
