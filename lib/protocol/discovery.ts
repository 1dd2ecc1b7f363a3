/**
 * How a tracker describes itself on the local network: DNS-SD over multicast
 * DNS (RFC 6762, 6763), service type `_shoal._tcp`, with what a peer needs
 * before its first contact in the TXT record. Pure encoding and decoding; the
 * tracker announces (lib/tracker/announce.ts), a peer browses
 * (lib/peer/discover.ts).
 *
 * TXT keys, each at most 255 bytes as DNS-SD requires:
 *
 * | key    | value                                                              |
 * | ------ | ------------------------------------------------------------------ |
 * | `v`    | the protocol version the tracker speaks                            |
 * | `name` | the tracker's name (`serve --name`, default the host name)         |
 * | `tls`  | `1` with TLS, `0` with `--insecure-plaintext`                      |
 * | `fp`   | the SHA-256 fingerprint of its certificate (`SHA256:AB:CD:...`)    |
 * | `host` | the address it listens on, when it listens on one (not `0.0.0.0`)  |
 *
 * @example
 * ```ts
 * const txt = encodeTrackerTxt({ name: "lab-1", version: 2, tls: true, fingerprint: "SHA256:..." });
 * decodeTrackerTxt(txt); // { name: "lab-1", version: 2, tls: true, fingerprint: "SHA256:..." }
 * ```
 */

/** The DNS-SD service type, without its leading underscore and protocol (`_shoal._tcp`). */
export const TRACKER_SERVICE_TYPE = "shoal";

/** What a tracker announces about itself. */
export interface TrackerTxt {
  name: string;
  /** The protocol version it speaks. */
  version: number;
  tls: boolean;
  /** Its certificate's fingerprint; required with TLS. */
  fingerprint?: string;
  /** The one address it listens on, if it does not listen on every interface. */
  host?: string;
}

/** The longest string DNS-SD allows in one TXT entry (`key=value`), in bytes. */
const MAX_ENTRY_BYTES = 255;
const FINGERPRINT = /^SHA256(:[0-9A-F]{2}){32}$/;
/** An IPv4 or IPv6 address or a host name: what a peer will dial. */
const HOST = /^[0-9A-Za-z.:-]{1,253}$/;

/** The TXT record a tracker announces. Throws if an entry would not fit. */
export function encodeTrackerTxt(info: TrackerTxt): Record<string, string> {
  const txt: Record<string, string> = {
    v: String(info.version),
    name: info.name,
    tls: info.tls ? "1" : "0",
  };
  if (info.fingerprint) txt.fp = info.fingerprint;
  if (info.host) txt.host = info.host;
  for (const [key, value] of Object.entries(txt)) {
    if (new TextEncoder().encode(`${key}=${value}`).length > MAX_ENTRY_BYTES) {
      throw new RangeError(`the TXT entry "${key}" is over ${MAX_ENTRY_BYTES} bytes`);
    }
  }
  return txt;
}

/**
 * Reads a TXT record (values as text or bytes, as an mDNS library hands them
 * out) into what a tracker announced, or undefined when it is not a Shoal
 * tracker's: a missing or bad version, name or TLS flag, or TLS without a
 * well-formed fingerprint.
 */
export function decodeTrackerTxt(
  txt: Record<string, unknown> | undefined,
): TrackerTxt | undefined {
  if (!txt) return undefined;
  const text = (key: string): string | undefined => {
    const value = txt[key];
    if (typeof value === "string") return value;
    if (value instanceof Uint8Array) return new TextDecoder().decode(value);
    return undefined;
  };
  const version = Number(text("v"));
  const name = text("name");
  const tls = text("tls");
  if (!Number.isInteger(version) || version < 1 || !name || (tls !== "1" && tls !== "0")) {
    return undefined;
  }
  const fingerprint = text("fp")?.toUpperCase();
  if (tls === "1" && (!fingerprint || !FINGERPRINT.test(fingerprint))) return undefined;
  const host = text("host") || undefined;
  if (host !== undefined && !HOST.test(host)) return undefined;
  return {
    name,
    version,
    tls: tls === "1",
    ...(tls === "1" ? { fingerprint } : {}),
    ...(host ? { host } : {}),
  };
}
