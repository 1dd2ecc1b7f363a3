/**
 * Files that hold secrets (databases, TLS and ticket keys) and the folders
 * around them are readable by their owner only, and tightened if they are not.
 */

/** Modes are POSIX only; elsewhere (Windows) files keep what the system gives them. */
export const POSIX = Deno.build.os !== "windows";

/** The mode of `path` if it exists (permission bits only), else null. */
export function modeOf(path: string): number | null {
  try {
    return (Deno.statSync(path).mode ?? 0) & 0o777;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Makes `path` accessible to its owner only (`private` is 0600 for a file,
 * 0700 for a folder) if others could reach it; returns what changed, for a
 * warning, or null if nothing needed to.
 */
export function makePrivate(path: string, mode: number): string | null {
  if (!POSIX) return null;
  const before = modeOf(path);
  if (before === null || (before & 0o077) === 0) return null;
  Deno.chmodSync(path, mode);
  return `${path} from ${before.toString(8).padStart(4, "0")} to ${
    mode.toString(8).padStart(4, "0")
  }`;
}

/**
 * Tightens existing files that hold `holds` to 0600 if others could read
 * them, saying what changed in one line through `warn`.
 */
export function keepFilesPrivate(
  paths: readonly string[],
  holds: string,
  warn: (line: string) => void,
): void {
  const changed = paths.map((path) => makePrivate(path, 0o600)).filter((change) => change !== null);
  if (changed.length > 0) {
    warn(
      `warning: other users could read ${holds}: changed the permissions of ${changed.join(", ")}`,
    );
  }
}

/**
 * Tightens an existing private key file to 0600 if others could read it
 * (copied from a backup, say), saying so in one line through `warn`.
 */
export function keepKeyPrivate(path: string, holds: string, warn: (line: string) => void): void {
  keepFilesPrivate([path], holds, warn);
}
