/**
 * The dashboard's pages and assets without a browser: they hold to the
 * strict Content-Security-Policy (no inline script, handler or style), never
 * put network text in as HTML, escape what the login page shows, serve only
 * their own files and uPlot's, and show a page only to an admin session.
 */
import assert from "node:assert/strict";
import {
  dashboardAsset,
  dashboardPage,
  loginPage,
  UPLOT_VERSION,
} from "../../../lib/tracker/http/dashboard.ts";
import { LOGIN_CSRF_COOKIE } from "../../../lib/tracker/http/login.ts";
import { startTestOperator } from "../../helpers/operator.ts";

const FOLDER = new URL("../../../lib/tracker/http/dashboard/", import.meta.url);

async function filesEndingWith(suffix: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(FOLDER)) {
    if (entry.isFile && entry.name.endsWith(suffix)) {
      files.set(entry.name, await Deno.readTextFile(new URL(entry.name, FOLDER)));
    }
  }
  return files;
}

Deno.test("dashboard - no inline script, event handler or style anywhere (the CSP allows only files)", async () => {
  const pages = await filesEndingWith(".html");
  assert.ok(pages.has("layout.html") && pages.has("login.html"), "the walk found the pages");
  for (const [name, html] of pages) {
    for (const script of html.matchAll(/<script\b[^>]*>/g)) {
      assert.match(script[0], /\bsrc="\/assets\/[^"]+"/, `${name}: ${script[0]} has no src`);
    }
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, `${name} has an inline event handler`);
    assert.doesNotMatch(html, /<style\b|\sstyle\s*=/i, `${name} has an inline style`);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, `${name} loads from another site`);
  }
});

Deno.test("dashboard - scripts set text from the network as text, never as HTML", async () => {
  const scripts = await filesEndingWith(".js");
  assert.ok(scripts.has("common.js"), "the walk found the scripts");
  for (const [name, source] of scripts) {
    assert.doesNotMatch(
      source,
      /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval)\b|new Function/,
      name,
    );
  }
});

Deno.test("dashboard - the login page escapes its token, name and error", async () => {
  const html = await loginPage({
    csrfToken: `"><script>alert(1)</script>`,
    username: `<img src=x onerror=alert(2)>`,
    error: `bad <b>thing</b> & "quotes"`,
  });
  assert.doesNotMatch(html, /<script>|<img|<b>/);
  assert.match(html, /value="&#34;&#62;&#60;script&#62;alert\(1\)&#60;\/script&#62;"/);
  assert.match(html, /bad &#60;b&#62;thing&#60;\/b&#62; &#38; &#34;quotes&#34;/);
  assert.doesNotMatch(html, /\{\{/, "every slot is filled");
});

Deno.test("dashboard - each page is the layout with its fragment and its own module", async () => {
  for (const page of ["overview", "peers", "peer", "shares"] as const) {
    const html = await dashboardPage(page);
    assert.match(html, new RegExp(`<script type="module" src="/assets/${page}.js">`));
    assert.match(html, new RegExp(`data-page="${page}"`));
    assert.doesNotMatch(html, /\{\{/, page);
  }
});

Deno.test("dashboard - assets: its own files and uPlot's, nothing else, never a path", async () => {
  const css = await dashboardAsset("dashboard.css");
  assert.equal(css?.headers.get("content-type"), "text/css; charset=utf-8");
  await css?.body?.cancel();
  const uplot = await dashboardAsset("uplot.iife.min.js");
  assert.equal(uplot?.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.match(await uplot!.text(), new RegExp(`v${UPLOT_VERSION.replaceAll(".", "\\.")}`));
  for (
    const name of [
      "../dashboard.ts",
      "..%2Fdashboard.ts",
      ".hidden",
      "layout.html",
      "nope.js",
      "x/common.js",
      "",
    ]
  ) {
    assert.equal(await dashboardAsset(name), null, name);
  }
});

Deno.test("dashboard - pages need an admin session; the login form carries the CSRF cookie's token", async () => {
  await using op = await startTestOperator();
  const anonymous = op.browser();
  for (const path of ["/", "/peers", "/peers/alice", "/shares"]) {
    const response = await anonymous.fetch(path);
    await response.body?.cancel();
    assert.equal(response.status, 303, path);
    assert.equal(response.headers.get("Location"), "/login", path);
  }
  const login = await anonymous.fetch("/login?error=AUTH_FAILED");
  const html = await login.text();
  assert.equal(login.status, 200);
  assert.match(login.headers.get("Content-Security-Policy") ?? "", /script-src 'self'/);
  const token = anonymous.cookies.get(LOGIN_CSRF_COOKIE);
  assert.ok(token, "the login page sets its CSRF cookie");
  assert.ok(html.includes(`name="csrf" value="${token}"`), "the form carries the same token");
  assert.match(html, /Wrong username or password/);
  // Where a page sends a session the tracker no longer knows (it restarted): it says why.
  const ended = await anonymous.fetch("/login?error=SESSION_ENDED");
  assert.match(await ended.text(), /Your session ended \(the tracker restarted/);

  const bob = await op.loggedIn("bob");
  await op.running.store.setAdmin("bob", false);
  const refused = await bob.fetch("/peers");
  await refused.body?.cancel();
  assert.equal(refused.headers.get("Location"), "/login?error=FORBIDDEN");
  // The page names the command that makes an admin, as the operator runs the tracker here.
  const forbidden = await (await anonymous.fetch("/login?error=FORBIDDEN")).text();
  assert.match(forbidden, /no admin: the operator runs `.+ admin grant NAME`/);
  assert.doesNotMatch(forbidden, /runs `tracker\.ts admin/);
  // So does the line above the form, every time (it once always said `deno task admin`).
  const runs = /runs `(.+) admin grant NAME`/.exec(forbidden)![1];
  for (const page of [html, forbidden]) {
    assert.ok(page.includes(`<code>${runs} admin grant NAME</code>`), page);
  }

  const alice = await op.loggedIn("alice");
  for (const path of ["/", "/peers", "/peers/some%20one", "/shares?q=x"]) {
    const response = await alice.fetch(path);
    assert.equal(response.status, 200, path);
    assert.match(await response.text(), /<script type="module" src="\/assets\//, path);
  }
  const asset = await alice.fetch("/assets/overview.js");
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get("Content-Type") ?? "", /^text\/javascript/);
  await asset.body?.cancel();
  for (const path of ["/assets/..%2Fdashboard.ts", "/assets/nope.js", "/assets/layout.html"]) {
    const missing = await alice.fetch(path);
    await missing.body?.cancel();
    assert.equal(missing.status, 404, path);
  }
});
