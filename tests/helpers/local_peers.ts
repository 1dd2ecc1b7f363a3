/**
 * A tracker and peers in the test's own process, on loopback port 0, over
 * TLS as in real use: the tracker can be stopped and started again on its
 * port, and a source can hold its pieces back until the test lets them go,
 * so a test decides exactly when a download is "in the middle".
 */
import { join } from "node:path";
import { formatAddress } from "../../lib/protocol/address.ts";
import { parseTrackerAddresses } from "../../lib/peer/tracker_addresses.ts";
import { deadline } from "../../lib/async/deadline.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";
import { login, register } from "../../lib/peer/account.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { PieceServer, type PieceServerOptions } from "../../lib/peer/piece_server.ts";
import { Presence } from "../../lib/peer/presence.ts";
import { peerIdentity, startServing } from "../../lib/peer/serve.ts";
import { ShareCatalog } from "../../lib/peer/share_catalog.ts";
import { publish } from "../../lib/peer/shares.ts";
import type { TrackerEndpoint } from "../../lib/peer/tracker_link.ts";
import { startTestTracker } from "./tracker.ts";

/** A tracker running in this process, on its database in `dir`. */
export interface LocalTracker extends AsyncDisposable {
  /** `127.0.0.1:PORT`, for `--tracker` and endpoints. */
  address: string;
  port: number;
  /** Stops listening and closes every connection, as a dying tracker would; the data stays. */
  stop(): Promise<void>;
}

/**
 * Starts a TLS tracker on `dir`/tracker.db (its key and certificate beside
 * it, so a restart on the same `dir` keeps them), on `port` or a free one.
 */
export async function startLocalTracker(dir: string, port = 0): Promise<LocalTracker> {
  const running = await startTestTracker({
    db: join(dir, "tracker.db"),
    port,
    tls: await loadOrCreateIdentity(dir, "tracker.db.tls-"),
    ticketKey: await loadOrCreateTicketKey(dir, "tracker.db.ticket-key.pem"),
  });
  return {
    address: formatAddress(running.address),
    port: running.port,
    stop: async () => await running[Symbol.asyncDispose](),
    // `await using` stops it too; stopping twice is harmless.
    [Symbol.asyncDispose]: async () => await running[Symbol.asyncDispose](),
  };
}

/** A peer in this process: its home, its tracker endpoint, and the notices it was given. */
export interface LocalPeer extends Disposable {
  username: string;
  home: PeerHome;
  endpoint: TrackerEndpoint;
  notices: string[];
}

/** Opens a peer home in `dir`/`username` pointed at `tracker`; registers and logs in unless told not to. */
export async function localPeer(
  dir: string,
  username: string,
  tracker: string,
  signUp = true,
): Promise<LocalPeer> {
  const home = PeerHome.open(join(dir, username));
  const notices: string[] = [];
  const endpoint: TrackerEndpoint = {
    addresses: parseTrackerAddresses(tracker),
    plaintext: false,
    notice: (line) => notices.push(line),
  };
  if (signUp) {
    await register(home, endpoint, username, `${username}-password`);
    await login(home, endpoint, username, `${username}-password`);
  }
  return { username, home, endpoint, notices, [Symbol.dispose]: () => home.close() };
}

/** A source that serves a few pieces, then holds the rest until {@link HeldSource.release}. */
export interface HeldSource extends AsyncDisposable {
  /** Pieces read for downloaders so far. */
  readonly served: number;
  /** Lets every held and later piece go. */
  release(): void;
}

/**
 * Publishes `file` as `name` from `peer` and serves it like `peer.ts serve`,
 * online at the tracker, except that after `allow` pieces every piece waits
 * for {@link HeldSource.release} (`Infinity` holds nothing back). `faults`
 * are the piece server's test-only ones: a slow or a corrupting source.
 */
export async function heldSource(
  peer: LocalPeer,
  file: string,
  name: string,
  allow: number,
  faults: Pick<PieceServerOptions, "corruptPieces" | "pieceDelayMs"> = {},
): Promise<HeldSource> {
  await publish(peer.home, peer.endpoint, file, name);
  const shares = new ShareCatalog(peer.home);
  const gate = Promise.withResolvers<void>();
  let served = 0;
  const held: Catalog = {
    async find(contentId) {
      const content = await shares.find(contentId);
      if (!content) return null;
      return {
        manifest: content.manifest,
        have: content.have,
        read: async (index, into) => {
          if (++served > allow) await gate.promise;
          await content.read(index, into);
        },
      };
    },
    close: () => shares.close(),
  };
  const identity = await peerIdentity(peer.home, peer.endpoint);
  const server = new PieceServer(held, {
    username: () => peer.username,
    tls: identity,
    ...faults,
  });
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  const online = Promise.withResolvers<void>();
  const presence = new Presence({
    tracker: peer.endpoint,
    home: peer.home,
    port,
    identity,
    onTicketKey: (key) => server.trustTicketKey(key),
    advertise: "127.0.0.1",
    log: (line) => {
      if (line.startsWith("online as")) online.resolve();
    },
    onLoggedOut: (error) => online.reject(error),
  });
  presence.start();
  try {
    await deadline(online.promise, 20_000, { what: `${peer.username} coming online` });
  } catch (error) {
    await presence.stop();
    await server.close();
    throw error;
  }
  return {
    get served() {
      return served;
    },
    release: () => gate.resolve(),
    async [Symbol.asyncDispose]() {
      gate.resolve();
      await presence.stop();
      await server.close();
    },
  };
}

/** A peer serving its shares in this process, like `peer.ts serve`; dispose to stop. */
export interface ServingPeer extends AsyncDisposable {
  port: number;
  /** The lines serve printed (`online as ...`). */
  lines: string[];
}

/** Options of {@link servePeer}: the flags of `peer.ts serve` it can stand for. */
export interface ServePeerOptions {
  /** As `--insecure-plaintext`: no TLS to the tracker nor for the piece server. */
  plaintext?: boolean;
  /** As `serve --advertise HOST`. */
  advertise?: string;
}

/**
 * Serves the shares of the home in `homeDir` (logged in at `tracker`) on
 * 127.0.0.1, as `peer.ts serve --host 127.0.0.1` does, and waits until the
 * tracker has it online.
 */
export async function servePeer(
  homeDir: string,
  tracker: string,
  options: ServePeerOptions = {},
): Promise<ServingPeer> {
  const home = PeerHome.open(homeDir);
  const lines: string[] = [];
  const online = Promise.withResolvers<void>();
  let serving;
  try {
    serving = await startServing(home, {
      tracker: {
        addresses: parseTrackerAddresses(tracker),
        plaintext: options.plaintext ?? false,
        notice: (l) => lines.push(l),
      },
      listen: { host: "127.0.0.1", port: 0 },
      advertise: options.advertise,
      log: (line) => {
        lines.push(line);
        if (line.startsWith("online as")) online.resolve();
      },
      warn: (line) => lines.push(line),
      onLoggedOut: (error) => online.reject(error),
    });
    await deadline(online.promise, 20_000, { what: `${homeDir} coming online` });
  } catch (error) {
    await serving?.stop();
    home.close();
    throw error;
  }
  const running = serving;
  return {
    port: running.address.port,
    lines,
    async [Symbol.asyncDispose]() {
      await running.stop();
      home.close();
    },
  };
}
