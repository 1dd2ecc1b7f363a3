/** `peer.ts config get|set|unset|list`: the home's config.toml from the command line. */
import type { Command } from "commander";
import {
  checkValue,
  CONFIG_KEYS,
  configPath,
  isConfigKey,
  loadConfig,
  readConfigFile,
  saveConfig,
} from "../peer/config.ts";
import { ShoalError } from "../protocol/errors.ts";
import type { GlobalOptions } from "./peer_context.ts";
import { renderTable } from "./output.ts";

function keyOf(key: string) {
  if (!isConfigKey(key)) {
    throw new ShoalError(
      "INVALID_INPUT",
      `unknown config key "${key}"; known keys: ${Object.keys(CONFIG_KEYS).join(", ")}`,
    );
  }
  return key;
}

const homeOf = (command: Command) => command.optsWithGlobals<GlobalOptions>().home;

export function addConfigCommand(program: Command): Command {
  const config = program.command("config")
    .description("read and change the defaults in the home's config.toml");
  config.command("list")
    .description("every key, its value in the file, and what it sets")
    .action((_: unknown, command: Command) => {
      const home = homeOf(command);
      const values = loadConfig(home);
      console.log(`# ${configPath(home)}`);
      console.log(renderTable(
        ["key", "value", "what it sets"],
        Object.entries(CONFIG_KEYS).map(([key, { description }]) => [
          key,
          String(values[key as keyof typeof values] ?? "-"),
          description,
        ]),
      ));
    });
  config.command("get <key>")
    .description("print one key's value from the file (nothing if unset)")
    .action((key: string, _: unknown, command: Command) => {
      const value = loadConfig(homeOf(command))[keyOf(key)];
      if (value !== undefined) console.log(String(value));
      // Nothing on stdout, for scripts; a person at a terminal is told why.
      else if (Deno.stdout.isTerminal()) {
        console.error(`${key} is not set in ${configPath(homeOf(command))}: its default applies`);
      }
    });
  config.command("set <key> <value>")
    .description("set a key in the file")
    .action((key: string, value: string, _: unknown, command: Command) => {
      const home = homeOf(command);
      const { config: values, unknown } = readConfigFile(home);
      values[keyOf(key)] = checkValue(keyOf(key), value);
      saveConfig(home, values, unknown);
      console.log(`${key} = ${value} (in ${configPath(home)})`);
    });
  config.command("unset <key>")
    .description("remove a key from the file, back to the built-in default")
    .action((key: string, _: unknown, command: Command) => {
      const home = homeOf(command);
      const { config: values, unknown } = readConfigFile(home);
      // A key this version does not know can still be removed: that is how a typo goes.
      const known = !Object.hasOwn(unknown, key);
      const wasSet = !known || values[keyOf(key)] !== undefined;
      if (known) delete values[keyOf(key)];
      else delete unknown[key];
      saveConfig(home, values, unknown);
      // Said, as `set` is: a silent unset leaves the user to wonder whether it took.
      console.log(
        wasSet
          ? `${key} removed from ${configPath(home)}${known ? ": its default applies" : ""}`
          : `${key} is not set in ${configPath(home)}: nothing to remove`,
      );
    });
  return program;
}
