/**
 * How many peers' connections a tracker process keeps at most: its open-file
 * limit, less descriptors kept for its database connections, its files and
 * its HTTP port. Past it, a new connection is closed as soon as it is
 * accepted (see `ProtocolServer`'s `maxConnections`), instead of the process
 * running out of descriptors and failing to reach its database.
 */

/** Descriptors kept beside the peers' connections. */
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
 * The connections this process should keep at most: its soft open-file
 * limit less {@link RESERVED_DESCRIPTORS} (at least 64); Infinity where the
 * limit cannot be read (not Linux, or no permission to read /proc).
 */
export function defaultMaxConnections(): number {
  let limit: number | null = null;
  try {
    limit = softOpenFileLimit(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    // Not Linux, or not allowed to read it: no cap of our own.
  }
  return limit === null ? Infinity : Math.max(AT_LEAST, limit - RESERVED_DESCRIPTORS);
}
