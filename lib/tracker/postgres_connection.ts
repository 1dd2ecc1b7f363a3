/**
 * Reaching a tracker's PostgreSQL: which `--db` values name one, libpq's
 * `host` parameter (which the driver would send on as a setting), which
 * driver errors mean the server cannot be reached (STORE_UNAVAILABLE, try
 * again) rather than a wrong statement, and what to do when it refuses us.
 */

/** Driver errors that mean the database cannot be reached (not that a statement is wrong). */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  // A Unix socket (PGHOST=/run/postgresql) whose file is gone: the server is not running.
  "ENOENT",
  "ECONNRESET",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  // SQLSTATE: admin shutdown, crash shutdown, cannot connect now, too many connections.
  "57P01",
  "57P02",
  "57P03",
  "53300",
]);

/**
 * Takes libpq's `host` parameter off a URL (`postgres:///shoal?host=/run/postgresql`,
 * a Unix socket's folder or a list of hosts), which postgres.js would otherwise
 * ignore and send to the server as a setting it refuses.
 */
export function takeHostParameter(url: string): { url: string; host?: string } {
  const at = url.indexOf("?");
  if (at < 0) return { url };
  const query = new URLSearchParams(url.slice(at + 1));
  const host = query.get("host");
  if (host === null || host === "") return { url };
  query.delete("host");
  const rest = query.toString();
  return { url: url.slice(0, at) + (rest === "" ? "" : `?${rest}`), host };
}

/** What to do when PostgreSQL refuses the connection, by its SQLSTATE. */
export function refusalHint(code: unknown): string {
  if (code === "3D000") {
    return "create the database first (createdb, as a PostgreSQL superuser), or check --db";
  }
  if (code === "28000" || code === "28P01") {
    return "check the user and password in --db (or PGUSER, PGPASSWORD) and the server's " +
      "pg_hba.conf";
  }
  return "check --db (SHOAL_TRACKER_DB) and the PG* variables";
}

/** Whether a driver error means the database cannot be reached (SQLSTATE class 08 included). */
export function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && (UNREACHABLE_CODES.has(code) || code.startsWith("08"));
}

/** Whether `db` names a PostgreSQL database (a `postgres://` or `postgresql://` URL). */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}
