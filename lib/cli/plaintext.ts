import { type Command, Option } from "commander";
import { parseBoolean } from "../peer/config.ts";
import { UsageError } from "./errors.ts";

/**
 * `--insecure-plaintext`, the same on both programs. Its default comes from
 * SHOAL_INSECURE_PLAINTEXT, read as a boolean ("0" and "false" mean TLS on,
 * which commander's own env support would read as on), else from `fallback`
 * (the config file); `--no-insecure-plaintext` turns TLS back on.
 */
export function addPlaintextOptions<C extends Command>(command: C, fallback = false): C {
  const env = Deno.env.get("SHOAL_INSECURE_PLAINTEXT");
  let preset = fallback;
  if (env) {
    try {
      preset = parseBoolean(env);
    } catch {
      throw new UsageError(`SHOAL_INSECURE_PLAINTEXT="${env}" is neither true nor false`);
    }
  }
  return command
    .addOption(
      new Option(
        "--insecure-plaintext",
        "turn TLS off (for debugging and benchmarks only: passwords and files cross the network in clear; env: SHOAL_INSECURE_PLAINTEXT)",
      ).default(preset),
    )
    .addOption(
      new Option("--no-insecure-plaintext", "keep TLS on, whatever the config or environment say"),
    );
}

/** Said on every start without TLS, so nobody runs that way by accident. */
export const PLAINTEXT_WARNING =
  "WARNING: TLS is off (--insecure-plaintext): passwords and file bytes cross the network in clear";
