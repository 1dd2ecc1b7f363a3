/** What the tracker knows of one control connection, shared by its account and presence handlers. */

/** The state the tracker keeps per control connection. */
export interface Session {
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

/** The state of a connection that has done nothing yet. */
export function newSession(): Session {
  return {
    username: null,
    tokenHash: null,
    announcedAs: null,
    instance: null,
    touchedAt: 0,
    serving: null,
  };
}

/** IPv4 peers seen through a dual-stack socket appear as `::ffff:a.b.c.d`. */
export function plainHost(host: string): string {
  return host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}
