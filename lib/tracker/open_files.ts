/**
 * How many peers' connections a tracker process keeps at most: its open-file
 * limit, less descriptors kept for its database connections, its files and
 * its HTTP port (1,024, or a quarter of a lower limit). Past it, a new
 * connection is closed as soon as it is accepted (see `ProtocolServer`'s
 * `maxConnections`), instead of the process running out of descriptors and
 * failing to reach its database.
 */

/**
 * Descriptors kept beside the peers' connections, at most: a quarter of the
 * limit where that is less (a hard limit of 1,024, still found on some
 * systems, then keeps 768 peers, not 64).
 */
export const RESERVED_DESCRIPTORS = 1_024;
/** However low the limit, this many peers may connect. */
const AT_LEAST = 64;

/**
 * The soft "Max open files" limit in the text of `/proc/self/limits`;
 * Infinity for "unlimited", null if the text has none.
 */
export function softOpenFileLimit(limits: string): number | null {
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  if (!match) return null;
  return match[1] === "unlimited" ? Infinity : Number(match[1]);
}

/**
 * The connections to keep at most under an open-file limit of `limit`: the
 * limit less {@link RESERVED_DESCRIPTORS}, or less a quarter of it where
 * that is fewer (at least 64).
 */
export function maxConnectionsUnder(limit: number): number {
  if (limit === Infinity) return Infinity;
  const reserved = Math.min(RESERVED_DESCRIPTORS, Math.floor(limit / 4));
  return Math.max(AT_LEAST, limit - reserved);
}

/**
 * The connections this process should keep at most under its soft
 * open-file limit ({@link maxConnectionsUnder}); Infinity where the limit
 * cannot be read (not Linux, or no permission to read /proc).
 */
export function defaultMaxConnections(): number {
  let limit: number | null = null;
  try {
    limit = softOpenFileLimit(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    // Not Linux, or not allowed to read it: no cap of our own.
  }
  return limit === null ? Infinity : maxConnectionsUnder(limit);
}
