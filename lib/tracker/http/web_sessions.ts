/**
 * The dashboard's login sessions, kept in the tracker's memory: a browser
 * holds a random token in an HttpOnly cookie, the tracker only its SHA-256,
 * with the session's CSRF token. A restart logs every browser out, which
 * costs an operator one login.
 */
import { timingSafeEqual } from "node:crypto";
import { hashToken, newToken } from "../tokens.ts";

/** The cookie a dashboard session travels in. */
export const SESSION_COOKIE = "shoal_session";

/**
 * A dashboard session unused this long ends. Requests count as use (the
 * dashboard's pages reload their numbers every 30 s, so an open tab stays
 * logged in, as a wall display should); an open event stream does not, so
 * a stream held by a client that asks nothing else ends with its session.
 */
export const WEB_SESSION_IDLE_MS = 12 * 3600_000;

/** How often the tracker ends idle sessions (and the event streams on them). */
export const WEB_SESSION_SWEEP_MS = 60_000;

/** One dashboard session. */
export interface WebSession {
  username: string;
  csrfToken: string;
  lastUsed: number;
  /** Set once the session is logged out, idled out or evicted (open event streams end). */
  ended?: boolean;
  /** Aborted as the session ends: an event stream on it ends at once. */
  readonly closed: AbortSignal;
}

/** Compares two secrets in constant time. */
export function sameSecret(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * The open dashboard sessions, at most `capacity` (the least recently used
 * ends first).
 *
 * @example
 * ```ts
 * const sessions = new WebSessions();
 * const { token } = sessions.create("alice");
 * sessions.get(token)?.username; // "alice"
 * ```
 */
export class WebSessions {
  readonly #byHash = new Map<string, WebSession>();
  readonly #closers = new WeakMap<WebSession, AbortController>();
  readonly #capacity: number;
  readonly #idleMs: number;
  readonly #now: () => number;

  constructor(
    options: {
      /** @default {10000} */ capacity?: number;
      /** @default {12 hours} */ idleMs?: number;
      /** @default {Date.now} */ now?: () => number;
    } = {},
  ) {
    this.#capacity = options.capacity ?? 10_000;
    this.#idleMs = options.idleMs ?? WEB_SESSION_IDLE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Opens a session for `username`; returns its token (for the cookie) and the session. */
  create(username: string): { token: string; session: WebSession } {
    const token = newToken();
    const closer = new AbortController();
    const session = {
      username,
      csrfToken: newToken(24),
      lastUsed: this.#now(),
      closed: closer.signal,
    };
    this.#closers.set(session, closer);
    if (this.#byHash.size >= this.#capacity) {
      const oldest = this.#byHash.keys().next().value;
      if (oldest !== undefined) this.#remove(oldest);
    }
    this.#byHash.set(hashToken(token), session);
    return { token, session };
  }

  /** The live session of `token`, marked as used; null if none or idle too long. */
  get(token: string | undefined): WebSession | null {
    if (!token) return null;
    const key = hashToken(token);
    const session = this.#byHash.get(key);
    if (!session) return null;
    const now = this.#now();
    if (now - session.lastUsed > this.#idleMs) {
      this.#remove(key);
      return null;
    }
    session.lastUsed = now;
    // Re-inserted: the map's order is the order of last use.
    this.#byHash.delete(key);
    this.#byHash.set(key, session);
    return session;
  }

  /** Ends the session of `token`, if any. */
  end(token: string | undefined): void {
    if (token) this.#remove(hashToken(token));
  }

  /**
   * Ends every session unused for longer than the idle time (the server
   * calls this every {@link WEB_SESSION_SWEEP_MS}); returns how many.
   */
  endIdle(): number {
    const now = this.#now();
    let ended = 0;
    // The map's order is the order of last use: the idle ones come first.
    for (const [key, session] of this.#byHash) {
      if (now - session.lastUsed <= this.#idleMs) break;
      this.#remove(key);
      ended++;
    }
    return ended;
  }

  #remove(key: string): void {
    const session = this.#byHash.get(key);
    if (session) {
      session.ended = true;
      this.#closers.get(session)?.abort();
    }
    this.#byHash.delete(key);
  }
}
