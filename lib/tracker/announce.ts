/**
 * Announcing a tracker on the local network (DNS-SD over multicast DNS,
 * `_shoal._tcp`), so that a peer with no tracker configured finds it. The TXT
 * record (lib/protocol/discovery.ts) carries the certificate's fingerprint,
 * which the peer checks against what the tracker presents on first contact.
 *
 * @example
 * ```ts
 * const announcement = announceTracker({ name: "lab-1", port: 5050, fingerprint, version: 2 });
 * // ... later
 * await announcement.stop();
 * ```
 */
import { Bonjour } from "bonjour-service";
import { hostname } from "node:os";
import { isWildcard } from "../protocol/address.ts";
import { encodeTrackerTxt, TRACKER_SERVICE_TYPE } from "../protocol/discovery.ts";

/** What to announce. */
export interface AnnounceOptions {
  /** The name peers see; the host name when not given. */
  name?: string;
  port: number;
  /** The address the tracker listens on; a wildcard means every interface. */
  host: string;
  /** The certificate's fingerprint; undefined in plaintext. */
  fingerprint?: string;
  /** The protocol version the tracker speaks. */
  version: number;
  /** Where to report a failure to announce (a name in use, no multicast); never fatal. */
  warn: (line: string) => void;
}

/** A running announcement. */
export interface Announcement {
  /** The name announced. */
  readonly name: string;
  /** Says goodbye on the network (so browsers drop it at once) and closes the socket. */
  stop(): Promise<void>;
}

/** The name a tracker announces when not given one: this machine's host name, first label. */
export function defaultTrackerName(): string {
  return hostname().split(".")[0] || "shoal-tracker";
}

/** A tracker another announcement names: its name, and what tells it apart. */
export interface AnnouncedTracker {
  name: string;
  /** `host:port`. */
  address: string;
  /** Its certificate's fingerprint, as announced (TLS only). */
  fingerprint?: string;
}

/** The longest DNS-SD instance name: one DNS label. */
const MAX_NAME_BYTES = 63;

/**
 * The name to announce: `wanted`, unless another tracker on the network
 * announces it already (a peer would see only one of the two), then the
 * first of `wanted-2`, `wanted-3`, ... that none does. A tracker with this
 * one's fingerprint is this tracker (another of its processes sharing one
 * identity), not another.
 *
 * @example
 * ```ts
 * freeTrackerName("lab", [{ name: "lab", address: "10.0.0.5:5050", fingerprint: "SHA256:AA" }], "SHA256:BB"); // "lab-2"
 * ```
 */
export function freeTrackerName(
  wanted: string,
  seen: AnnouncedTracker[],
  fingerprint: string | undefined,
): string {
  const taken = new Set(
    seen.filter((other) => fingerprint === undefined || other.fingerprint !== fingerprint)
      .map((other) => other.name.toLowerCase()),
  );
  if (!taken.has(wanted.toLowerCase())) return wanted;
  const bytes = (text: string) => new TextEncoder().encode(text).length;
  const numbered = (n: number) => {
    const suffix = `-${n}`;
    let base = wanted;
    while (base.length > 0 && bytes(base + suffix) > MAX_NAME_BYTES) base = base.slice(0, -1);
    return base + suffix;
  };
  // Of taken.size + 1 numbers, one at least is free.
  let n = 2;
  while (n <= taken.size + 1 && taken.has(numbered(n).toLowerCase())) n++;
  return numbered(n);
}

/**
 * Whether a tracker listening on `host` should announce itself: not when it
 * listens on loopback only, where no other machine can reach it.
 */
export function reachableFromNetwork(host: string): boolean {
  return isWildcard(host) || !(host === "localhost" || /^127\./.test(host) || host === "::1");
}

/**
 * Starts announcing; failures (a socket that cannot join the group, no
 * permission to list the interfaces) go to `warn`, and then undefined when
 * nothing could be started.
 */
export function announceTracker(options: AnnounceOptions): Announcement | undefined {
  // The mDNS library reads these from socket callbacks, where a refusal would crash.
  const missing = ["hostname", "networkInterfaces"].filter((kind) =>
    Deno.permissions.querySync({ name: "sys", kind: kind as "hostname" }).state !== "granted"
  );
  if (missing.length > 0) {
    options.warn(
      `warning: not announcing the tracker on the local network: it needs --allow-sys=${
        missing.join(",")
      }; peers must be given its address (--tracker)`,
    );
    return undefined;
  }
  const name = options.name ?? defaultTrackerName();
  const txt = encodeTrackerTxt({
    name,
    version: options.version,
    tls: options.fingerprint !== undefined,
    fingerprint: options.fingerprint,
    host: isWildcard(options.host) ? undefined : options.host,
  });
  let warned = false;
  const warn = (error: unknown) => {
    if (warned) return;
    warned = true;
    options.warn(
      `warning: cannot announce the tracker on the local network (${
        (error as Error)?.message ?? error
      }); peers must be given its address (--tracker)`,
    );
  };
  const bonjour = new Bonjour({}, warn);
  // A socket error (the port refused, say) is emitted, and would throw with no listener.
  mdnsOf(bonjour).on("error", warn);
  const service = bonjour.publish({
    // DNS-SD instance names are one label: dots would split it.
    name: name.replaceAll(".", "-"),
    type: TRACKER_SERVICE_TYPE,
    port: options.port,
    txt,
    disableIPv6: true,
    // The library's probe for a name in use only logs a conflict to the console: the name is
    // chosen beforehand instead, from a browse (freeTrackerName).
    probe: false,
  });
  service.on("error", warn);
  return {
    name,
    stop: () =>
      new Promise<void>((resolve) => {
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          bonjour.destroy(() => resolve());
        };
        // The goodbye packet is sent at once; never wait long for it.
        const timer = setTimeout(finish, 1_000);
        bonjour.unpublishAll(finish);
      }),
  };
}

/** The multicast-DNS socket under a Bonjour instance (not in its type declarations). */
function mdnsOf(bonjour: Bonjour): { on(event: string, listener: (e: unknown) => void): void } {
  return (bonjour as unknown as { server: { mdns: ReturnType<typeof mdnsOf> } }).server.mdns;
}
