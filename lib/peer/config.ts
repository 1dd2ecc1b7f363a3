/**
 * The peer's config file, `config.toml` in its home: defaults a user sets
 * once instead of passing flags every time. Precedence, lowest first:
 * built-in defaults < this file < environment variables < flags.
 */
import { join } from "node:path";
import { parse, stringify } from "smol-toml";
import { DEFAULT_TRACKER_PORT } from "../defaults.ts";
import { parseTrackerAddresses } from "./tracker_addresses.ts";
import { ShoalError } from "../protocol/errors.ts";
import { asTyped } from "../invocation.ts";
import { parseRate } from "./rate.ts";

/** Every key the file may hold, what it means, and how its value is checked. */
export const CONFIG_KEYS = {
  tracker: {
    description: "the tracker, HOST:PORT, or HOST:PORT,HOST:PORT,... for its several processes " +
      "(flag --tracker, env SHOAL_TRACKER)",
    parse: (text: string) => (parseTrackerAddresses(text, DEFAULT_TRACKER_PORT), text),
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
  "serve.upload-rate": {
    description:
      "upload budget of the whole process, e.g. 20MB/s, 500KiB/s, 100Mbit/s (flag serve --max-upload-rate)",
    parse: (text: string) => (parseRate(text), text),
  },
  "serve.upload-slots": {
    description: "downloaders sent pieces at once; others queue (flag serve --upload-slots)",
    parse: (text: string) => parseSlots(text),
  },
  "fetch.download-rate": {
    description:
      "download budget of the whole process, e.g. 5MB/s (flag fetch --max-download-rate)",
    parse: (text: string) => (parseRate(text), text),
  },
} as const;

/** An upload slot count: a whole number from 1 to 1,000. */
export function parseSlots(text: string): number {
  const slots = Number(text);
  if (!/^\d+$/.test(text.trim()) || slots < 1 || slots > 1000) {
    throw new Error("upload slots are a whole number from 1 to 1000");
  }
  return slots;
}

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

/** The config file as read: the keys this version knows, and the others, kept as they are. */
export interface ConfigFile {
  config: PeerConfig;
  /** Keys this version does not know (a typo, or a newer version's), dotted, with their values. */
  unknown: Record<string, unknown>;
}

/** Files already warned about in this process, so a key is reported once. */
const warned = new Set<string>();

/**
 * Reads the config file; unknown keys are warned about once on stderr and
 * otherwise ignored, so one typo never stops a command (nor the `config
 * unset` that removes it). A missing file is an empty config.
 */
export function loadConfig(home: string): PeerConfig {
  const { config, unknown } = readConfigFile(home);
  const path = configPath(home);
  for (const key of Object.keys(unknown)) {
    if (warned.has(`${path}\0${key}`)) continue;
    warned.add(`${path}\0${key}`);
    console.error(
      asTyped(
        `warning: ${path}: unknown key "${key}" ignored; remove it with: peer.ts config unset ${key}`,
      ),
    );
  }
  return config;
}

/** Reads the config file, flattened to dotted keys, without warning. */
export function readConfigFile(home: string): ConfigFile {
  let text: string;
  try {
    text = Deno.readTextFileSync(configPath(home));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { config: {}, unknown: {} };
    // `--home` naming a file: said as such, not as "config.toml: Not a directory".
    if (error instanceof Deno.errors.NotADirectory) {
      throw new ShoalError(
        "IO",
        `cannot use ${home} as the home: it, or a folder above it, is a file`,
        { hint: "pass --home a folder (made if missing), or leave --home out for the default" },
      );
    }
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
  const unknown: Record<string, unknown> = {};
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
        unknown[path] = value;
      }
    }
  };
  visit(table, "");
  return { config, unknown };
}

/** Checks a value for a key, as `config set` takes it from the command line. */
export function checkValue(key: ConfigKey, text: string): ConfigValue {
  try {
    return CONFIG_KEYS[key].parse(text);
  } catch (error) {
    throw new ShoalError("INVALID_INPUT", `invalid ${key} "${text}": ${(error as Error).message}`);
  }
}

/** Writes the config back as TOML, nesting dotted keys into tables; `unknown` keys are kept. */
export function saveConfig(
  home: string,
  config: PeerConfig,
  unknown: Record<string, unknown> = {},
): void {
  const table: Record<string, unknown> = {};
  for (const [key, value] of [...Object.entries(unknown), ...Object.entries(config)]) {
    const parts = key.split(".");
    let node = table;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      node = (next !== null && typeof next === "object" && !Array.isArray(next))
        ? next as Record<string, unknown>
        : (node[part] = {}) as Record<string, unknown>;
    }
    node[parts.at(-1)!] = value;
  }
  Deno.mkdirSync(home, { recursive: true, mode: 0o700 });
  Deno.writeTextFileSync(configPath(home), stringify(table) + "\n");
}
