import { type Address, formatAddress } from "../protocol/address.ts";
import { Batcher } from "../async/batcher.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import {
  HEARTBEAT_MS,
  type Listing,
  MAX_HOLDERS_PER_ID,
  MAX_LISTINGS,
  MAX_SOURCES,
  type Source,
  TRACKER_METHODS,
} from "../protocol/messages.ts";
import { type Connection, type Handlers, ProtocolServer } from "../protocol/server.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import { ANY_CONTENT, signTicket } from "../protocol/tickets.ts";
import { Accounts, type AccountsOptions } from "./accounts.ts";
import { certificateProofHolds } from "../identity/certificate.ts";
import { CertificateOwners } from "./certificate_owners.ts";
import { EventFeed, type OfflineReason } from "./events.ts";
import { SHOAL_VERSION } from "../version.ts";
import { defaultMaxConnections } from "./open_files.ts";
import { PartialSources } from "./partial_sources.ts";
import { newSession, plainHost, type Session } from "./session.ts";
import type { FileListing, PeerAddress, PeerRecord, TrackerStore } from "./store.ts";

/** Options of a {@link Tracker}; those of its {@link Accounts} too. */
export interface TrackerOptions extends AccountsOptions {
  /**
   * A peer's control connection that sends nothing (not even a heartbeat)
   * for this long counts as gone.
   * @default {35000}
   */
  idleTimeoutMs?: number;
  /** Where one-line warnings go. @default {console.error} */
  warn?: (line: string) => void;
  /** The key download tickets are signed with, and its public half for peers. */
  ticketKey: { privateKey: CryptoKey; publicKeyBase64: string };
  /** Serve TLS with this identity; without it, plaintext. */
  tls?: TlsIdentity;
  /** @default {64} */
  maxConnectionsPerAddress?: number;
  /**
   * Peers' connections kept at once; one more is closed at accept, so the
   * process keeps descriptors for its database and files.
   * @default {the soft open-file limit less 1,024, or a quarter of a lower limit (see open_files.ts)}
   */
  maxConnections?: number;
  /** Most partial sources kept in all. @default {20000} */
  maxPartialSources?: number;
  /**
   * Let peers announce a host other than the one they connect from (their
   * `serve --advertise`). Off, the tracker hands out only a connection's own
   * source address, so nobody can point fetchers at another host.
   * @default {false}
   */
  allowAdvertisedHosts?: boolean;
  /**
   * How often this process tells the store it is alive, and takes offline
   * the peers of tracker processes that stopped saying so (on a store that
   * several processes share).
   * @default {5000}
   */
  presenceEveryMs?: number;
  /**
   * Told how long each index query (`lookup`, `search`, `sources`) took, in
   * seconds, for the operator's metrics.
   */
  onQuery?: (method: "lookup" | "search" | "sources", seconds: number) => void;
}

/** Formats a stored listing as the protocol's {@link Listing}. */
export function toWireListing(file: FileListing): Listing {
  return {
    owner: file.owner,
    name: file.name,
    type: file.type,
    size: file.size,
    contentId: file.contentId,
    publishedAt: file.publishedAt,
    online: file.online,
    address: file.online && file.host !== null && file.port !== null
      ? formatAddress({ host: file.host, port: file.port })
      : null,
    files: file.files ?? 1,
  };
}

/**
 * The tracker: who is online where, and who shares what, behind the
 * accounts and sessions of {@link Accounts}. It never sees file bytes or
 * local paths.
 *
 * @example
 * ```ts
 * const tracker = new Tracker(SqliteTrackerStore.open("tracker.db"));
 * const bound = await tracker.listen({ host: "0.0.0.0", port: 5050 });
 * // ...
 * await tracker.close();
 * ```
 */
export class Tracker {
  readonly #store: TrackerStore;
  readonly #server: ProtocolServer<typeof TRACKER_METHODS, Session>;
  /** The connection each online user announced on; the newest wins. */
  readonly #announced = new Map<string, Connection<Session>>();
  /** Whose each certificate handed out is, so one account cannot pass for another. */
  readonly #certificates = new CertificateOwners();
  /** Peers still downloading a content, who serve the pieces they have verified. */
  readonly #partial: PartialSources<Connection<Session>>;
  readonly #ticketKey: TrackerOptions["ticketKey"];
  readonly #accounts: Accounts;
  readonly #allowAdvertisedHosts: boolean;
  readonly #warn: (line: string) => void;
  readonly #presenceEveryMs: number;
  #presenceTimer: ReturnType<typeof setInterval> | undefined;
  /** The presence beat under way, if any: one at a time, and waited for by {@link close}. */
  #beat: Promise<void> | null = null;
  /** Going-offline writes under way, waited for by {@link close}. */
  readonly #forgetting = new Set<Promise<void>>();
  readonly #events: EventFeed;
  readonly #onQuery: TrackerOptions["onQuery"];
  /**
   * On a shared store, whether each serving peer whose heartbeat came is
   * still this process's (and online): heartbeats that come while one query
   * is under way are checked together in the next.
   */
  readonly #keptPeers: Batcher<string, boolean> | null;

  constructor(store: TrackerStore, options: TrackerOptions) {
    this.#store = store;
    this.#events = options.events ?? new EventFeed();
    this.#onQuery = options.onQuery;
    this.#ticketKey = options.ticketKey;
    this.#accounts = new Accounts(store, {
      announced: (username) => this.#announced.get(username),
      forget: (connection, reason) => this.#forget(connection, reason),
    }, { ...options, events: this.#events });
    this.#partial = new PartialSources(this.#certificates, options.maxPartialSources);
    this.#allowAdvertisedHosts = options.allowAdvertisedHosts ?? false;
    this.#warn = options.warn ?? console.error;
    this.#presenceEveryMs = options.presenceEveryMs ?? 5_000;
    const keepPeers = store.keepPeers?.bind(store);
    this.#keptPeers = keepPeers
      ? new Batcher(
        (usernames) => {
          const peers: PeerAddress[] = [];
          for (const username of usernames) {
            const serving = this.#announced.get(username)?.state.serving;
            if (serving) peers.push({ username, ...serving });
          }
          return keepPeers(peers);
        },
        undefined,
        // A failure other than the database's absence (an account removed meanwhile, say) may
        // be one peer's: then each is checked alone, and only that one's heartbeat fails.
        (error) => toShoalError(error).code !== "STORE_UNAVAILABLE",
      )
      : null;
    this.#server = new ProtocolServer<typeof TRACKER_METHODS, Session>(
      TRACKER_METHODS,
      this.#handlers(),
      {
        kind: "tracker",
        initialState: newSession,
        onClose: (connection) => void this.#forget(connection, "disconnected"),
        idleTimeoutMs: options.idleTimeoutMs ?? 3.5 * HEARTBEAT_MS,
        warn: options.warn,
        tls: options.tls,
        maxConnectionsPerAddress: options.maxConnectionsPerAddress,
        maxConnections: options.maxConnections ?? defaultMaxConnections(),
      },
    );
  }

  /**
   * Starts serving; returns the bound address. Only a tracker that has bound
   * its port writes to the store: at start nobody is connected to this
   * process yet, so the peers no live process holds go offline until they
   * reconnect (on SQLite, every peer; on a shared store, never another live
   * process's). (The store is written as soon as the port is bound, before
   * any connection can be handled, so nobody is marked offline after
   * announcing.)
   */
  async listen(address: Address): Promise<Address> {
    const bound = await this.#server.listen(address);
    try {
      await this.#store.joinPresence();
      await this.#accounts.pruneSessions();
    } catch (error) {
      await this.#server.close();
      throw error;
    }
    this.#presenceTimer = setInterval(() => {
      this.#beat ??= this.#presenceBeat().finally(() => this.#beat = null);
    }, this.#presenceEveryMs);
    this.#events.emit("start", null, { version: SHOAL_VERSION, address: formatAddress(bound) });
    return bound;
  }

  /**
   * Tells the store this process is alive (so the others do not take its
   * peers offline) and lets it take offline the peers of dead processes. A
   * process the others took for dead (the database away for longer than the
   * window) writes its peers back.
   */
  async #presenceBeat(): Promise<void> {
    try {
      const { rejoined } = await this.#store.presenceHeartbeat();
      if (!rejoined) return;
      for (const [username, connection] of this.#announced) {
        const { serving } = connection.state;
        if (serving === null) continue;
        if (this.#store.keepPeer) {
          // Announced through another process while this one was taken for dead: that one holds it.
          const { host, port, certificate } = serving;
          if (!await this.#store.keepPeer(username, host, port, certificate)) {
            await this.#forget(connection, "replaced");
          }
          continue;
        }
        await this.#store.setPeerOnline(username, serving.host, serving.port, serving.certificate);
      }
    } catch (error) {
      // The store says in one line when it goes away; anything else is worth a line too.
      const failure = toShoalError(error);
      if (failure.code !== "STORE_UNAVAILABLE") {
        this.#warn(`presence heartbeat failed: ${failure.message}`);
      }
    }
  }

  /** What happens on this tracker, as it happens: logins, presence, publications, tickets. */
  get events(): EventFeed {
    return this.#events;
  }

  /** How many control connections are open now. */
  get connectionCount(): number {
    return this.#server.connectionCount;
  }

  /**
   * The protocol login's password check and back-off, for the dashboard's
   * login: `address` is the caller's host. Returns the username as registered.
   */
  checkPassword(username: string, password: string, address: string): Promise<string> {
    return this.#accounts.checkPassword(username, password, plainHost(address), "dashboard");
  }

  /**
   * Stops serving and closes every connection, taking this process's peers
   * offline; the store stays open.
   */
  async close(): Promise<void> {
    clearInterval(this.#presenceTimer);
    this.#presenceTimer = undefined;
    await this.#beat;
    await this.#server.close();
    await Promise.allSettled(this.#forgetting);
    await this.#store.leavePresence().catch((error) =>
      this.#warn(`could not record this tracker's stop: ${toShoalError(error).message}`)
    );
  }

  /** How many partial sources (connection, content) the tracker holds now. */
  get partialSourceCount(): number {
    return this.#partial.size;
  }

  /**
   * Takes back what `connection` announced; settles once the store has it
   * (a failure to write it is warned of, not thrown: the connection is gone
   * either way).
   */
  #forget(
    connection: Connection<Session>,
    reason: OfflineReason = "disconnected",
  ): Promise<void> {
    this.#partial.forget(connection);
    const { announcedAs, serving } = connection.state;
    if (serving?.certificate) this.#certificates.release(serving.certificate);
    connection.state.announcedAs = null;
    connection.state.serving = null;
    if (announcedAs !== null && this.#announced.get(announcedAs) === connection) {
      this.#announced.delete(announcedAs);
      const written = this.#store.setPeerOffline(announcedAs).catch((error) =>
        this.#warn(`${announcedAs}: could not record going offline: ${toShoalError(error).message}`)
      ).finally(() => this.#forgetting.delete(written));
      this.#forgetting.add(written);
      this.#events.emit("peer.offline", announcedAs, { reason });
      return written;
    }
    return Promise.resolve();
  }

  /**
   * The host a connection may be handed out at: the address it comes from,
   * or, when the operator allows it, the host it names.
   */
  #servingHost(host: string | undefined, connection: Connection<Session>): string {
    const seen = plainHost(connection.remote.host);
    if (host === undefined || this.#allowAdvertisedHosts) return host ?? seen;
    if (plainHost(host.toLowerCase().replace(/^\[(.*)\]$/, "$1")) === seen.toLowerCase()) {
      return seen;
    }
    throw new ShoalError(
      "INVALID_INPUT",
      `this tracker hands out only the address a peer connects from (${seen}), not "${host}"; ` +
        "serve without --advertise, or ask the operator to run the tracker with --allow-advertise",
    );
  }

  /** Refuses an address another online account serves at. */
  async #checkAddressFree(username: string, host: string, port: number): Promise<void> {
    const other = (await this.#store.peersAt(host, port))
      .find((peer) => peer.online && peer.username.toLowerCase() !== username.toLowerCase());
    if (other) {
      throw new ShoalError(
        "INVALID_INPUT",
        `${formatAddress({ host, port })} is where another online account serves`,
      );
    }
  }

  /**
   * Puts a serving connection's user back online if the store lost it (an
   * operator's edit, a restored backup): the connection is up, so the peer is.
   */
  async #restorePresence(username: string, connection: Connection<Session>): Promise<void> {
    const { serving } = connection.state;
    if (serving === null || this.#announced.get(username) !== connection) return;
    if (!this.#keptPeers) {
      const { host, port, certificate } = serving;
      await this.#store.restorePeer(username, host, port, certificate);
      return;
    }
    if (await this.#keptPeers.get(username) !== false) return;
    // On a shared store: announced since through another tracker process, which now holds it.
    // This connection is no longer its serving one; its peer hears why and stops (or retries).
    await this.#forget(connection, "replaced");
    throw new ShoalError(
      "ALREADY_ONLINE",
      `${username} is now online through another of the tracker's processes, from another ` +
        "serve or shell; this connection no longer serves it",
    );
  }

  /** Times an index query for {@link TrackerOptions.onQuery} until disposed. */
  #timed(method: "lookup" | "search" | "sources"): Disposable {
    const report = this.#onQuery;
    if (!report) return { [Symbol.dispose]: () => {} };
    const started = performance.now();
    return { [Symbol.dispose]: () => report(method, (performance.now() - started) / 1000) };
  }

  #handlers(): Handlers<typeof TRACKER_METHODS, Session> {
    const store = this.#store;
    return {
      ...this.#accounts.handlers(),
      announce: async ({ host, port, instance, certificate, proof }, connection) => {
        const username = await this.#accounts.requireUser(connection);
        checkCertificateProof(certificate, proof, username);
        const advertised = this.#servingHost(host, connection);
        await this.#checkAddressFree(username, advertised, port);
        const previous = this.#announced.get(username);
        const replaced = previous !== undefined && previous !== connection ? previous : null;
        // Two serving processes of one account would take turns; the same one reconnecting
        // (its old connection not yet timed out) replaces itself.
        if (replaced && (instance === undefined || replaced.state.instance !== instance)) {
          const peer = await store.getPeer(username);
          throw new ShoalError(
            "ALREADY_ONLINE",
            `${username} is already online${peer ? ` at ${formatAddress(peer)}` : ""} ` +
              "from another serve or shell; stop that one first",
          );
        }
        // On a shared store, a serving connection through another live process counts too; the
        // same instance there is this process failing over (its old connection not yet gone).
        const elsewhere = replaced ? null : await store.peerHeldElsewhere?.(username);
        if (elsewhere && (instance === undefined || elsewhere.instance !== instance)) {
          const peer = await store.getPeer(username);
          throw new ShoalError(
            "ALREADY_ONLINE",
            `${username} is already online${peer ? ` at ${formatAddress(peer)}` : ""} ` +
              "from another serve or shell (through another of the tracker's processes); " +
              "stop that one first",
          );
        }
        // Claimed before anything changes, so a refused certificate leaves all as it was.
        const claimed = certificate ?? null;
        if (claimed !== null) this.#certificates.claim(claimed, username);
        if (replaced) {
          // Its going offline is written before this one's coming online.
          const forgotten = this.#forget(replaced, "replaced");
          replaced.close();
          await forgotten;
        }
        const earlier = connection.state.serving?.certificate;
        if (earlier) this.#certificates.release(earlier);
        connection.state.instance = instance ?? null;
        this.#announced.set(username, connection);
        connection.state.announcedAs = username;
        connection.state.serving = { host: advertised, port, certificate: claimed };
        await store.setPeerOnline(username, advertised, port, claimed);
        await store.setPeerInstance?.(username, instance ?? null);
        this.#events.emit("peer.online", username, {
          address: formatAddress({ host: advertised, port }),
        });
        return {
          address: formatAddress({ host: advertised, port }),
          ticketKey: this.#ticketKey.publicKeyBase64,
        };
      },
      heartbeat: async (_, connection) => {
        try {
          const username = await this.#accounts.requireUser(connection);
          await this.#restorePresence(username, connection);
        } catch (error) {
          // With the database away, a connection that logged in before stays up: its peer
          // keeps serving (tickets are checked offline), and is written back when it returns.
          const unavailable = toShoalError(error).code === "STORE_UNAVAILABLE";
          if (!unavailable || connection.state.username === null) throw error;
        }
        return {};
      },
      publish: async ({ name, type, size, contentId, files }, connection) => {
        const owner = await this.#accounts.requireUser(connection);
        const publishedAt = new Date().toISOString();
        const replaced = await store.publish({
          owner,
          name,
          type,
          size,
          contentId,
          publishedAt,
          files: files ?? 1,
        });
        this.#events.emit("publish", owner, { name, contentId, size, replaced });
        return { replaced };
      },
      members: async ({ contentId, files }, connection) => {
        const owner = await this.#accounts.requireUser(connection);
        await store.addFolderMembers(owner, contentId, files);
        return {};
      },
      holders: async ({ contentIds }, connection) => {
        const user = await this.#accounts.requireUser(connection);
        const found = await store.holdersOf(contentIds, MAX_HOLDERS_PER_ID);
        const sources: Source[] = [];
        const index = new Map<string, number>();
        const indexOf = (peer: PeerRecord): number | null => {
          const key = peer.username.toLowerCase();
          let at = index.get(key);
          if (at === undefined) {
            // Past MAX_SOURCES distinct accounts a batch names nobody new.
            if (sources.length >= MAX_SOURCES) return null;
            at = sources.push({
              owner: peer.username,
              address: formatAddress(peer),
              partial: false,
              certificate: peer.certificate,
            }) - 1;
            index.set(key, at);
          }
          return at;
        };
        const holds = contentIds.map((contentId) =>
          (found.get(contentId) ?? []).map(indexOf).filter((at) => at !== null)
        );
        const ticket = await signTicket(this.#ticketKey.privateKey, user, ANY_CONTENT);
        // A folder's files: one ticket for them all (content "*"), to whichever holds each.
        this.#events.emit("ticket", user, {
          contentId: ANY_CONTENT,
          for: `the holders of ${contentIds.length} files`,
          sources: sources.length,
        });
        return { sources, holds, ticket };
      },
      lookupContent: async ({ contentId }, connection) => {
        await this.#accounts.requireUser(connection);
        const rows = await store.filesWithContent(contentId, MAX_LISTINGS);
        return { files: rows.map(toWireListing), total: rows.length };
      },
      unpublish: async ({ name }, connection) => {
        const owner = await this.#accounts.requireUser(connection);
        if (!await store.unpublish(owner, name)) {
          throw new ShoalError("NOT_FOUND", `you have not published a file named "${name}"`);
        }
        this.#events.emit("unpublish", owner, { name });
        return {};
      },
      lookup: async ({ name, owner }, connection) => {
        await this.#accounts.requireUser(connection);
        using _timed = this.#timed("lookup");
        // One row more than a reply carries says whether counting them all is needed.
        const rows = await store.filesNamed(name, { owner, limit: MAX_LISTINGS + 1 });
        const total = rows.length > MAX_LISTINGS
          ? await store.countFilesNamed(name, owner)
          : rows.length;
        return { files: rows.slice(0, MAX_LISTINGS).map(toWireListing), total };
      },
      search: async ({ text }, connection) => {
        await this.#accounts.requireUser(connection);
        using _timed = this.#timed("search");
        const rows = await store.searchFiles(text, MAX_LISTINGS + 1);
        const total = rows.length > MAX_LISTINGS ? await store.countSearch(text) : rows.length;
        return { files: rows.slice(0, MAX_LISTINGS).map(toWireListing), total };
      },
      sources: async ({ contentId, owner }, connection) => {
        const user = await this.#accounts.requireUser(connection);
        const timed = this.#timed("sources");
        const online = await store.onlineOwnersOf(contentId, { owner, limit: MAX_SOURCES });
        const complete: Source[] = online
          .map((peer) => ({
            owner: peer.username,
            address: formatAddress(peer),
            partial: false,
            certificate: peer.certificate,
          }));
        const partial = this.#partial.of(contentId, {
          owner,
          skip: new Set(complete.map((source) => source.owner.toLowerCase())),
          room: MAX_SOURCES - complete.length,
        });
        const total = complete.length < MAX_SOURCES
          ? complete.length + partial.total
          : await store.countOnlineOwnersOf(contentId, owner) + partial.total;
        timed[Symbol.dispose]();
        const ticket = await signTicket(this.#ticketKey.privateKey, user, contentId);
        this.#events.emit("ticket", user, {
          contentId,
          for: owner ?? "any owner",
          sources: Math.min(total, MAX_SOURCES),
        });
        return {
          sources: [...complete, ...partial.sources].slice(0, MAX_SOURCES),
          total,
          ticket,
        };
      },
      downloading: async ({ contentId, host, port, certificate, proof }, connection) => {
        const owner = await this.#accounts.requireUser(connection);
        checkCertificateProof(certificate, proof, owner);
        const servingHost = this.#servingHost(host, connection);
        await this.#checkAddressFree(owner, servingHost, port);
        const address = formatAddress({ host: servingHost, port });
        // When the tracker holds as many as it may, the download goes on unlisted.
        this.#partial.add(connection, contentId, {
          owner,
          address,
          partial: true,
          certificate: certificate ?? null,
        });
        return { address, ticketKey: this.#ticketKey.publicKeyBase64 };
      },
    };
  }
}

/**
 * A certificate is vouched for only with its key's signature that it serves
 * this account: anyone may read another peer's certificate in `sources`, and
 * announcing it first would keep its owner from serving.
 */
function checkCertificateProof(
  certificate: string | undefined,
  proof: string | undefined,
  username: string,
): void {
  if (certificate === undefined) return;
  if (proof === undefined || !certificateProofHolds(certificate, username, proof)) {
    throw new ShoalError(
      "INVALID_INPUT",
      "the certificate comes without its key's signature for this account; " +
        "a peer must serve with its own (each home makes one)",
    );
  }
}
