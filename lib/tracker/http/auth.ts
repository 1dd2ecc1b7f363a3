/**
 * Who calls the tracker's HTTP side, and whether they may: a dashboard
 * session cookie (with a CSRF token on every POST) or an admin's API token
 * (`Authorization: Bearer`). Admin is a role on an account, checked on every
 * request, so a revoked admin loses access at once.
 */
import { launcher } from "../../invocation.ts";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { apiError, type Caller, type HttpDeps, type HttpEnv } from "./context.ts";
import { hashToken } from "../tokens.ts";
import { sameSecret, SESSION_COOKIE } from "./web_sessions.ts";

/** The header a cookie session's POST carries its CSRF token in. */
export const CSRF_HEADER = "X-CSRF-Token";

/** Finds the caller (session cookie or bearer token) and sets `caller`; never refuses. */
export function identifyCaller(deps: HttpDeps): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    c.set("caller", await callerOf(c, deps));
    await next();
  };
}

async function callerOf(c: Context<HttpEnv>, deps: HttpDeps): Promise<Caller | null> {
  const authorization = c.req.header("Authorization");
  const bearer = authorization && /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
  if (bearer) {
    const username = await deps.store.apiTokenUser(hashToken(bearer));
    return username === null ? null : { username, via: "token", session: null };
  }
  const session = deps.sessions.get(getCookie(c, SESSION_COOKIE));
  return session ? { username: session.username, via: "session", session } : null;
}

/**
 * Lets only admins through: 401 UNAUTHORIZED without a caller, 403 FORBIDDEN
 * for a non-admin, 403 CSRF for a cookie session's POST without its token.
 */
export function requireAdmin(deps: HttpDeps): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    const caller = c.get("caller");
    if (!caller) {
      return apiError(
        c,
        401,
        "UNAUTHORIZED",
        "log in on the dashboard (/login), or send an admin's API token as " +
          `Authorization: Bearer TOKEN (the operator runs: ${
            launcher("tracker")
          } admin token NAME)`,
      );
    }
    if (!await deps.store.isAdmin(caller.username)) {
      return apiError(
        c,
        403,
        "FORBIDDEN",
        `${caller.username} is not an admin; the operator runs: ${
          launcher("tracker")
        } admin grant ${caller.username}`,
      );
    }
    if (c.req.method !== "GET" && c.req.method !== "HEAD" && !csrfHolds(c, caller)) {
      return apiError(c, 403, "CSRF", `missing or wrong ${CSRF_HEADER} header`);
    }
    await next();
  };
}

/** A cookie session's unsafe request carries the session's CSRF token; a token call needs none. */
export function csrfHolds(c: Context<HttpEnv>, caller: Caller, sent?: string): boolean {
  if (caller.via === "token") return true;
  const token = sent ?? c.req.header(CSRF_HEADER);
  return caller.session !== null && token !== undefined &&
    sameSecret(token, caller.session.csrfToken);
}

/**
 * Refuses (403 CSRF) any unsafe request a browser says came from another
 * site: `Sec-Fetch-Site` other than `same-origin` or `none`, or (from a
 * browser too old to send that) an `Origin` other than the tracker's own. A
 * defence beside the CSRF tokens and SameSite cookies: a page on another
 * LAN host cannot even try a token. `Origin: null` alone is let through to
 * the token check: under `Referrer-Policy: no-referrer` a browser sends it
 * for the tracker's own login form. Clients that send neither header (curl,
 * scripts with a bearer token) pass.
 */
export function refuseCrossSite(): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const site = c.req.header("Sec-Fetch-Site");
      const origin = c.req.header("Origin");
      const crossSite = site !== undefined
        ? site !== "same-origin" && site !== "none"
        : origin !== undefined && origin !== "null" && origin !== new URL(c.req.url).origin;
      if (crossSite) {
        return apiError(c, 403, "CSRF", "a request from another site is refused");
      }
    }
    await next();
  };
}
