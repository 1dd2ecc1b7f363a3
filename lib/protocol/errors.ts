import { DeadlineError } from "../async/deadline.ts";
/**
 * The one error type that crosses the wire. Every failure a tracker or a
 * peer reports carries a stable {@link ErrorCode}, which scripts and the CLI
 * match on, and a human message, which people read.
 *
 * @example
 * ```ts
 * throw new ShoalError("NOT_FOUND", `no file named "${name}"`);
 * ```
 */
export const ERROR_CODES = [
  /** A frame or message could not be decoded or failed validation. */
  "BAD_MESSAGE",
  /** A frame announced a length above the limit; the connection is closed. */
  "FRAME_TOO_LARGE",
  /** The two sides speak different protocol versions. */
  "VERSION_MISMATCH",
  /** The request needs a logged-in session and the connection has none. */
  "AUTH_REQUIRED",
  /** Wrong username or password. */
  "AUTH_FAILED",
  /** The username is already registered. */
  "USERNAME_TAKEN",
  /** A username or password that does not meet the rules. */
  "INVALID_INPUT",
  /** The named user, file, peer or content does not exist. */
  "NOT_FOUND",
  /** More than one candidate matches and none was chosen. */
  "AMBIGUOUS",
  /** The user is already online from another serving peer process. */
  "ALREADY_ONLINE",
  /** Too many attempts (e.g. failed logins): try again after the time the message gives. */
  "RATE_LIMITED",
  /** The server refuses more connections from this address for now. */
  "BUSY",
  /** The tracker's database (say, its PostgreSQL) cannot be reached: try again shortly. */
  "STORE_UNAVAILABLE",
  /**
   * Every upload slot of the peer is taken: the downloader is now in its
   * queue, and asks `queue` for its place until it is served.
   */
  "QUEUED",
  /** A server presented a certificate other than the pinned or vouched-for one. */
  "CERTIFICATE_MISMATCH",
  /** A peer was asked for content without a download ticket. */
  "TICKET_REQUIRED",
  /** A download ticket that is forged, malformed, or for another content. */
  "TICKET_INVALID",
  /** A download ticket past its expiry time. */
  "TICKET_EXPIRED",
  /** The file on the serving peer changed after it was published. */
  "CONTENT_CHANGED",
  /** Received bytes do not match their hash. */
  "INTEGRITY",
  /**
   * A folder manifest names a path that cannot be written safely (absolute,
   * `..`, hidden characters, too long or deep, colliding with another path,
   * or reaching outside the output folder); nothing of the folder is written.
   */
  "UNSAFE_PATH",
  /**
   * A request would pass a limit the tracker keeps per account or per folder
   * (a folder's member files past its file count, or past the account's
   * limit); nothing of it was recorded. The message names the limit.
   */
  "LIMIT_EXCEEDED",
  /** The other side could not be reached or went away. */
  "UNREACHABLE",
  /** The other side did not answer in time. */
  "TIMEOUT",
  /** A local file-system problem (missing path, unreadable file, full disk). */
  "IO",
  /** Stopped by the user (Ctrl-C, or `pause` in the shell); partial work is kept. */
  "CANCELLED",
  /** A bug or an unexpected failure on the other side. */
  "INTERNAL",
] as const;

export type ErrorCode = typeof ERROR_CODES[number];

/** An error with a stable machine-readable code; see {@link ERROR_CODES}. */
export class ShoalError extends Error {
  readonly code: ErrorCode;
  /** What to do next, set where that is known (e.g. "is the tracker running?"). */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { hint?: string }) {
    super(message, options);
    this.name = "ShoalError";
    this.code = code;
    this.hint = options?.hint;
  }
}

/** Whether `code` is one this version knows (unknown codes map to INTERNAL). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" &&
    (ERROR_CODES as readonly string[]).includes(code);
}

/**
 * Turns anything thrown into a ShoalError, keeping a ShoalError as it is and
 * mapping the file-system and network errors Deno raises to stable codes.
 */
export function toShoalError(error: unknown): ShoalError {
  if (error instanceof ShoalError) return error;
  if (
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.AddrNotAvailable ||
    error instanceof Deno.errors.NetworkUnreachable
  ) {
    return new ShoalError("UNREACHABLE", error.message, { cause: error });
  }
  // A TLS peer that vanished (killed, rebooted) without a close_notify: rustls's message links
  // to its manual, which tells a user nothing; the connection simply closed.
  if (error instanceof Deno.errors.UnexpectedEof) {
    return new ShoalError("UNREACHABLE", "the connection closed unexpectedly", { cause: error });
  }
  if (error instanceof Deno.errors.TimedOut || error instanceof DeadlineError) {
    return new ShoalError("TIMEOUT", error.message, { cause: error });
  }
  if (error instanceof Deno.errors.NotFound) {
    return new ShoalError("IO", error.message, { cause: error });
  }
  if (
    error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.IsADirectory ||
    error instanceof Deno.errors.AlreadyExists
  ) {
    return new ShoalError("IO", error.message, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/no space left|ENOSPC|quota/i.test(message)) {
    return new ShoalError("IO", `disk full: ${message}`, { cause: error });
  }
  return new ShoalError("INTERNAL", message, { cause: error });
}
