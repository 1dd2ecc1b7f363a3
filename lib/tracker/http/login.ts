/**
 * The dashboard's login and logout. The login form is checked like the
 * protocol's login (same password check, same back-off) and carries a CSRF
 * token bound to a cookie of its own, since there is no session yet.
 */
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { ShoalError } from "../../protocol/errors.ts";
import { CSRF_HEADER, csrfHolds } from "./auth.ts";
import { apiError, type HttpDeps, type HttpEnv, remoteHost } from "./context.ts";
import { newToken } from "../tokens.ts";
import { sameSecret, SESSION_COOKIE, WEB_SESSION_IDLE_MS } from "./web_sessions.ts";

/** The cookie the login form's CSRF token is bound to. */
export const LOGIN_CSRF_COOKIE = "shoal_login_csrf";

/** The form field a login or logout form carries its CSRF token in. */
export const CSRF_FIELD = "csrf";

/**
 * The CSRF token for the login form: the page embeds it in a hidden `csrf`
 * field; it is also set as a cookie, and POST /login wants both to match.
 */
export function loginCsrfToken(c: Context<HttpEnv>, deps: HttpDeps): string {
  const existing = getCookie(c, LOGIN_CSRF_COOKIE);
  if (existing && /^[\w-]{20,}$/.test(existing)) return existing;
  const token = newToken(24);
  setCookie(c, LOGIN_CSRF_COOKIE, token, {
    httpOnly: true,
    secure: deps.secureCookies,
    sameSite: "Strict",
    path: "/login",
    maxAge: 3600,
  });
  return token;
}

/**
 * Where a failed login sends the browser back to: the form, with why (and,
 * for an account that is no admin, which: the form names it and keeps it).
 */
const backToLogin = (code: string, username = "") =>
  `/login?error=${encodeURIComponent(code)}` +
  (username ? `&user=${encodeURIComponent(username)}` : "");

/** Adds POST /login and POST /logout. */
export function addLoginRoutes(app: Hono<HttpEnv>, deps: HttpDeps): void {
  app.post("/login", async (c) => {
    const form = await c.req.parseBody().catch(() => ({} as Record<string, unknown>));
    const field = (name: string) => typeof form[name] === "string" ? form[name] as string : "";
    const cookie = getCookie(c, LOGIN_CSRF_COOKIE);
    if (!cookie || !sameSecret(field(CSRF_FIELD), cookie)) {
      return c.redirect(backToLogin("CSRF"), 303);
    }
    let username: string;
    try {
      username = await deps.checkPassword(field("username"), field("password"), remoteHost(c));
    } catch (error) {
      const code = error instanceof ShoalError ? error.code : "AUTH_FAILED";
      return c.redirect(backToLogin(code), 303);
    }
    // Only admins get a session: the dashboard shows others nothing, and any account's logins
    // would otherwise fill the session table and push the admins' sessions out.
    if (!await deps.store.isAdmin(username)) {
      return c.redirect(backToLogin("FORBIDDEN", username), 303);
    }
    const { token } = deps.sessions.create(username);
    setCookie(c, SESSION_COOKIE, token, {
      httpOnly: true,
      secure: deps.secureCookies,
      sameSite: "Strict",
      path: "/",
      maxAge: WEB_SESSION_IDLE_MS / 1000,
    });
    deleteCookie(c, LOGIN_CSRF_COOKIE, { path: "/login", secure: deps.secureCookies });
    return c.redirect("/", 303);
  });

  app.post("/logout", async (c) => {
    const caller = c.get("caller");
    if (caller?.via === "session") {
      const form = await c.req.parseBody().catch(() => ({} as Record<string, unknown>));
      const sent = c.req.header(CSRF_HEADER) ??
        (typeof form[CSRF_FIELD] === "string" ? form[CSRF_FIELD] as string : undefined);
      if (!csrfHolds(c, caller, sent)) {
        return apiError(
          c,
          403,
          "CSRF",
          `missing or wrong CSRF token (${CSRF_HEADER} or the form's ${CSRF_FIELD})`,
        );
      }
      deps.sessions.end(getCookie(c, SESSION_COOKIE));
    }
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: deps.secureCookies });
    return c.redirect("/login", 303);
  });
}
