import { type Address, formatAddress } from "../protocol/address.ts";
import { fetchCertificate, fingerprintOf } from "../protocol/certificate.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { TRACKER_METHODS, type TrackerMethods } from "../protocol/messages.ts";
import { SHOAL_VERSION } from "../version.ts";
import type { PeerHome } from "./home.ts";
import { publishPending } from "./pending_publish.ts";

export type TrackerClient = ProtocolClient<TrackerMethods>;

/** What a peer sends in `hello`. */
export const PEER_AGENT = `shoal-peer/${SHOAL_VERSION}`;

/** Where the tracker is, and how to talk to it. */
export interface TrackerEndpoint {
  address: Address;
  /** True with --insecure-plaintext: no TLS anywhere. */
  plaintext: boolean;
  /** Where to say what a person should know, e.g. a newly pinned fingerprint. */
  notice: (line: string) => void;
}

/**
 * The tracker's certificate as pinned in the home; on first contact it is
 * read from the tracker, pinned, and its fingerprint shown so the user can
 * compare it with the one the tracker printed at start.
 */
async function pinnedCertificate(home: PeerHome, tracker: TrackerEndpoint): Promise<string> {
  const key = formatAddress(tracker.address);
  const pinned = home.pinnedTracker(key);
  if (pinned) return pinned;
  const certificate = await fetchCertificate(tracker.address.host, tracker.address.port);
  home.pinTracker(key, certificate);
  tracker.notice(
    `first contact with the tracker at ${key}: its certificate fingerprint is ` +
      `${fingerprintOf(certificate)}; compare it with the one the tracker printed at start. ` +
      "It is pinned from now on.",
  );
  return certificate;
}

/**
 * Connects to the tracker without logging in (register, login), over TLS
 * against the pinned certificate unless plaintext was asked for. A changed
 * certificate is refused loudly: it is what an interceptor would present.
 */
export async function connectTracker(
  home: PeerHome,
  tracker: TrackerEndpoint,
): Promise<TrackerClient> {
  try {
    return await connectPinned(home, tracker);
  } catch (caught) {
    const error = toShoalError(caught);
    if (error.code !== "UNREACHABLE" && error.code !== "TIMEOUT") throw error;
    throw new ShoalError(error.code, error.message, {
      cause: error,
      hint: "is the tracker running? check --tracker HOST:PORT (or SHOAL_TRACKER)",
    });
  }
}

async function connectPinned(home: PeerHome, tracker: TrackerEndpoint): Promise<TrackerClient> {
  const options = { agent: PEER_AGENT, expect: "tracker" as const };
  if (tracker.plaintext) {
    return await ProtocolClient.connect(tracker.address, TRACKER_METHODS, options);
  }
  const certificate = await pinnedCertificate(home, tracker);
  try {
    return await ProtocolClient.connect(tracker.address, TRACKER_METHODS, {
      ...options,
      tls: { certificate, whose: "the one pinned on first contact" },
    });
  } catch (error) {
    if (!(error instanceof ShoalError) || error.code !== "CERTIFICATE_MISMATCH") throw error;
    const key = formatAddress(tracker.address);
    const now = await fetchCertificate(tracker.address.host, tracker.address.port)
      .then(fingerprintOf, () => "unknown");
    throw new ShoalError(
      "CERTIFICATE_MISMATCH",
      `WARNING: the tracker at ${key} presented a DIFFERENT certificate (${now}) than the one ` +
        `pinned on first contact (${fingerprintOf(certificate)}): someone may be intercepting ` +
        "the connection. Nothing was sent.",
      {
        hint: `if the tracker's operator confirms its certificate changed, run ` +
          `\`peer.ts forget-tracker ${key}\``,
      },
    );
  }
}

/** The error every command but register and login gives without a session. */
export function notLoggedIn(detail = ""): ShoalError {
  return new ShoalError("AUTH_REQUIRED", `not logged in${detail}`);
}

/**
 * Connects and resumes the session stored in the home. A session the tracker
 * no longer knows is forgotten locally, so the next command says so at once.
 * Shares fetched while the tracker was unreachable are published first.
 */
export async function connectSession(
  home: PeerHome,
  endpoint: TrackerEndpoint,
): Promise<{ tracker: TrackerClient; username: string }> {
  const session = home.session();
  if (!session) throw notLoggedIn();
  const tracker = await connectTracker(home, endpoint);
  try {
    const { username } = await tracker.call("resume", { token: session.token });
    await publishPending(home, endpoint, tracker);
    return { tracker, username };
  } catch (error) {
    tracker.close();
    if (error instanceof ShoalError && error.code === "AUTH_REQUIRED") {
      home.clearSession();
      throw notLoggedIn(" (the session has ended)");
    }
    throw error;
  }
}

/**
 * Runs `work` on a tracker connection with the stored session, and closes
 * the connection afterwards, however `work` ends.
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
