/**
 * Connecting to one address of a tracker over TLS against the certificate
 * pinned for it (trust on first use). The processes of one tracker share one
 * certificate, so the certificate pinned at one of its listed addresses
 * vouches for the others: a new address that presents it is pinned without
 * a new first contact, and one that presents another is refused.
 */
import { type Address, formatAddress } from "../protocol/address.ts";
import { describeCertificate, fetchCertificate, fingerprintOf } from "../identity/certificate.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { HTTP_ANSWER } from "../protocol/frame.ts";
import { TRACKER_METHODS, type TrackerMethods } from "../protocol/messages.ts";
import { SHOAL_VERSION } from "../version.ts";
import type { PeerHome } from "./home.ts";

/** What a peer sends in `hello`. */
export const PEER_AGENT = `shoal-peer/${SHOAL_VERSION}`;

const HELLO = { agent: PEER_AGENT, expect: "tracker" as const };

/** Errors a Shoal server answers with: it spoke the protocol, so it is one. */
const SHOAL_ANSWERS = new Set(["VERSION_MISMATCH", "BUSY", "RATE_LIMITED", "INVALID_INPUT"]);

/** How to reach one address of a tracker. */
export interface PinnedConnect {
  /** True with --insecure-plaintext: no TLS, nothing pinned. */
  plaintext: boolean;
  /** The tracker's other listed addresses, whose pinned certificate this one must present. */
  siblings: readonly Address[];
  /** Where to say what a person should know, e.g. a newly pinned fingerprint. */
  notice: (line: string) => void;
  /** How long the connect and hello may take. @default the client's */
  connectTimeoutMs?: number;
  /** The fingerprint announced on the local network, when found there: first contact must match it. */
  announcedFingerprint?: string;
}

/**
 * Connects to `address` without logging in, over TLS against the pinned
 * certificate unless plaintext was asked for. A changed certificate is
 * refused loudly: it is what an interceptor would present.
 */
export async function connectPinned(
  home: PeerHome,
  address: Address,
  options: PinnedConnect,
): Promise<ProtocolClient<TrackerMethods>> {
  const timeouts = { connectTimeoutMs: options.connectTimeoutMs };
  if (options.plaintext) {
    return await ProtocolClient.connect(address, TRACKER_METHODS, { ...HELLO, ...timeouts });
  }
  const key = formatAddress(address);
  const certificate = home.pinnedTracker(key);
  if (!certificate) {
    const pinned = options.siblings.flatMap((sibling) => {
      const pem = home.pinnedTracker(formatAddress(sibling));
      return pem ? [{ key: formatAddress(sibling), certificate: pem }] : [];
    });
    return pinned.length > 0
      ? await sameTrackerContact(home, address, pinned, options)
      : await firstContact(home, address, options);
  }
  try {
    return await ProtocolClient.connect(address, TRACKER_METHODS, {
      ...HELLO,
      ...timeouts,
      tls: { certificate, whose: "the one pinned on first contact" },
    });
  } catch (error) {
    if (!(error instanceof ShoalError) || error.code !== "CERTIFICATE_MISMATCH") throw error;
    const pinned = fingerprintOf(certificate);
    const now = await fetchCertificate(address.host, address.port, {
      timeoutMs: options.connectTimeoutMs,
    }).then(fingerprintOf, () => "unknown");
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

/**
 * The first contact with an address of a tracker already pinned at another
 * of its addresses: it must present that same certificate (the processes of
 * one tracker share one identity), and is then pinned too, without a new
 * trust on first use. Any other certificate is refused, naming both.
 */
async function sameTrackerContact(
  home: PeerHome,
  address: Address,
  pinned: { key: string; certificate: string }[],
  options: PinnedConnect,
): Promise<ProtocolClient<TrackerMethods>> {
  const key = formatAddress(address);
  const presented = await fetchCertificate(address.host, address.port, {
    timeoutMs: options.connectTimeoutMs,
  });
  const match = pinned.find(({ certificate }) =>
    fingerprintOf(certificate) === fingerprintOf(presented)
  );
  if (!match) {
    const others = pinned.map(({ key, certificate }) => `${fingerprintOf(certificate)} at ${key}`);
    throw new ShoalError(
      "CERTIFICATE_MISMATCH",
      `WARNING: ${key}, listed as an address of the same tracker, presented a DIFFERENT ` +
        `certificate (${fingerprintOf(presented)}) than the one pinned for that tracker ` +
        `(${others.join(", ")}): it is another server, or someone is intercepting the ` +
        "connection. Nothing was sent.",
      {
        hint: `list in --tracker only the addresses of one tracker (its processes share one ` +
          `identity); if its operator confirms its certificate changed, run ` +
          `\`peer.ts forget-tracker ${pinned.map((p) => p.key).join(",")}\``,
      },
    );
  }
  const client = await ProtocolClient.connect(address, TRACKER_METHODS, {
    ...HELLO,
    connectTimeoutMs: options.connectTimeoutMs,
    tls: { certificate: match.certificate, whose: `the one pinned for ${match.key}` },
  });
  pinOrClose(home, key, match.certificate, client);
  options.notice(
    `the tracker's address ${key} presents the certificate pinned for ${match.key} ` +
      `(${fingerprintOf(match.certificate)}): pinned for ${key} too.`,
  );
  return client;
}

/**
 * The first contact with a tracker (trust on first use): read its
 * certificate without trust, then say hello over TLS with exactly that
 * certificate. Only a Shoal tracker that completes the hello is pinned, and
 * its fingerprint shown so the user can compare it with the one the tracker
 * printed at start; anything else (a NAS, a router, a proxy) is "not a Shoal
 * tracker", with what was found there, and nothing is pinned.
 */
async function firstContact(
  home: PeerHome,
  address: Address,
  options: PinnedConnect,
): Promise<ProtocolClient<TrackerMethods>> {
  const key = formatAddress(address);
  const certificate = await fetchCertificate(address.host, address.port, {
    timeoutMs: options.connectTimeoutMs,
  });
  checkAnnounced(address, certificate, options.announcedFingerprint);
  let client: ProtocolClient<TrackerMethods>;
  try {
    client = await ProtocolClient.connect(address, TRACKER_METHODS, {
      ...HELLO,
      connectTimeoutMs: options.connectTimeoutMs,
      tls: { certificate, whose: "its own" },
    });
  } catch (caught) {
    const error = toShoalError(caught);
    if (SHOAL_ANSWERS.has(error.code)) throw error;
    // A web server there is most likely the tracker's own dashboard, whose port is the other one.
    const http = (error.cause as Error | undefined)?.message === HTTP_ANSWER;
    const why = error.code === "CERTIFICATE_MISMATCH"
      ? "its certificate is not for a Shoal server"
      : http
      ? "it answers in HTTP, as a web server or a tracker's dashboard does"
      : `it does not complete a Shoal hello (${error.message})`;
    throw new ShoalError(
      "INVALID_INPUT",
      `${key} is not a Shoal tracker: ${why}; it presented ${describeCertificate(certificate)}. ` +
        "Nothing was pinned.",
      {
        cause: error,
        hint: http
          ? 'a tracker\'s own port is the one its serve prints after "listening on" ' +
            '(the "dashboard on" port is for browsers): pass that with --tracker HOST:PORT ' +
            "(or SHOAL_TRACKER)"
          : "check --tracker HOST:PORT (or SHOAL_TRACKER): the tracker prints it",
      },
    );
  }
  pinOrClose(home, key, certificate, client);
  options.notice(
    `first contact with the tracker at ${key}: its certificate fingerprint is ` +
      `${fingerprintOf(certificate)}; compare it with the one the tracker printed at start. ` +
      "It is pinned from now on.",
  );
  return client;
}

/** Pins `certificate` for `key`; a home that cannot take it (busy, closing) closes the client first. */
function pinOrClose(
  home: PeerHome,
  key: string,
  certificate: string,
  client: ProtocolClient<TrackerMethods>,
): void {
  try {
    home.pinTracker(key, certificate);
  } catch (error) {
    client.close();
    throw error;
  }
}

/** Refuses a tracker found on the network whose certificate is not the one it announced. */
function checkAnnounced(
  address: Address,
  certificate: string,
  announced: string | undefined,
): void {
  const presented = fingerprintOf(certificate);
  if (announced === undefined || announced === presented) return;
  throw new ShoalError(
    "CERTIFICATE_MISMATCH",
    `the tracker at ${formatAddress(address)} presented a certificate (${presented}) ` +
      `other than the one announced for it on the local network (${announced}): something ` +
      "else may be answering at that address. Nothing was pinned or sent.",
    {
      hint: "ask the tracker's operator for its address and fingerprint; pass --tracker HOST:PORT",
    },
  );
}
