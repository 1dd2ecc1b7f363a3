import { createHash, randomBytes } from "node:crypto";
import { type Address, formatAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";
import {
  HEARTBEAT_MS,
  type Listing,
  MAX_LISTINGS,
  MAX_SOURCES,
  type Source,
  TRACKER_METHODS,
} from "../protocol/messages.ts";
import { type Connection, type Handlers, ProtocolServer } from "../protocol/server.ts";
import type { TlsIdentity } from "../protocol/certificate.ts";
import { signTicket } from "../protocol/tickets.ts";
import { CertificateOwners } from "./certificate_owners.ts";
import { LoginLimiter } from "./login_limiter.ts";
import { PasswordHasher } from "./passwords.ts";
import { RegisterLimiter } from "./register_limiter.ts";
import { PartialSources } from "./partial_sources.ts";
import type { FileListing, TrackerStore } from "./store.ts";

/** What the tracker knows of one control connection. */
interface Session {
  username: string | null;
  tokenHash: string | null;
  /** The user this connection made online with `announce`, kept apart from the session. */
  announcedAs: string | null;
  /** The serving process behind the announcement, if it said. */
  instance: string | null;
  /** When this connection last recorded its session as used (ms). */
  touchedAt: number;
  /** Where the announcement said it serves, to restore it if the store lost it. */
  serving: { host: string; port: number; certificate: string | null } | null;
}

/** Options of a {@link Tracker}. */
export interface TrackerOptions {
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
  /** Backoff on failed password checks. @default {new LoginLimiter()} */
  loginLimiter?: LoginLimiter;
  /** @default {64} */
  maxConnectionsPerAddress?: number;
  /** Bounds on scrypt work in flight; tests pass a cheap cost. @default {new PasswordHasher()} */
  passwords?: PasswordHasher;
  /** Bounds on account creation. @default {new RegisterLimiter()} */
  registerLimiter?: RegisterLimiter;
  /** A session unused this long ends. @default {30 days} */
  sessionIdleMs?: number;
  /** The clock, in ms since the epoch; tests move it. @default {Date.now} */
  now?: () => number;
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

/** The default of {@link TrackerOptions.sessionIdleMs}. */
export const DEFAULT_SESSION_IDLE_MS = 30 * 24 * 3600_000;

/** A session's last use is recorded at most this often, not on every request. */
const TOUCH_EVERY_MS = 3600_000;

/** A session's public id: the start of its token's hash, which reveals nothing of the token. */
const sessionId = (tokenHash: string) => tokenHash.slice(0, 16);

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

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
  };
}

/** IPv4 peers seen through a dual-stack socket appear as `::ffff:a.b.c.d`. */
function plainHost(host: string): string {
  return host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}

/**
 * The tracker: accounts, sessions, who is online where, and who shares what.
 * It never sees file bytes or local paths.
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
  readonly #limiter: LoginLimiter;
  readonly #passwords: PasswordHasher;
  readonly #registrations: RegisterLimiter;
  readonly #sessionIdleMs: number;
  readonly #now: () => number;
  #prunedAt = 0;
  readonly #allowAdvertisedHosts: boolean;

  constructor(store: TrackerStore, options: TrackerOptions) {
    this.#store = store;
    this.#ticketKey = options.ticketKey;
    this.#limiter = options.loginLimiter ?? new LoginLimiter();
    this.#passwords = options.passwords ?? new PasswordHasher();
    this.#registrations = options.registerLimiter ?? new RegisterLimiter();
    this.#sessionIdleMs = options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
    this.#now = options.now ?? Date.now;
    this.#partial = new PartialSources(this.#certificates, options.maxPartialSources);
    this.#allowAdvertisedHosts = options.allowAdvertisedHosts ?? false;
    this.#server = new ProtocolServer<typeof TRACKER_METHODS, Session>(
      TRACKER_METHODS,
      this.#handlers(),
      {
        kind: "tracker",
        initialState: () => ({
          username: null,
          tokenHash: null,
          announcedAs: null,
          instance: null,
          touchedAt: 0,
          serving: null,
        }),
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
    this.#pruneSessions();
    return bound;
  }

  /** Stops serving and closes every connection; the store stays open. */
  async close(): Promise<void> {
    await this.#server.close();
  }

  /** Deletes sessions idle past the limit, at start and then at most hourly. */
  #pruneSessions(): void {
    const now = this.#now();
    if (now - this.#prunedAt < TOUCH_EVERY_MS) return;
    this.#prunedAt = now;
    this.#store.deleteIdleSessions(new Date(now - this.#sessionIdleMs).toISOString());
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
    const peer = this.#store.getPeer(username);
    if (
      peer?.online && peer.host === serving.host && peer.port === serving.port &&
      peer.certificate === serving.certificate
    ) return;
    this.#store.setPeerOnline(username, serving.host, serving.port, serving.certificate);
  }

  /** Attaches a session to a connection; an announcement by another user ends. */
  #signIn(connection: Connection<Session>, username: string, tokenHash: string): void {
    if (connection.state.announcedAs !== username) this.#forget(connection);
    connection.state.username = username;
    connection.state.tokenHash = tokenHash;
    connection.state.touchedAt = this.#now();
  }

  #signOut(connection: Connection<Session>): void {
    this.#forget(connection);
    connection.state.username = null;
    connection.state.tokenHash = null;
  }

  #requireUser(connection: Connection<Session>): string {
    const { username } = connection.state;
    if (username === null || connection.state.tokenHash === null) {
      throw new ShoalError("AUTH_REQUIRED", "not logged in");
    }
    // A session revoked elsewhere (logout, unregister) ends here too.
    if (this.#store.sessionUser(connection.state.tokenHash) === null) {
      this.#signOut(connection);
      throw new ShoalError("AUTH_REQUIRED", "not logged in (the session has ended)");
    }
    // A connection kept open (a serving peer) keeps its session alive, recorded hourly.
    const now = this.#now();
    if (now - connection.state.touchedAt >= TOUCH_EVERY_MS) {
      connection.state.touchedAt = now;
      this.#store.touchSession(connection.state.tokenHash, new Date(now).toISOString());
    }
    return username;
  }

  /** Checks a password, with backoff after repeated failures for the name or the address. */
  async #checkPassword(
    username: string,
    password: string,
    connection: Connection<Session>,
  ): Promise<string> {
    const attempt = await this.#limiter.acquire(
      username,
      plainHost(connection.remote.host),
      this.#now,
    );
    try {
      const user = this.#store.getUser(username);
      const valid = user
        ? await this.#passwords.verify(password, user.passwordHash)
        : await this.#passwords.verifyDummy(password).then(() => false);
      if (!user || !valid) {
        attempt.failed(this.#now());
        throw new ShoalError("AUTH_FAILED", "wrong username or password");
      }
      attempt.succeeded();
      return user.username;
    } finally {
      attempt.abandon();
    }
  }

  /** Takes a user offline whose sessions were revoked, closing their serving connection. */
  #disconnect(username: string, requester: Connection<Session>): void {
    const announced = this.#announced.get(username);
    if (!announced) return;
    this.#forget(announced);
    // The requester still waits for its reply; any other connection of theirs ends now.
    if (announced !== requester) announced.close();
  }

  #handlers(): Handlers<typeof TRACKER_METHODS, Session> {
    const store = this.#store;
    return {
      register: async ({ username, password }, connection) => {
        if (store.getUser(username)) {
          throw new ShoalError("USERNAME_TAKEN", `the username "${username}" is already taken`);
        }
        this.#registrations.take(plainHost(connection.remote.host), this.#now());
        store.createUser(username, await this.#passwords.hash(password));
        return {};
      },
      login: async ({ username, password }, connection) => {
        const canonical = await this.#checkPassword(username, password, connection);
        const token = randomBytes(32).toString("base64url");
        const tokenHash = hashToken(token);
        this.#pruneSessions();
        const at = new Date(this.#now()).toISOString();
        store.createSession(tokenHash, canonical, plainHost(connection.remote.host), at);
        this.#signIn(connection, canonical, tokenHash);
        return { token, username: canonical };
      },
      resume: ({ token }, connection) => {
        const tokenHash = hashToken(token);
        const session = store.getSession(tokenHash);
        if (session === null) {
          throw new ShoalError("AUTH_REQUIRED", "not logged in (the session has ended)");
        }
        const now = this.#now();
        if (now - Date.parse(session.lastSeen) > this.#sessionIdleMs) {
          store.deleteSession(tokenHash);
          const days = Math.round(this.#sessionIdleMs / 86_400_000 * 10) / 10;
          throw new ShoalError(
            "AUTH_REQUIRED",
            `not logged in (the session expired after ${days} days unused)`,
          );
        }
        store.touchSession(tokenHash, new Date(now).toISOString());
        this.#signIn(connection, session.username, tokenHash);
        return Promise.resolve({ username: session.username });
      },
      sessions: (_, connection) => {
        const username = this.#requireUser(connection);
        const cutoff = this.#now() - this.#sessionIdleMs;
        // Sessions past the idle limit are already dead (resume refuses them) even before pruning.
        const live = store.sessionsOf(username)
          .filter((session) => Date.parse(session.lastSeen) >= cutoff);
        const sessions = live.map((session) => ({
          id: sessionId(session.tokenHash),
          created: session.createdAt,
          lastSeen: session.lastSeen,
          address: session.address,
          current: session.tokenHash === connection.state.tokenHash,
        }));
        return Promise.resolve({ sessions });
      },
      revoke: ({ id }, connection) => {
        const username = this.#requireUser(connection);
        const session = store.sessionsOf(username)
          .find((candidate) => sessionId(candidate.tokenHash) === id);
        if (!session) {
          throw new ShoalError(
            "NOT_FOUND",
            `you have no session ${id}; list yours with: peer.ts sessions`,
          );
        }
        store.deleteSession(session.tokenHash);
        const announced = this.#announced.get(username);
        const current = session.tokenHash === connection.state.tokenHash;
        if (current) {
          this.#disconnect(username, connection);
          this.#signOut(connection);
        } else if (announced && announced.state.tokenHash === session.tokenHash) {
          // The serving process of the revoked session goes offline now, not at its next request.
          this.#disconnect(username, connection);
        }
        return Promise.resolve({ current });
      },
      logout: (_, connection) => {
        const username = this.#requireUser(connection);
        store.deleteSession(connection.state.tokenHash!);
        this.#disconnect(username, connection);
        this.#signOut(connection);
        return Promise.resolve({});
      },
      unregister: async ({ password }, connection) => {
        const username = await this.#checkPassword(
          this.#requireUser(connection),
          password,
          connection,
        );
        store.deleteUser(username);
        this.#disconnect(username, connection);
        this.#signOut(connection);
        return {};
      },
      announce: ({ host, port, instance, certificate }, connection) => {
        const username = this.#requireUser(connection);
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
        const username = this.#requireUser(connection);
        this.#restorePresence(username, connection);
        return Promise.resolve({});
      },
      publish: ({ name, type, size, contentId }, connection) => {
        const owner = this.#requireUser(connection);
        const publishedAt = new Date().toISOString();
        const replaced = store.publish({ owner, name, type, size, contentId, publishedAt });
        return Promise.resolve({ replaced });
      },
      unpublish: ({ name }, connection) => {
        const owner = this.#requireUser(connection);
        if (!store.unpublish(owner, name)) {
          throw new ShoalError("NOT_FOUND", `you have not published a file named "${name}"`);
        }
        return Promise.resolve({});
      },
      lookup: ({ name, owner }, connection) => {
        this.#requireUser(connection);
        // One row more than a reply carries says whether counting them all is needed.
        const rows = store.filesNamed(name, { owner, limit: MAX_LISTINGS + 1 });
        const total = rows.length > MAX_LISTINGS ? store.countFilesNamed(name, owner) : rows.length;
        return Promise.resolve({
          files: rows.slice(0, MAX_LISTINGS).map(toWireListing),
          total,
        });
      },
      search: ({ text }, connection) => {
        this.#requireUser(connection);
        const rows = store.searchFiles(text, MAX_LISTINGS + 1);
        const total = rows.length > MAX_LISTINGS ? store.countSearch(text) : rows.length;
        return Promise.resolve({
          files: rows.slice(0, MAX_LISTINGS).map(toWireListing),
          total,
        });
      },
      sources: async ({ contentId, owner }, connection) => {
        const user = this.#requireUser(connection);
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
      downloading: ({ contentId, host, port, certificate }, connection) => {
        const owner = this.#requireUser(connection);
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
