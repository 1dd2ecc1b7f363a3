/**
 * The dashboard's pages and assets: the hook where they join the tracker's
 * HTTP app. This minimal version serves only a plain login form (no script);
 * the dashboard replaces it with its pages (/login, /, /peers, /peers/:user,
 * /shares) and /assets/*. Routes added here come after /metrics, /healthz,
 * /api/v1, POST /login and POST /logout, and before the 404.
 */
import type { Hono } from "hono";
import type { HttpDeps, HttpEnv } from "./context.ts";
import { CSRF_FIELD, loginCsrfToken } from "./login.ts";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Adds the dashboard's page and asset routes to `app`. */
export function addPages(app: Hono<HttpEnv>, deps: HttpDeps): void {
  app.get("/login", (c) => {
    const csrf = loginCsrfToken(c, deps);
    const error = c.req.query("error");
    return c.html(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shoal tracker: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Shoal tracker</h1>${error ? `<p role="alert">Login failed: ${escapeHtml(error)}</p>` : ""}
<form method="post" action="/login">
<input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(csrf)}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form></body></html>`);
  });
  app.get("/", (c) => c.get("caller") ? c.text("Shoal tracker") : c.redirect("/login", 303));
}
