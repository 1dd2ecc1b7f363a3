/**
 * The peer's link to its tracker: connecting (over the tracker's several
 * addresses, failing over when nobody answers at one), resuming the stored
 * session, and the errors that say none answered. Certificate pinning per
 * address is tracker_pinning.ts's.
 */
import { commandPrefix } from "../invocation.ts";
import { type Address, formatAddress } from "../protocol/address.ts";
import type { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import type { TrackerMethods } from "../protocol/messages.ts";
import type { PeerHome } from "./home.ts";
import { publishPending } from "./pending_publish.ts";
import { connectOrder, formatTrackerAddresses, sameAddress } from "./tracker_addresses.ts";
import { connectPinned } from "./tracker_pinning.ts";

export { PEER_AGENT } from "./tracker_pinning.ts";

export type TrackerClient = ProtocolClient<TrackerMethods>;

/** How long a connect to one of several tracker addresses may take before the next is tried. */
export const FAILOVER_CONNECT_TIMEOUT_MS = 5_000;

/** Where the tracker is, and how to talk to it. */
export interface TrackerEndpoint {
  /**
   * The tracker's addresses: one, or those of its several processes (which
   * share one store and one identity), tried in order when one is down.
   */
  addresses: Address[];
  /** True with --insecure-plaintext: no TLS anywhere. */
  plaintext: boolean;
  /** Where to say what a person should know, e.g. a newly pinned fingerprint. */
  notice: (line: string) => void;
  /**
   * How long a connect to one address may take before the next is tried.
   * @default {FAILOVER_CONNECT_TIMEOUT_MS} with several addresses; the client's (15 s) with one
   */
  connectTimeoutMs?: number;
  /**
   * The fingerprint the tracker announced on the local network, when it was
   * found there: a first contact pins only a certificate that has it.
   */
  announcedFingerprint?: string;
}

/** Options of {@link connectTracker} and {@link connectSession}. */
export interface ConnectOptions {
  /** The address whose connection was just lost: tried after the others. */
  lost?: Address;
}

/** The tracker named as the flag names it, for messages: `a:5050` or `a:5050,b:5050`. */
export function trackerName(endpoint: TrackerEndpoint): string {
  return formatTrackerAddresses(endpoint.addresses);
}

/**
 * Whether an error says nobody answers at an address (refused, timed out,
 * connection lost): then the tracker's next address is tried. Any other
 * error is the tracker's answer.
 */
export function isDown(error: ShoalError): boolean {
  return error.code === "UNREACHABLE" || error.code === "TIMEOUT";
}

/**
 * Reaches the tracker and leaves: a first contact pins its certificate and
 * says its fingerprint, and a tracker that cannot be reached is said, before
 * anything else is asked of the user (a password, a shell's first line).
 */
export async function reachTracker(home: PeerHome, tracker: TrackerEndpoint): Promise<void> {
  (await connectTracker(home, tracker)).close();
}

/**
 * Connects to the tracker without logging in (register, login): to the
 * address that answered last, then the others in order, moving on only when
 * nobody answers at one (refused, timed out); an error a live tracker
 * answers with is the tracker's answer. The address that answers is
 * remembered in the home for the next command.
 */
export async function connectTracker(
  home: PeerHome,
  endpoint: TrackerEndpoint,
  options: ConnectOptions = {},
): Promise<TrackerClient> {
  return await acrossAddresses(home, endpoint, options, (client) => Promise.resolve(client));
}

/**
 * Runs `use` on a connection to each address in turn until one answers:
 * an address is skipped when nobody answers there, during the connect or
 * during `use` (its process died meanwhile). `use` owns the client once
 * called and closes it when it throws.
 */
async function acrossAddresses<V>(
  home: PeerHome,
  endpoint: TrackerEndpoint,
  options: ConnectOptions,
  use: (client: TrackerClient) => Promise<V>,
): Promise<V> {
  const { addresses } = endpoint;
  const several = addresses.length > 1;
  const last = several ? lastAnswered(home, addresses) : null;
  const failures: { address: Address; error: ShoalError }[] = [];
  for (const address of connectOrder(addresses, last, options.lost)) {
    try {
      const client = await connectPinned(home, address, {
        plaintext: endpoint.plaintext,
        siblings: addresses.filter((other) => !sameAddress(other, address)),
        notice: endpoint.notice,
        announcedFingerprint: endpoint.announcedFingerprint,
        connectTimeoutMs: endpoint.connectTimeoutMs ??
          (several ? FAILOVER_CONNECT_TIMEOUT_MS : undefined),
      });
      const result = await use(client);
      if (several) remember(home, address);
      return result;
    } catch (caught) {
      const error = toShoalError(caught);
      if (!isDown(error)) throw error;
      failures.push({ address, error });
    }
  }
  throw noneAnswers(endpoint, failures);
}

/** Notes the address that answered; a home too busy to note it only costs the next command a detour. */
function remember(home: PeerHome, address: Address): void {
  try {
    home.setLastTrackerAddress(formatAddress(address));
  } catch {
    // The order is a convenience: the next command tries the others if this one is down.
  }
}

/** The address that answered last, if it is still one of the tracker's. */
function lastAnswered(home: PeerHome, addresses: Address[]): Address | null {
  const last = home.lastTrackerAddress();
  return addresses.find((address) => formatAddress(address) === last) ?? null;
}

/** The error when no address of the tracker answers: each, and why. */
function noneAnswers(
  endpoint: TrackerEndpoint,
  failures: { address: Address; error: ShoalError }[],
): ShoalError {
  if (failures.length === 1) {
    const [{ error }] = failures;
    return new ShoalError(error.code, error.message, {
      cause: error,
      hint: error.hint ??
        "is the tracker running? start one with `tracker.ts serve`, or name the running one " +
          // The shell was started with its tracker: there, a command takes no --tracker.
          (commandPrefix("peer") === ""
            ? "by starting the shell again with --tracker HOST:PORT (or SHOAL_TRACKER)"
            : "with --tracker HOST:PORT (or SHOAL_TRACKER)"),
    });
  }
  const each = failures.map(({ address, error }) => {
    const where = formatAddress(address);
    // "cannot reach a:5050: Connection refused" reads as "a:5050 (Connection refused)".
    const why = error.message.replace(`cannot reach ${where}: `, "")
      .replace(
        /^(connect ECONNREFUSED \S+|Connection refused \(os error \d+\))$/,
        "connection refused",
      );
    return `${where} (${why})`;
  });
  return new ShoalError(
    failures.every(({ error }) => error.code === "TIMEOUT") ? "TIMEOUT" : "UNREACHABLE",
    `cannot reach the tracker at any of its ${failures.length} addresses: ${each.join("; ")}`,
    {
      cause: failures[0].error,
      hint: `are the tracker's processes running, and reachable from here? check each address ` +
        `in --tracker ${
          trackerName(endpoint)
        } (or SHOAL_TRACKER, or \`peer.ts config get tracker\`)`,
    },
  );
}

/** The error every command but register and login gives without a session. */
export function notLoggedIn(detail = ""): ShoalError {
  return new ShoalError("AUTH_REQUIRED", `not logged in${detail}`);
}

/**
 * Connects and resumes the session stored in the home, at whichever of the
 * tracker's addresses answers (its processes share the sessions: no new
 * login). A session the tracker no longer knows is forgotten locally, so the
 * next command says so at once. Shares fetched while the tracker was
 * unreachable are published first.
 */
export async function connectSession(
  home: PeerHome,
  endpoint: TrackerEndpoint,
  options: ConnectOptions = {},
): Promise<{ tracker: TrackerClient; username: string }> {
  const session = home.session();
  if (!session) throw notLoggedIn();
  const connected = await acrossAddresses(home, endpoint, options, async (tracker) => {
    try {
      const { username } = await tracker.call("resume", { token: session.token });
      return { tracker, username };
    } catch (error) {
      tracker.close();
      throw error;
    }
  }).catch((error) => {
    if (error instanceof ShoalError && error.code === "AUTH_REQUIRED") {
      home.clearSession();
      throw notLoggedIn(" (the session has ended)");
    }
    throw error;
  });
  await publishPending(home, endpoint, connected.tracker);
  return connected;
}

/**
 * Runs `work` on a tracker connection with the stored session, and closes
 * the connection afterwards, however `work` ends. Only the connection fails
 * over to another address: `work` runs once.
 *
 * @example
 * ```ts
 * const files = await withSession(home, tracker, (client) => client.call("search", { text }));
 * ```
 */
export async function withSession<V>(
  home: PeerHome,
  endpoint: TrackerEndpoint,
  work: (tracker: TrackerClient, username: string) => Promise<V>,
): Promise<V> {
  const { tracker, username } = await connectSession(home, endpoint);
  try {
    return await work(tracker, username);
  } finally {
    tracker.close();
  }
}
