/**
 * The dashboard's pages and assets, served by the tracker itself (a LAN may
 * have no internet): plain HTML, ES modules and CSS from the `dashboard/`
 * folder beside this module, and uPlot from its npm package. Everything the
 * browser runs comes from files (no inline script or style), so the
 * server's strict Content-Security-Policy holds; anything from the network
 * is escaped here (the login page) or set with `textContent` in the browser.
 * The router (auth, CSRF, security headers) is the HTTP server's; this
 * module only answers for pages and `/assets/*`.
 *
 * @example
 * ```ts
 * app.get("/assets/:name", async (c) => (await dashboardAsset(c.req.param("name"))) ?? c.notFound());
 * app.get("/peers", async (c) => c.html(await dashboardPage("peers")));
 * ```
 */
// Puts uPlot into the module graph, so Deno fetches the package that
// dashboardAsset reads its files from.
import uplotPackage from "uplot/package.json" with { type: "json" };

/** The version of uPlot the dashboard serves. */
export const UPLOT_VERSION: string = uplotPackage.version;

/** The dashboard's pages, each a fragment in `dashboard/<page>.html` inside one layout. */
export type DashboardPage = "overview" | "peers" | "peer" | "shares";

/** The page each dashboard path shows (`/peers/:user` is the `peer` page). */
export const DASHBOARD_PATHS: Readonly<Record<string, DashboardPage>> = {
  "/": "overview",
  "/peers": "peers",
  "/peers/:user": "peer",
  "/shares": "shares",
};

const TITLES: Record<DashboardPage, string> = {
  overview: "Overview",
  peers: "Peers",
  peer: "Peer",
  shares: "Shares",
};

const FOLDER = new URL("./dashboard/", import.meta.url);

/** The files of uPlot's package the dashboard serves, by the name they have under /assets/. */
const VENDOR: Record<string, string> = {
  "uplot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
  "uplot.min.css": "uplot/dist/uPlot.min.css",
};

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  html: "text/html; charset=utf-8",
};

/** Assets by name, read once. */
const cache = new Map<string, Promise<Uint8Array | null>>();

function readOnce(name: string, url: URL): Promise<Uint8Array | null> {
  let bytes = cache.get(name);
  if (!bytes) {
    bytes = Deno.readFile(url).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return null;
      // Another failure may pass (a permission fixed, a disk back): try again next time.
      cache.delete(name);
      throw error;
    });
    cache.set(name, bytes);
  }
  return bytes;
}

async function readText(name: string): Promise<string> {
  const bytes = await readOnce(name, new URL(name, FOLDER));
  if (bytes === null) throw new Error(`the dashboard's ${name} is missing from ${FOLDER.pathname}`);
  return new TextDecoder().decode(bytes);
}

/** `&`, `<`, `>`, `"` and `'` as HTML entities: text safe in an element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Fills `{{name}}` slots; values are HTML already (escape what came from outside first). */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => values[name] ?? "");
}

/**
 * A dashboard page's HTML: the layout with the page's fragment and its module. The
 * page fetches its data from /api/v1 itself, so the HTML holds nothing
 * from the network (a peer page reads its name from the address).
 */
export async function dashboardPage(page: DashboardPage): Promise<string> {
  const [layout, main] = await Promise.all([readText("layout.html"), readText(`${page}.html`)]);
  return fill(layout, { title: TITLES[page], page, main });
}

/** What the login page shows besides the form. */
export interface LoginPageOptions {
  /** The token the form posts back in its `csrf` field. */
  csrfToken: string;
  /** A one-line reason the last attempt failed, shown above the form. */
  error?: string;
  /** The name to fill in again after a failed attempt. */
  username?: string;
  /** The command that makes an account admin, as the operator runs the tracker. */
  grantCommand?: string;
}

/** The login page's HTML: a plain form posting `username`, `password` and `csrf` to /login. */
export async function loginPage(options: LoginPageOptions): Promise<string> {
  const template = await readText("login.html");
  const error = options.error
    ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>`
    : "";
  return fill(template, {
    csrf: escapeHtml(options.csrfToken),
    username: escapeHtml(options.username ?? ""),
    grant: escapeHtml(options.grantCommand ?? "tracker.ts admin grant NAME"),
    error,
  });
}

/**
 * The asset named `name` (the part after `/assets/`), or null for a name
 * the dashboard does not have: only plain names of files in its folder and
 * uPlot's two files, never a path.
 */
export async function dashboardAsset(name: string): Promise<Response | null> {
  if (!/^[a-z0-9_-]+(\.[a-z0-9]+)+$/.test(name)) return null;
  const type = TYPES[name.slice(name.lastIndexOf(".") + 1)];
  if (!type || type === TYPES.html) return null;
  const vendor = VENDOR[name];
  const bytes = vendor
    ? await readOnce(name, new URL(import.meta.resolve(vendor)))
    : await readOnce(name, new URL(name, FOLDER));
  if (bytes === null) return null;
  return new Response(bytes.slice(), {
    headers: { "content-type": type, "cache-control": "no-cache" },
  });
}
