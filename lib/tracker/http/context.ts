/** What every route of the tracker's HTTP side shares: its hono environment and its parts. */
import type { Context } from "hono";
import type { ErrorCode } from "../../protocol/errors.ts";
import type { EventFeed } from "../events.ts";
import type { TrackerStore } from "../store.ts";
import type { WebSession, WebSessions } from "./web_sessions.ts";

/** Who is calling, once authenticated. */
export interface Caller {
  username: string;
  /** A browser's session cookie (POSTs need its CSRF token), or an API token. */
  via: "session" | "token";
  session: WebSession | null;
}

/** The hono environment of the tracker's app. */
export interface HttpEnv {
  Variables: { caller: Caller | null };
}

/** What the tracker lends its HTTP side. */
export interface HttpDeps {
  store: TrackerStore;
  events: EventFeed;
  sessions: WebSessions;
  /** The protocol login's password check and back-off; returns the username as registered. */
  checkPassword(username: string, password: string, address: string): Promise<string>;
  /** Cookies carry `Secure` (false only under --insecure-plaintext). */
  secureCookies: boolean;
  /** When the tracker started. */
  startedAt: Date;
  /** Aborted when the HTTP side shuts down: event streams end. */
  closing: AbortSignal;
}

/**
 * The codes the HTTP side answers errors with: the protocol's where they
 * mean the same, and three of its own for who may call (no caller, no
 * admin, a request without its CSRF token or from another site).
 */
export type ApiErrorCode =
  | Extract<ErrorCode, "INVALID_INPUT" | "NOT_FOUND" | "BUSY" | "INTERNAL">
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "CSRF";

/** The JSON error body of the API: `{"error":{"code","message"}}`. */
export function apiError(
  c: Context<HttpEnv>,
  status: 400 | 401 | 403 | 404 | 413 | 429 | 500 | 503,
  code: ApiErrorCode,
  message: string,
): Response {
  return c.json({ error: { code, message } }, status);
}

/** The caller's plain host, as the login back-off counts it. */
export function remoteHost(c: Context<HttpEnv>, fallback = "unknown"): string {
  const info = (c.env as { remoteAddr?: Deno.NetAddr } | undefined)?.remoteAddr;
  return info?.hostname ?? fallback;
}
