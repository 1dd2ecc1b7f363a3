/** What every peer command works with: its tracker and its home. */
import { DEFAULT_TRACKER_PORT } from "../defaults.ts";
import { parseTrackerAddresses } from "../peer/tracker_addresses.ts";
import { defaultHome, PeerHome } from "../peer/home.ts";
import type { TrackerEndpoint } from "../peer/tracker_link.ts";
import { UsageError } from "./errors.ts";
import { parseRate, RATE_EXAMPLES } from "../peer/rate.ts";
import { parseSlots } from "../peer/config.ts";
import { PLAINTEXT_WARNING } from "./plaintext.ts";

/** The options every peer command shares. */
export interface GlobalOptions {
  tracker: string;
  home: string;
  insecurePlaintext?: boolean;
}

/**
 * The home a command line names (`--home`, then SHOAL_HOME, then the
 * default), found before parsing because the home's config file supplies
 * the defaults the parser needs.
 */
export function homeFromArgs(args: string[]): string {
  for (const [i, arg] of args.entries()) {
    if (arg === "--home" && args[i + 1] !== undefined) return args[i + 1];
    if (arg.startsWith("--home=")) return arg.slice("--home=".length);
  }
  return Deno.env.get("SHOAL_HOME") || defaultHome();
}

/** The tracker and home a command works with. */
export interface PeerContext {
  tracker: TrackerEndpoint;
  home: PeerHome;
}

/**
 * Turns parsed global options into an open home and a tracker endpoint;
 * warns, every time, when TLS is off. A bad tracker list is named after
 * where it came from (`--tracker`, or `SHOAL_TRACKER`).
 */
export function openContext(options: GlobalOptions, trackerFrom = "--tracker"): PeerContext {
  let addresses;
  try {
    addresses = parseTrackerAddresses(options.tracker, DEFAULT_TRACKER_PORT);
  } catch (error) {
    throw new UsageError(`${trackerFrom}: ${(error as Error).message}`);
  }
  const plaintext = !!options.insecurePlaintext;
  if (plaintext) console.error(PLAINTEXT_WARNING);
  return {
    tracker: { addresses, plaintext, notice: (line) => console.error(line) },
    home: PeerHome.open(options.home),
  };
}

export interface ServeFlags {
  host: string;
  port: string;
  advertise?: string;
  /** How `serve` writes its upload log: text or json. */
  logFormat?: string;
  maxUploadRate?: string;
  uploadSlots: string;
}

/** Parses a rate flag (`--max-upload-rate 20MB/s`) into bytes a second. */
export function parseRateFlag(flag: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  try {
    return parseRate(text);
  } catch (error) {
    throw new UsageError(`--${flag}: ${(error as Error).message}; ${RATE_EXAMPLES}`);
  }
}

/** Parses `--upload-slots`. */
export function parseSlotsFlag(text: string): number {
  try {
    return parseSlots(text);
  } catch (error) {
    throw new UsageError(`--upload-slots "${text}": ${(error as Error).message}`);
  }
}

/** Parses `--port`, rejecting anything but 0–65535. */
export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`invalid port "${text}"`);
  return port;
}
