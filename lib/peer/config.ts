/**
 * The peer's config file, `config.toml` in its home: defaults a user sets
 * once instead of passing flags every time. Precedence, lowest first:
 * built-in defaults < this file < environment variables < flags.
 */
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { parseAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";

/** Every key the file may hold, what it means, and how its value is checked. */
export const CONFIG_KEYS = {
  tracker: {
    description: "the tracker, HOST:PORT (flag --tracker, env SHOAL_TRACKER)",
    parse: (text: string) => (parseAddress(text, 5050), text),
  },
  "insecure-plaintext": {
    description: "true to turn TLS off (flag --insecure-plaintext, env SHOAL_INSECURE_PLAINTEXT)",
    parse: (text: string) => parseBoolean(text),
  },
  "serve.host": {
    description: "address serve listens on (flag serve --host)",
    parse: (text: string) => text,
  },
  "serve.port": {
    description: "port serve listens on, 0 for any (flag serve --port)",
    parse: (text: string) => {
      const port = Number(text);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error("not a port");
      return port;
    },
  },
  "serve.advertise": {
    description: "address other peers should dial (flag serve --advertise)",
    parse: (text: string) => text,
  },
} as const;

export type ConfigKey = keyof typeof CONFIG_KEYS;
export type ConfigValue = string | number | boolean;
export type PeerConfig = Partial<Record<ConfigKey, ConfigValue>>;

export function parseBoolean(text: string): boolean {
  if (/^(true|yes|1|on)$/i.test(text)) return true;
  if (/^(false|no|0|off)$/i.test(text)) return false;
  throw new Error("not true or false");
}

export function configPath(home: string): string {
  return join(home, "config.toml");
}

export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(CONFIG_KEYS, key);
}

/** Reads the config file, flattened to dotted keys; a missing file is an empty config. */
export function loadConfig(home: string): PeerConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(configPath(home));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw new ShoalError("IO", `cannot read ${configPath(home)}: ${(error as Error).message}`);
  }
  let table: Record<string, unknown>;
  try {
    table = parse(text);
  } catch (error) {
    // The parser's message draws the line over several; the first one says it.
    const first = (error as Error).message.split("\n")[0];
    throw new ShoalError("INVALID_INPUT", `${configPath(home)}: ${first}`);
  }
  const config: PeerConfig = {};
  const visit = (node: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      const path = prefix + key;
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        visit(value as Record<string, unknown>, `${path}.`);
      } else if (isConfigKey(path)) {
        try {
          config[path] = checkValue(path, String(value));
        } catch (error) {
          throw new ShoalError("INVALID_INPUT", `${configPath(home)}: ${(error as Error).message}`);
        }
      } else {
        throw new ShoalError("INVALID_INPUT", `${configPath(home)}: unknown key "${path}"`);
      }
    }
  };
  visit(table, "");
  return config;
}

/** Checks a value for a key, as `config set` takes it from the command line. */
export function checkValue(key: ConfigKey, text: string): ConfigValue {
  try {
    return CONFIG_KEYS[key].parse(text);
  } catch (error) {
    throw new ShoalError("INVALID_INPUT", `invalid ${key} "${text}": ${(error as Error).message}`);
  }
}

/** Writes the config back as TOML, nesting dotted keys into tables. */
export function saveConfig(home: string, config: PeerConfig): void {
  const table: Record<string, Record<string, ConfigValue> | ConfigValue> = {};
  for (const [key, value] of Object.entries(config) as [ConfigKey, ConfigValue][]) {
    const [section, name] = key.includes(".") ? key.split(".") : [null, key];
    if (section) {
      table[section] = { ...(table[section] as Record<string, ConfigValue> ?? {}), [name]: value };
    } else table[name] = value;
  }
  Deno.mkdirSync(home, { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(configPath(home), stringify(table) + "\n");
}
