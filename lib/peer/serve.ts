import { type Address, isWildcard } from "../protocol/address.ts";
import { loadOrCreateIdentity } from "../identity/key_files.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import type { ShoalError } from "../protocol/errors.ts";
import type { PeerHome } from "./home.ts";
import { PieceServer } from "./piece_server.ts";
import type { UploadLog } from "./upload_log.ts";
import { processBudget } from "./rate.ts";
import { ShareCatalog } from "./share_catalog.ts";
import { Presence } from "./presence.ts";
import { notLoggedIn, type TrackerEndpoint } from "./tracker_link.ts";

/**
 * The host a serving peer names to the tracker: the one it was told to
 * advertise, else the address it is bound to, unless that is a wildcard
 * (then the tracker hands out the address the peer connects from).
 */
export function advertisedHost(
  advertise: string | undefined,
  listenHost: string,
  bound: Address,
): string | undefined {
  return advertise ?? (isWildcard(listenHost) ? undefined : bound.host);
}

/**
 * The TLS identity a peer serves with, made in its home on first use; none
 * with --insecure-plaintext.
 */
export function peerIdentity(
  home: PeerHome,
  tracker: TrackerEndpoint,
): Promise<TlsIdentity | undefined> {
  return tracker.plaintext ? Promise.resolve(undefined) : loadOrCreateIdentity(home.dir, "tls-");
}

/** Options of {@link startServing}. */
export interface ServeOptions {
  tracker: TrackerEndpoint;
  /** Where to listen; port 0 picks a free one. */
  listen: Address;
  /** The host other peers should dial, when the tracker cannot tell. */
  advertise?: string;
  log: (line: string) => void;
  /** Where the piece server's warnings go (they quote what clients sent). @default {console.error} */
  warn?: (line: string) => void;
  onLoggedOut: (error: ShoalError) => void;
  /** Where each upload and refusal is logged. @default {none} */
  uploads?: UploadLog;
  /** Upload budget of the process, bytes a second (shared with its fetches). @default {none} */
  maxUploadRate?: number | null;
  /** Downloaders sent pieces at once. @default {4} */
  uploadSlots?: number;
}

/** A running peer: its piece server and its presence at the tracker. */
export interface Serving {
  address: Address;
  stop(): Promise<void>;
  /** Whether the tracker ever took it online (not while another serve of the account is). */
  wasOnline(): boolean;
}

/**
 * Serves this peer's shares and keeps it online at the tracker until stopped.
 *
 * @example
 * ```ts
 * const serving = await startServing(home, { tracker, listen: { host: "0.0.0.0", port: 0 }, log, onLoggedOut });
 * await serving.stop();
 * ```
 */
export async function startServing(home: PeerHome, options: ServeOptions): Promise<Serving> {
  if (!home.session()) throw notLoggedIn();
  const identity = await peerIdentity(home, options.tracker);
  const server = new PieceServer(new ShareCatalog(home), {
    tls: identity,
    username: () => home.session()?.username ?? null,
    warn: options.warn,
    uploads: options.uploads,
    uploadLimiter: processBudget("upload", options.maxUploadRate),
    uploadSlots: options.uploadSlots,
    // Fault injection for the swarm tests; not a user feature, so not a flag.
    corruptPieces: Deno.env.get("SHOAL_TEST_CORRUPT_PIECES") === "1",
    pieceDelayMs: Number(Deno.env.get("SHOAL_TEST_PIECE_DELAY_MS") ?? 0),
  });
  const address = await server.listen(options.listen);
  const presence = new Presence({
    tracker: options.tracker,
    home,
    port: address.port,
    identity,
    onTicketKey: (key) => server.trustTicketKey(key),
    advertise: advertisedHost(options.advertise, options.listen.host, address),
    log: options.log,
    onLoggedOut: options.onLoggedOut,
  });
  presence.start();
  return {
    address,
    stop: async () => {
      await presence.stop();
      await server.close();
    },
    wasOnline: () => presence.wasOnline,
  };
}
