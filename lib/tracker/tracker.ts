import { type Address, formatAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";
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
import { PartialSources } from "./partial_sources.ts";
import { newSession, plainHost, type Session } from "./session.ts";
import type { FileListing, PeerRecord, TrackerStore } from "./store.ts";

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
  /** Most partial sources kept in all. @default {20000} */
  maxPartialSources?: number;
  /**
   * Let peers announce a host other than the one they connect from (their
   * `serve --advertise`). Off, the tracker hands out only a connection's own
   * source address, so nobody can point fetchers at another host.
   * @default {false}
   */
  allowAdvertisedHosts?: boolean;
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

  constructor(store: TrackerStore, options: TrackerOptions) {
    this.#store = store;
    this.#ticketKey = options.ticketKey;
    this.#accounts = new Accounts(store, {
      announced: (username) => this.#announced.get(username),
      forget: (connection) => this.#forget(connection),
    }, options);
    this.#partial = new PartialSources(this.#certificates, options.maxPartialSources);
    this.#allowAdvertisedHosts = options.allowAdvertisedHosts ?? false;
    this.#server = new ProtocolServer<typeof TRACKER_METHODS, Session>(
      TRACKER_METHODS,
      this.#handlers(),
      {
        kind: "tracker",
        initialState: newSession,
        onClose: (connection) => this.#forget(connection),
        idleTimeoutMs: options.idleTimeoutMs ?? 3.5 * HEARTBEAT_MS,
        warn: options.warn,
        tls: options.tls,
        maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      },
    );
  }

  /**
   * Starts serving; returns the bound address. Only a tracker that has bound
   * its port writes to the store: at start nobody is connected yet, so every
   * peer is offline until it reconnects. (The store is written as soon as the
   * port is bound, before any connection can be handled, so nobody is marked
   * offline after announcing.)
   */
  async listen(address: Address): Promise<Address> {
    const bound = await this.#server.listen(address);
    this.#store.markAllPeersOffline();
    this.#accounts.pruneSessions();
    return bound;
  }

  /** Stops serving and closes every connection; the store stays open. */
  async close(): Promise<void> {
    await this.#server.close();
  }

  /** How many partial sources (connection, content) the tracker holds now. */
  get partialSourceCount(): number {
    return this.#partial.size;
  }

  #forget(connection: Connection<Session>): void {
    this.#partial.forget(connection);
    const { announcedAs, serving } = connection.state;
    if (serving?.certificate) this.#certificates.release(serving.certificate);
    connection.state.announcedAs = null;
    connection.state.serving = null;
    if (announcedAs !== null && this.#announced.get(announcedAs) === connection) {
      this.#announced.delete(announcedAs);
      this.#store.setPeerOffline(announcedAs);
    }
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
  #checkAddressFree(username: string, host: string, port: number): void {
    const other = this.#store.peersAt(host, port)
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
  #restorePresence(username: string, connection: Connection<Session>): void {
    const { serving } = connection.state;
    if (serving === null || this.#announced.get(username) !== connection) return;
    this.#store.restorePeer(username, serving.host, serving.port, serving.certificate);
  }

  #handlers(): Handlers<typeof TRACKER_METHODS, Session> {
    const store = this.#store;
    return {
      ...this.#accounts.handlers(),
      announce: ({ host, port, instance, certificate, proof }, connection) => {
        const username = this.#accounts.requireUser(connection);
        checkCertificateProof(certificate, proof, username);
        const advertised = this.#servingHost(host, connection);
        this.#checkAddressFree(username, advertised, port);
        const previous = this.#announced.get(username);
        const replaced = previous !== undefined && previous !== connection ? previous : null;
        // Two serving processes of one account would take turns; the same one reconnecting
        // (its old connection not yet timed out) replaces itself.
        if (replaced && (instance === undefined || replaced.state.instance !== instance)) {
          const peer = store.getPeer(username);
          throw new ShoalError(
            "ALREADY_ONLINE",
            `${username} is already online${peer ? ` at ${formatAddress(peer)}` : ""} ` +
              "from another serve or shell; stop that one first",
          );
        }
        // Claimed before anything changes, so a refused certificate leaves all as it was.
        const claimed = certificate ?? null;
        if (claimed !== null) this.#certificates.claim(claimed, username);
        if (replaced) {
          this.#forget(replaced);
          replaced.close();
        }
        const earlier = connection.state.serving?.certificate;
        if (earlier) this.#certificates.release(earlier);
        connection.state.instance = instance ?? null;
        this.#announced.set(username, connection);
        connection.state.announcedAs = username;
        connection.state.serving = { host: advertised, port, certificate: claimed };
        store.setPeerOnline(username, advertised, port, claimed);
        return Promise.resolve({
          address: formatAddress({ host: advertised, port }),
          ticketKey: this.#ticketKey.publicKeyBase64,
        });
      },
      heartbeat: (_, connection) => {
        const username = this.#accounts.requireUser(connection);
        this.#restorePresence(username, connection);
        return Promise.resolve({});
      },
      publish: ({ name, type, size, contentId, files }, connection) => {
        const owner = this.#accounts.requireUser(connection);
        const publishedAt = new Date().toISOString();
        const replaced = store.publish({
          owner,
          name,
          type,
          size,
          contentId,
          publishedAt,
          files: files ?? 1,
        });
        return Promise.resolve({ replaced });
      },
      members: async ({ contentId, files }, connection) => {
        const owner = this.#accounts.requireUser(connection);
        await store.addFolderMembers(owner, contentId, files);
        return {};
      },
      holders: async ({ contentIds }, connection) => {
        const user = this.#accounts.requireUser(connection);
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
        return { sources, holds, ticket };
      },
      lookupContent: async ({ contentId }, connection) => {
        this.#accounts.requireUser(connection);
        const rows = await store.filesWithContent(contentId, MAX_LISTINGS);
        return { files: rows.map(toWireListing), total: rows.length };
      },
      unpublish: ({ name }, connection) => {
        const owner = this.#accounts.requireUser(connection);
        if (!store.unpublish(owner, name)) {
          throw new ShoalError("NOT_FOUND", `you have not published a file named "${name}"`);
        }
        return Promise.resolve({});
      },
      lookup: ({ name, owner }, connection) => {
        this.#accounts.requireUser(connection);
        // One row more than a reply carries says whether counting them all is needed.
        const rows = store.filesNamed(name, { owner, limit: MAX_LISTINGS + 1 });
        const total = rows.length > MAX_LISTINGS ? store.countFilesNamed(name, owner) : rows.length;
        return Promise.resolve({
          files: rows.slice(0, MAX_LISTINGS).map(toWireListing),
          total,
        });
      },
      search: ({ text }, connection) => {
        this.#accounts.requireUser(connection);
        const rows = store.searchFiles(text, MAX_LISTINGS + 1);
        const total = rows.length > MAX_LISTINGS ? store.countSearch(text) : rows.length;
        return Promise.resolve({
          files: rows.slice(0, MAX_LISTINGS).map(toWireListing),
          total,
        });
      },
      sources: async ({ contentId, owner }, connection) => {
        const user = this.#accounts.requireUser(connection);
        const complete: Source[] = store.onlineOwnersOf(contentId, { owner, limit: MAX_SOURCES })
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
          : store.countOnlineOwnersOf(contentId, owner) + partial.total;
        const ticket = await signTicket(this.#ticketKey.privateKey, user, contentId);
        return {
          sources: [...complete, ...partial.sources].slice(0, MAX_SOURCES),
          total,
          ticket,
        };
      },
      downloading: ({ contentId, host, port, certificate, proof }, connection) => {
        const owner = this.#accounts.requireUser(connection);
        checkCertificateProof(certificate, proof, owner);
        const servingHost = this.#servingHost(host, connection);
        this.#checkAddressFree(owner, servingHost, port);
        const address = formatAddress({ host: servingHost, port });
        // When the tracker holds as many as it may, the download goes on unlisted.
        this.#partial.add(connection, contentId, {
          owner,
          address,
          partial: true,
          certificate: certificate ?? null,
        });
        return Promise.resolve({ address, ticketKey: this.#ticketKey.publicKeyBase64 });
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
