/**
 * The dashboard's pages and assets joined to the tracker's HTTP app: the
 * login page (with the form's CSRF token and why the last attempt failed),
 * the pages an admin session sees (/, /peers, /peers/:user, /shares; others
 * are sent to /login) and /assets/*. The pages and assets themselves are
 * `dashboard.ts`'s; routes added here come after /metrics, /healthz,
 * /api/v1, POST /login and POST /logout, and before the 404.
 */
import { launcher } from "../../invocation.ts";
import type { Context, Hono } from "hono";
import type { HttpDeps, HttpEnv } from "./context.ts";
import { DASHBOARD_PATHS, dashboardAsset, dashboardPage, loginPage } from "./dashboard.ts";
import { loginCsrfToken } from "./login.ts";
import { Username } from "../../protocol/messages.ts";

/** What the login page says for each reason POST /login sends back (`?error=CODE`). */
const LOGIN_ERRORS: Record<string, string> = {
  AUTH_FAILED: "Wrong username or password.",
  RATE_LIMITED: "Too many failed logins from here: wait a minute, then try again.",
  CSRF: "The login form had expired: please log in again.",
  // `tracker.ts` becomes the command the operator runs (`shoal-tracker`) when the page is made.
  FORBIDDEN: "That account is no admin: the operator runs `tracker.ts admin grant NAME`.",
  SESSION_ENDED:
    "Your session ended (the tracker restarted, or it was idle too long): log in again.",
};

/** Adds the dashboard's page and asset routes to `app`. */
export function addPages(app: Hono<HttpEnv>, deps: HttpDeps): void {
  app.get("/login", async (c) => {
    const code = c.req.query("error");
    // The username the last attempt typed, put back in the form: only one a username could be
    // (the page says it, and a link could carry any text).
    const typed = c.req.query("user") ?? "";
    const username = Username.safeParse(typed).success ? typed : "";
    const named = (text: string) =>
      text.replace("tracker.ts ", `${launcher("tracker")} `)
        .replace("That account", username ? `The account ${username}` : "That account")
        .replace("grant NAME", `grant ${username || "NAME"}`);
    const error = code === undefined
      ? undefined
      : (LOGIN_ERRORS[code] && named(LOGIN_ERRORS[code])) ??
        `Login failed (${code.slice(0, 40)}).`;
    // Named as the operator runs the tracker: `shoal-tracker admin grant NAME` when installed.
    const grantCommand = `${launcher("tracker")} admin grant NAME`;
    return c.html(
      await loginPage({ csrfToken: loginCsrfToken(c, deps), error, grantCommand, username }),
    );
  });

  for (const [path, page] of Object.entries(DASHBOARD_PATHS)) {
    app.get(path, async (c) => {
      const refused = await refusal(c, deps);
      return refused ?? c.html(await dashboardPage(page));
    });
  }

  app.get(
    "/assets/:name",
    async (c) => (await dashboardAsset(c.req.param("name"))) ?? c.notFound(),
  );
}

/** Where a page request without an admin session goes instead: the login page. */
async function refusal(c: Context<HttpEnv>, deps: HttpDeps): Promise<Response | null> {
  const caller = c.get("caller");
  if (!caller) return c.redirect("/login", 303);
  if (!await deps.store.isAdmin(caller.username)) return c.redirect("/login?error=FORBIDDEN", 303);
  return null;
}
