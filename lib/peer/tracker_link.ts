import { type Address, formatAddress } from "../protocol/address.ts";
import { describeCertificate, fetchCertificate, fingerprintOf } from "../identity/certificate.ts";

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
  /**
   * The fingerprint the tracker announced on the local network, when it was
   * found there: a first contact pins only a certificate that has it.
   */
  announcedFingerprint?: string;
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
      hint: error.hint ?? "is the tracker running? check --tracker HOST:PORT (or SHOAL_TRACKER)",
    });
  }
}

async function connectPinned(home: PeerHome, tracker: TrackerEndpoint): Promise<TrackerClient> {
  if (tracker.plaintext) {
    return await ProtocolClient.connect(tracker.address, TRACKER_METHODS, HELLO);
  }
  const key = formatAddress(tracker.address);
  const certificate = home.pinnedTracker(key);
  if (!certificate) return await firstContact(home, tracker);
  try {
    return await ProtocolClient.connect(tracker.address, TRACKER_METHODS, {
      ...HELLO,
      tls: { certificate, whose: "the one pinned on first contact" },
    });
  } catch (error) {
    if (!(error instanceof ShoalError) || error.code !== "CERTIFICATE_MISMATCH") throw error;
    const pinned = fingerprintOf(certificate);
    const now = await fetchCertificate(tracker.address.host, tracker.address.port)
      .then(fingerprintOf, () => "unknown");
    const hint = `if the tracker's operator confirms its certificate changed, run ` +
      `\`peer.ts forget-tracker ${key}\``;
    if (now === pinned) {
      // Pinned by an older version that pinned whatever answered: it never was a tracker's.
      throw new ShoalError(
        "CERTIFICATE_MISMATCH",
        `the certificate pinned for ${key} (${describeCertificate(certificate)}) is not a ` +
          "Shoal tracker's. Nothing was sent.",
        { hint: `run \`peer.ts forget-tracker ${key}\`, then check --tracker HOST:PORT` },
      );
    }
    throw new ShoalError(
      "CERTIFICATE_MISMATCH",
      `WARNING: the tracker at ${key} presented a DIFFERENT certificate (${now}) than the one ` +
        `pinned on first contact (${pinned}): someone may be intercepting ` +
        "the connection. Nothing was sent.",
      { hint },
    );
  }
}

const HELLO = { agent: PEER_AGENT, expect: "tracker" as const };

/** Errors a Shoal server answers with: it spoke the protocol, so it is one. */
const SHOAL_ANSWERS = new Set(["VERSION_MISMATCH", "BUSY", "RATE_LIMITED", "INVALID_INPUT"]);

/**
 * The first contact with a tracker (trust on first use): read its
 * certificate without trust, then say hello over TLS with exactly that
 * certificate. Only a Shoal tracker that completes the hello is pinned, and
 * its fingerprint shown so the user can compare it with the one the tracker
 * printed at start; anything else (a NAS, a router, a proxy) is "not a Shoal
 * tracker", with what was found there, and nothing is pinned.
 */
async function firstContact(home: PeerHome, tracker: TrackerEndpoint): Promise<TrackerClient> {
  const key = formatAddress(tracker.address);
  const certificate = await fetchCertificate(tracker.address.host, tracker.address.port);
  checkAnnounced(tracker, certificate);
  let client: TrackerClient;
  try {
    client = await ProtocolClient.connect(tracker.address, TRACKER_METHODS, {
      ...HELLO,
      tls: { certificate, whose: "its own" },
    });
  } catch (caught) {
    const error = toShoalError(caught);
    if (SHOAL_ANSWERS.has(error.code)) throw error;
    const why = error.code === "CERTIFICATE_MISMATCH"
      ? "its certificate is not for a Shoal server"
      : `it does not complete a Shoal hello (${error.message})`;
    throw new ShoalError(
      "INVALID_INPUT",
      `${key} is not a Shoal tracker: ${why}; it presented ${describeCertificate(certificate)}. ` +
        "Nothing was pinned.",
      { cause: error, hint: "check --tracker HOST:PORT (or SHOAL_TRACKER): the tracker prints it" },
    );
  }
  home.pinTracker(key, certificate);
  tracker.notice(
    `first contact with the tracker at ${key}: its certificate fingerprint is ` +
      `${fingerprintOf(certificate)}; compare it with the one the tracker printed at start. ` +
      "It is pinned from now on.",
  );
  return client;
}

/** Refuses a tracker found on the network whose certificate is not the one it announced. */
function checkAnnounced(tracker: TrackerEndpoint, certificate: string): void {
  const announced = tracker.announcedFingerprint;
  const presented = fingerprintOf(certificate);
  if (announced === undefined || announced === presented) return;
  throw new ShoalError(
    "CERTIFICATE_MISMATCH",
    `the tracker at ${formatAddress(tracker.address)} presented a certificate (${presented}) ` +
      `other than the one announced for it on the local network (${announced}): something ` +
      "else may be answering at that address. Nothing was pinned or sent.",
    {
      hint: "ask the tracker's operator for its address and fingerprint; pass --tracker HOST:PORT",
    },
  );
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
