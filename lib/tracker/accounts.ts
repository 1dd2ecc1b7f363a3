/**
 * The tracker's account and session requests: `register`, `login`,
 * `resume`, `sessions`, `revoke`, `logout` and `unregister`, with the bounds
 * on password work, account creation and failed logins, and session expiry.
 */
import { Batcher } from "../async/batcher.ts";
import { ShoalError } from "../protocol/errors.ts";
import type { TRACKER_METHODS } from "../protocol/messages.ts";
import type { Connection, Handlers } from "../protocol/server.ts";
import type { EventFeed, OfflineReason } from "./events.ts";
import { LoginLimiter } from "./login_limiter.ts";
import { PasswordHasher } from "./passwords.ts";
import { RegisterLimiter } from "./register_limiter.ts";
import { plainHost, type Session } from "./session.ts";
import type { TrackerStore } from "./store.ts";
import { hashToken, newToken } from "./tokens.ts";

/** The default of {@link AccountsOptions.sessionIdleMs}. */
export const DEFAULT_SESSION_IDLE_MS = 30 * 24 * 3600_000;

/** A session's last use is recorded at most this often, not on every request. */
const TOUCH_EVERY_MS = 3600_000;

/** A session's public id: the start of its token's hash, which reveals nothing of the token. */
const sessionId = (tokenHash: string) => tokenHash.slice(0, 16);

/** Options of {@link Accounts}; the tracker passes its own through. */
export interface AccountsOptions {
  /** Backoff on failed password checks. @default {new LoginLimiter()} */
  loginLimiter?: LoginLimiter;
  /** Bounds on scrypt work in flight; tests pass a cheap cost. @default {new PasswordHasher()} */
  passwords?: PasswordHasher;
  /** Bounds on account creation. @default {new RegisterLimiter()} */
  registerLimiter?: RegisterLimiter;
  /** A session unused this long ends. @default {30 days} */
  sessionIdleMs?: number;
  /** The clock, in ms since the epoch; tests move it. @default {Date.now} */
  now?: () => number;
  /** Where logins, registrations and unregistrations are told (a Tracker makes its own). @default {none} */
  events?: EventFeed;
}

/** What accounts need of the tracker's presence: who is online where, and forgetting it. */
export interface PresenceOf {
  /** The connection `username` announced on, if online. */
  announced(username: string): Connection<Session> | undefined;
  /** Takes back whatever `connection` announced or registered; `reason` says why for the log; settles once the store has it. */
  forget(connection: Connection<Session>, reason?: OfflineReason): Promise<void>;
}

/** The requests {@link Accounts} answers. */
export type AccountMethod =
  | "register"
  | "login"
  | "resume"
  | "sessions"
  | "revoke"
  | "logout"
  | "unregister";

/**
 * Accounts and sessions, over the tracker's store. Which connection is
 * logged in as whom lives in each connection's {@link Session}; a session
 * that ends takes its user's announcement with it, through `presence`.
 *
 * @example
 * ```ts
 * const accounts = new Accounts(store, {
 *   announced: (username) => online.get(username),
 *   forget: async (connection) => void online.delete(connection.state.announcedAs ?? ""),
 * });
 * const handlers = { ...accounts.handlers(), ...presenceHandlers };
 * ```
 */
export class Accounts {
  readonly #store: TrackerStore;
  readonly #presence: PresenceOf;
  readonly #limiter: LoginLimiter;
  readonly #passwords: PasswordHasher;
  readonly #registrations: RegisterLimiter;
  readonly #sessionIdleMs: number;
  readonly #now: () => number;
  readonly #events: EventFeed | null;
  /**
   * The session check of every request: those asked while one query is under
   * way go out together in the next (thousands of peers' heartbeats a few
   * round trips, not thousands); one alone goes out at once.
   */
  readonly #sessionUsers: Batcher<string, string>;
  #prunedAt = 0;

  constructor(store: TrackerStore, presence: PresenceOf, options: AccountsOptions = {}) {
    this.#events = options.events ?? null;
    this.#store = store;
    this.#presence = presence;
    this.#limiter = options.loginLimiter ?? new LoginLimiter();
    this.#passwords = options.passwords ?? new PasswordHasher();
    this.#registrations = options.registerLimiter ?? new RegisterLimiter();
    this.#sessionIdleMs = options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
    this.#now = options.now ?? Date.now;
    this.#sessionUsers = new Batcher(async (tokenHashes) => {
      if (tokenHashes.length > 1) return await store.sessionUsers(tokenHashes);
      const username = await store.sessionUser(tokenHashes[0]);
      return new Map(username === null ? [] : [[tokenHashes[0], username]]);
    });
  }

  /** Deletes sessions idle past the limit, at start and then at most hourly. */
  async pruneSessions(): Promise<void> {
    const now = this.#now();
    if (now - this.#prunedAt < TOUCH_EVERY_MS) return;
    this.#prunedAt = now;
    await this.#store.deleteIdleSessions(new Date(now - this.#sessionIdleMs).toISOString());
  }

  /**
   * The user `connection` is logged in as, or AUTH_REQUIRED; a session
   * revoked elsewhere ends here too, and one in use is recorded as used.
   */
  async requireUser(connection: Connection<Session>): Promise<string> {
    const { username } = connection.state;
    if (username === null || connection.state.tokenHash === null) {
      throw new ShoalError("AUTH_REQUIRED", "not logged in");
    }
    // A session revoked elsewhere (logout, unregister) ends here too.
    if (await this.#sessionUsers.get(connection.state.tokenHash) === undefined) {
      await this.#signOut(connection);
      throw new ShoalError("AUTH_REQUIRED", "not logged in (the session has ended)");
    }
    // A connection kept open (a serving peer) keeps its session alive, recorded hourly.
    const now = this.#now();
    if (now - connection.state.touchedAt >= TOUCH_EVERY_MS) {
      connection.state.touchedAt = now;
      await this.#store.touchSession(connection.state.tokenHash, new Date(now).toISOString());
    }
    return username;
  }

  /** Attaches a session to a connection; an announcement by another user ends. */
  async #signIn(connection: Connection<Session>, username: string, tokenHash: string) {
    if (connection.state.announcedAs !== username) await this.#presence.forget(connection);
    connection.state.username = username;
    connection.state.tokenHash = tokenHash;
    connection.state.touchedAt = this.#now();
  }

  async #signOut(connection: Connection<Session>, reason: OfflineReason = "logout"): Promise<void> {
    await this.#presence.forget(connection, reason);
    connection.state.username = null;
    connection.state.tokenHash = null;
  }

  /**
   * Checks a password, with backoff after repeated failures for the name or
   * the address (`address`, the caller's plain host); returns the username as
   * registered, or throws AUTH_FAILED or RATE_LIMITED. The protocol's login
   * and the dashboard's share it, and its back-off. Tells the event feed
   * (never the password).
   */
  async checkPassword(
    username: string,
    password: string,
    address: string,
    via: "protocol" | "dashboard" = "protocol",
  ): Promise<string> {
    let attempt;
    const store = this.#store;
    const shared = store.loginFailures && store.addLoginFailure && store.loginSucceeded;
    try {
      if (shared) {
        // Several processes of one tracker: the back-off counts what every one of them saw.
        const limiter = this.#limiter;
        limiter.adopt(
          username,
          address,
          await store.loginFailures!(
            limiter.sharedKeys(username, address),
            username,
            address,
            this.#now(),
            limiter.forgetAfterMs,
          ),
        );
      }
      attempt = await this.#limiter.acquire(username, address, this.#now);
    } catch (error) {
      const reason = error instanceof ShoalError ? error.code : "error";
      this.#events?.emit("login.failed", username, { address, via, reason });
      throw error;
    }
    try {
      const user = await this.#store.getUser(username);
      const valid = user
        ? await this.#passwords.verify(password, user.passwordHash)
        : await this.#passwords.verifyDummy(password).then(() => false);
      if (!user || !valid) {
        const at = this.#now();
        const keys = this.#limiter.failureKeys(username, address);
        attempt.failed(at);
        if (shared) {
          await store.addLoginFailure!(keys, address, at, this.#limiter.forgetAfterMs);
        }
        this.#events?.emit("login.failed", username, {
          address,
          via,
          reason: user ? "wrong password" : "no such account",
        });
        throw new ShoalError("AUTH_FAILED", "wrong username or password");
      }
      attempt.succeeded();
      if (shared) {
        await store.loginSucceeded!(
          this.#limiter.successKey(username, address),
          username,
          address,
          this.#now(),
          this.#limiter.knownAddressesPerUser,
        );
      }
      this.#events?.emit("login.ok", user.username, { address, via });
      return user.username;
    } finally {
      attempt.abandon();
    }
  }

  #checkConnectionPassword(
    username: string,
    password: string,
    connection: Connection<Session>,
  ): Promise<string> {
    return this.checkPassword(username, password, plainHost(connection.remote.host));
  }

  /** Takes a user offline whose sessions were revoked, closing their serving connection. */
  async #disconnect(
    username: string,
    requester: Connection<Session>,
    reason: OfflineReason = "logout",
  ): Promise<void> {
    const announced = this.#presence.announced(username);
    if (!announced) return;
    await this.#presence.forget(announced, reason);
    // The requester still waits for its reply; any other connection of theirs ends now.
    if (announced !== requester) announced.close();
  }

  /** The handlers of the account and session requests. */
  handlers(): Pick<Handlers<typeof TRACKER_METHODS, Session>, AccountMethod> {
    const store = this.#store;
    return {
      register: async ({ username, password }, connection) => {
        if (await store.getUser(username)) {
          throw new ShoalError("USERNAME_TAKEN", `the username "${username}" is already taken`);
        }
        const address = plainHost(connection.remote.host);
        const now = this.#now();
        if (store.takeRegistration) {
          // Several processes of one tracker: the limits hold for all of them together.
          const limiter = this.#registrations;
          await store.takeRegistration(
            address,
            (own, total) => limiter.takeFrom(own, total, now),
            now - limiter.fullAfterMs,
          );
        } else {
          this.#registrations.take(address, now);
        }
        await store.createUser(username, await this.#passwords.hash(password));
        this.#events?.emit("register", username, { address: plainHost(connection.remote.host) });
        return {};
      },
      login: async ({ username, password }, connection) => {
        const canonical = await this.#checkConnectionPassword(username, password, connection);
        const token = newToken();
        const tokenHash = hashToken(token);
        await this.pruneSessions();
        const at = new Date(this.#now()).toISOString();
        await store.createSession(tokenHash, canonical, plainHost(connection.remote.host), at);
        await this.#signIn(connection, canonical, tokenHash);
        return { token, username: canonical };
      },
      resume: async ({ token }, connection) => {
        const tokenHash = hashToken(token);
        const session = await store.getSession(tokenHash);
        if (session === null) {
          throw new ShoalError("AUTH_REQUIRED", "not logged in (the session has ended)");
        }
        const now = this.#now();
        if (now - Date.parse(session.lastSeen) > this.#sessionIdleMs) {
          await store.deleteSession(tokenHash);
          const days = Math.round(this.#sessionIdleMs / 86_400_000 * 10) / 10;
          throw new ShoalError(
            "AUTH_REQUIRED",
            `not logged in (the session expired after ${days} days unused)`,
          );
        }
        await store.touchSession(tokenHash, new Date(now).toISOString());
        await this.#signIn(connection, session.username, tokenHash);
        return { username: session.username };
      },
      sessions: async (_, connection) => {
        const username = await this.requireUser(connection);
        const cutoff = this.#now() - this.#sessionIdleMs;
        // Sessions past the idle limit are already dead (resume refuses them) even before pruning.
        const live = (await store.sessionsOf(username))
          .filter((session) => Date.parse(session.lastSeen) >= cutoff);
        const sessions = live.map((session) => ({
          id: sessionId(session.tokenHash),
          created: session.createdAt,
          lastSeen: session.lastSeen,
          address: session.address,
          current: session.tokenHash === connection.state.tokenHash,
        }));
        return { sessions };
      },
      revoke: async ({ id }, connection) => {
        const username = await this.requireUser(connection);
        const session = (await store.sessionsOf(username))
          .find((candidate) => sessionId(candidate.tokenHash) === id);
        if (!session) {
          throw new ShoalError(
            "NOT_FOUND",
            `you have no session ${id}; list yours with: peer.ts sessions`,
          );
        }
        await store.deleteSession(session.tokenHash);
        const announced = this.#presence.announced(username);
        const current = session.tokenHash === connection.state.tokenHash;
        if (current) {
          await this.#disconnect(username, connection);
          await this.#signOut(connection);
        } else if (announced && announced.state.tokenHash === session.tokenHash) {
          // The serving process of the revoked session goes offline now, not at its next request.
          await this.#disconnect(username, connection, "session revoked");
        }
        return { current };
      },
      logout: async (_, connection) => {
        const username = await this.requireUser(connection);
        await store.deleteSession(connection.state.tokenHash!);
        await this.#disconnect(username, connection);
        await this.#signOut(connection);
        return {};
      },
      unregister: async ({ password }, connection) => {
        const username = await this.#checkConnectionPassword(
          await this.requireUser(connection),
          password,
          connection,
        );
        await store.deleteUser(username);
        await this.#disconnect(username, connection, "unregistered");
        await this.#signOut(connection, "unregistered");
        this.#events?.emit("unregister", username, {});
        return {};
      },
    };
  }
}
