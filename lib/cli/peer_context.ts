/** What every peer command works with: its tracker and its home. */
import { type Address, parseAddress } from "../protocol/address.ts";
import { PeerHome } from "../peer/home.ts";
import { UsageError } from "./errors.ts";

/** The options every peer command shares. */
export interface GlobalOptions {
  tracker: string;
  home: string;
}

/** The tracker and home a command works with. */
export interface PeerContext {
  tracker: Address;
  home: PeerHome;
}

/** Turns parsed global options into an open home and a tracker address. */
export function openContext(options: GlobalOptions): PeerContext {
  let tracker: Address;
  try {
    tracker = parseAddress(options.tracker, 5050);
  } catch (error) {
    throw new UsageError(`--tracker: ${(error as Error).message}`);
  }
  return { tracker, home: PeerHome.open(options.home) };
}

export interface ServeFlags {
  host: string;
  port: string;
  advertise?: string;
}

/** Parses `--port`, rejecting anything but 0–65535. */
export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`invalid port "${text}"`);
  return port;
}
