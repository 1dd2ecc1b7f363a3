/**
 * Finding trackers on the local network: a bounded DNS-SD browse for
 * `_shoal._tcp` over multicast DNS, for a peer with no tracker configured and
 * for `peer.ts trackers`. What a tracker announces is only a claim: its
 * fingerprint is checked against the certificate it presents on first
 * contact (lib/peer/tracker_link.ts).
 *
 * @example
 * ```ts
 * const found = await browseTrackers({ waitMs: 2_000, signal });
 * for (const tracker of found) console.log(tracker.name, tracker.address);
 * ```
 */
import type { Service } from "bonjour-service";
import { delay } from "../async/delay.ts";
import { decodeTrackerTxt, TRACKER_SERVICE_TYPE } from "../protocol/discovery.ts";
import { formatAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";

/** A tracker seen on the network. */
export interface FoundTracker {
  name: string;
  /** Where to reach it, `host:port`. */
  address: string;
  host: string;
  port: number;
  tls: boolean;
  /** Its certificate's fingerprint, as announced (TLS only). */
  fingerprint?: string;
  /** The protocol version it speaks. */
  version: number;
}

/** How long a browse listens for answers unless told otherwise. */
export const DEFAULT_BROWSE_MS = 2_000;

/** What a browse hands over about one service: the fields of a DNS-SD answer used here. */
export interface SeenService {
  port: number;
  txt?: Record<string, unknown>;
  /** The A records of its host. */
  addresses?: string[];
  /** The address the answer came from. */
  referer?: { address: string };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * A tracker from one DNS-SD answer, or undefined when the answer is not a
 * Shoal tracker's. The address dialled is, in order: the one it listens on
 * (TXT `host`), the address the answer came from when the host lists it (the
 * interface that reached us), its first IPv4 address, the answer's source.
 */
export function trackerFromService(service: SeenService): FoundTracker | undefined {
  const txt = decodeTrackerTxt(service.txt);
  if (!txt || !Number.isInteger(service.port) || service.port < 1 || service.port > 65535) {
    return undefined;
  }
  const addresses = service.addresses ?? [];
  const from = service.referer?.address;
  const host = txt.host ??
    (from && addresses.includes(from) ? from : undefined) ??
    addresses.find((address) => IPV4.test(address)) ??
    from;
  if (!host) return undefined;
  return {
    name: txt.name,
    address: formatAddress({ host, port: service.port }),
    host,
    port: service.port,
    tls: txt.tls,
    ...(txt.fingerprint ? { fingerprint: txt.fingerprint } : {}),
    version: txt.version,
  };
}

/** Options of {@link browseTrackers}. */
export interface BrowseOptions {
  /** How long to listen for answers. @default {2000} */
  waitMs?: number;
  /** Ends the browse at once (with the signal's reason). */
  signal?: AbortSignal;
  /** Ends the wait early, with what was found, as soon as this says enough was. */
  until?: (found: FoundTracker[]) => boolean;
}

/**
 * Asks the local network for Shoal trackers and collects the answers for
 * `waitMs`; the socket is closed however the wait ends. Sorted by name, then
 * address; one entry per address.
 */
export async function browseTrackers(options: BrowseOptions = {}): Promise<FoundTracker[]> {
  // The mDNS library lists the interfaces from a socket callback, where a refusal would crash.
  if (Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state !== "granted") {
    throw new ShoalError(
      "UNREACHABLE",
      "cannot look for trackers on the local network without --allow-sys=networkInterfaces",
      { hint: "run with that permission (deno task peer has it), or name the tracker: --tracker" },
    );
  }
  const found = new Map<string, FoundTracker>();
  let failure: unknown;
  // Loaded here, not at start: only a command that looks for a tracker pays for the mDNS library.
  const { Bonjour } = await import("bonjour-service");
  const bonjour = new Bonjour({}, (error: unknown) => failure ??= error);
  const mdns = (bonjour as unknown as {
    server: { mdns: { on(event: string, listener: (error: unknown) => void): void } };
  }).server.mdns;
  mdns.on("error", (error) => failure ??= error);
  const enough = new AbortController();
  const browser = bonjour.find({ type: TRACKER_SERVICE_TYPE }, (service: Service) => {
    const tracker = trackerFromService(service as unknown as SeenService);
    if (!tracker) return;
    found.set(tracker.address, tracker);
    if (options.until?.([...found.values()])) enough.abort();
  });
  const signals = [enough.signal, ...options.signal ? [options.signal] : []];
  try {
    await delay(options.waitMs ?? DEFAULT_BROWSE_MS, { signal: AbortSignal.any(signals) });
  } catch (error) {
    if (!enough.signal.aborted || options.signal?.aborted) throw error;
  } finally {
    browser.stop();
    await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
  }
  if (failure && found.size === 0) {
    throw new ShoalError(
      "UNREACHABLE",
      `cannot look for trackers on the local network: ${(failure as Error)?.message ?? failure}`,
      { hint: "name the tracker instead: --tracker HOST:PORT (or SHOAL_TRACKER)" },
    );
  }
  return [...found.values()].sort((a, b) =>
    a.name.localeCompare(b.name) || a.address.localeCompare(b.address)
  );
}
