/**
 * Zero-config: a peer with no tracker configured (no `--tracker`, no
 * SHOAL_TRACKER, no `tracker` in config.toml) looks for one on the local
 * network, says which it found, and uses it; with several it asks on a
 * terminal, or fails with the list and the `--tracker` to pass. And
 * `peer.ts trackers`, which lists what it can see.
 */
import type { Command } from "commander";
import { asTyped, quoteWord } from "../invocation.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { parseAddress } from "../protocol/address.ts";
import { DEFAULT_TRACKER } from "../defaults.ts";
import { browseTrackers, DEFAULT_BROWSE_MS, type FoundTracker } from "../peer/discover.ts";
import type { PeerHome } from "../peer/home.ts";
import { isDown, type TrackerEndpoint } from "../peer/tracker_link.ts";
import type { PeerContext } from "./peer_context.ts";
import { escapeForTerminal, printJson, renderTable } from "./output.ts";
import { canAsk, chooseNumber } from "./prompt.ts";

/** Set (to anything but empty) to never look for a tracker: the built-in default is used. */
export const NO_DISCOVERY_ENV = "SHOAL_NO_DISCOVERY";

/** Whether a peer with no tracker configured may look for one on the network. */
export function discoveryEnabled(): boolean {
  return !Deno.env.get(NO_DISCOVERY_ENV);
}

/** One tracker as a line: `lab-1 at 192.168.1.10:5050, fingerprint SHA256:...`. */
export function describeFound(tracker: FoundTracker): string {
  // The name is whatever someone on the LAN announced: no escape sequences reach the terminal.
  return `${escapeForTerminal(tracker.name)} at ${tracker.address}, ` +
    (tracker.tls ? `fingerprint ${tracker.fingerprint}` : "without TLS (plaintext)");
}

/** What {@link chooseFound} may use besides the list. */
export interface ChoiceOptions {
  /** Whether a tracker's address has a certificate pinned in this home (it was used here). */
  pinned: (address: string) => boolean;
  /** Asks the person which one (1-based); absent when nobody can be asked. */
  ask?: (found: FoundTracker[]) => Promise<number>;
}

/**
 * Which of the trackers found to use: the only one; else the only one this
 * home has used before (its certificate is pinned); else the one the person
 * picks; else an AMBIGUOUS error listing them, with the `--tracker` for each.
 * Undefined when none was found.
 */
export async function chooseFound(
  found: FoundTracker[],
  options: ChoiceOptions,
): Promise<FoundTracker | undefined> {
  if (found.length <= 1) return found[0];
  const known = found.filter((tracker) => options.pinned(tracker.address));
  if (known.length === 1) return known[0];
  if (options.ask) return found[(await options.ask(found)) - 1];
  throw new ShoalError(
    "AMBIGUOUS",
    `${found.length} trackers found on the local network: ${
      found.map((tracker) => describeFound(tracker)).join("; ")
    }`,
    {
      // Said the way the user runs the program when reported (reportError).
      hint: `choose one with --tracker, e.g. \`peer.ts --tracker ${found[0].address} ...\`, ` +
        "or keep it: `peer.ts config set tracker ADDRESS`",
    },
  );
}

/** The check that a tracker found speaks the way this peer does (TLS or plaintext). */
export function checkMode(tracker: FoundTracker, plaintext: boolean): void {
  if (tracker.tls === !plaintext) return;
  throw new ShoalError(
    "INVALID_INPUT",
    tracker.tls
      ? `the tracker found, ${
        describeFound(tracker)
      }, uses TLS, and this peer runs with --insecure-plaintext`
      : `the tracker found, ${describeFound(tracker)}, runs without TLS`,
    {
      hint: tracker.tls
        ? "drop --insecure-plaintext (or SHOAL_INSECURE_PLAINTEXT, or the config key)"
        : "use it only on a network you trust, with --insecure-plaintext",
    },
  );
}

/** Asks on the terminal which tracker to use, after a numbered table of them. */
async function askWhich(
  found: FoundTracker[],
  pinned: (address: string) => boolean,
): Promise<number> {
  console.error(trackersTable(found, pinned));
  return await chooseNumber("Use tracker no.", 1, found.length, 1);
}

/**
 * Looks for trackers on the local network (a tracker this home used ends the
 * wait at once), chooses one (see {@link chooseFound}) and says which:
 * `found tracker lab-1 at 192.168.1.10:5050, fingerprint ...`. Undefined when
 * none answered, or when discovery is turned off (SHOAL_NO_DISCOVERY).
 */
export async function discoverTracker(
  home: PeerHome,
  plaintext: boolean,
  notice: (line: string) => void,
): Promise<FoundTracker | undefined> {
  if (!discoveryEnabled()) return undefined;
  const pinned = (address: string) => isPinned(home, address);
  let found: FoundTracker[];
  try {
    found = await browseTrackers({ until: (seen) => seen.some((t) => pinned(t.address)) });
  } catch (error) {
    notice(`warning: ${toShoalError(error).message}`);
    return undefined;
  }
  // The table asked from says which trackers this home used: several may have been.
  const ask = canAsk() ? (list: FoundTracker[]) => askWhich(list, pinned) : undefined;
  const chosen = await chooseFound(found, { pinned, ask });
  if (!chosen) return undefined;
  checkMode(chosen, plaintext);
  notice(`found tracker ${describeFound(chosen)}`);
  return chosen;
}

/** Points an endpoint at a tracker found on the network, to be pinned only with its fingerprint. */
export function useFound(endpoint: TrackerEndpoint, found: FoundTracker): void {
  endpoint.addresses = [parseAddress(found.address)];
  endpoint.announcedFingerprint = found.fingerprint;
}

/**
 * Runs `work` with the tracker found on the network when none is configured
 * (`configured` false). With none found, the built-in default is used, and a
 * failure to reach it says that none was found.
 */
export async function withDiscoveredTracker<V>(
  context: PeerContext,
  configured: boolean,
  work: () => Promise<V>,
): Promise<V> {
  if (configured) return await work();
  const { home, tracker } = context;
  const found = await discoverTracker(home, tracker.plaintext, tracker.notice);
  if (!found) return discoveryEnabled() ? await noneFound(work) : await work();
  useFound(tracker, found);
  return await work();
}

/** Runs `work` on the built-in default; if it cannot be reached, says that none was found. */
async function noneFound<V>(work: () => Promise<V>): Promise<V> {
  try {
    return await work();
  } catch (caught) {
    const error = toShoalError(caught);
    if (!isDown(error)) throw caught;
    throw new ShoalError(error.code, error.message, {
      cause: error,
      hint:
        `no tracker is configured, and none announced itself on the local network in ${
          DEFAULT_BROWSE_MS / 1000
        } s, so ${DEFAULT_TRACKER} was tried; ` +
        "name one with --tracker HOST:PORT (or SHOAL_TRACKER, or " +
        "`peer.ts config set tracker HOST:PORT`)",
    });
  }
}

/** The table of trackers found: no., name, address, security, and whether this home used it. */
function trackersTable(found: FoundTracker[], pinned: (address: string) => boolean): string {
  return renderTable(
    ["no.", "name", "address", "security", "used here"],
    found.map((tracker, i) => [
      i + 1,
      tracker.name,
      tracker.address,
      tracker.tls ? `TLS ${tracker.fingerprint}` : "plaintext",
      pinned(tracker.address) ? "yes" : "",
    ]),
  );
}

/** Adds `trackers`: the trackers announced on the local network. */
export function addTrackersCommand(
  program: Command,
  run: (
    action: (context: PeerContext, options: { json?: boolean }) => Promise<void>,
  ) => (...args: unknown[]) => Promise<void>,
): void {
  program.command("trackers")
    .description("list the trackers announced on the local network (DNS-SD)")
    .option("--json", "print JSON for scripts")
    .action(run(async ({ home }, options) => {
      // Off means nothing is sent on the network, even when asked: saying "none found" would
      // hide why.
      if (!discoveryEnabled()) {
        throw new ShoalError(
          "INVALID_INPUT",
          `discovery is turned off (${NO_DISCOVERY_ENV} is set): nothing was looked for`,
          // No command line to show: in the shell there is no environment to change.
          { hint: `to look, unset ${NO_DISCOVERY_ENV} (or set it empty) and run trackers again` },
        );
      }
      const found = await browseTrackers();
      const pinned = (address: string) => isPinned(home, address);
      if (options.json) {
        return printJson(
          found.map((tracker) => ({ ...tracker, usedHere: pinned(tracker.address) })),
        );
      }
      if (found.length === 0) {
        console.log(
          `no tracker announced itself on the local network in ${DEFAULT_BROWSE_MS / 1000} s`,
        );
        // The usual reason on a first try: a tracker started as the README's session starts it.
        return console.log(asTyped(
          "(a tracker listening on loopback only, or started with --no-announce, does not " +
            "announce itself: use it with `peer.ts --tracker HOST:PORT <command>`)",
        ));
      }
      console.log(trackersTable(found, pinned));
      console.log(
        asTyped(`use one with: peer.ts --tracker ${quoteWord(found[0].address)} <command>`),
      );
    }));
}

function isPinned(home: PeerHome, address: string): boolean {
  return home.pinnedTracker(address) !== null;
}
