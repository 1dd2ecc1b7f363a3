import assert from "node:assert/strict";
import { startTestOperator } from "../../helpers/operator.ts";
import { LOGIN_CSRF_COOKIE } from "../../../lib/tracker/http/login.ts";
import { SESSION_COOKIE } from "../../../lib/tracker/http/web_sessions.ts";
import { runTrackerCli } from "../../helpers/cli.ts";

Deno.test("HTTP auth - no session or token is 401 UNAUTHORIZED on every API route", async () => {
  await using op = await startTestOperator();
  const anonymous = op.browser();
  for (
    const path of [
      "/api/v1/session",
      "/api/v1/summary",
      "/api/v1/history",
      "/api/v1/peers",
      "/api/v1/peers/alice",
      "/api/v1/shares",
      "/api/v1/events",
      "/api/v1/events/stream",
    ]
  ) {
    const { status, body } = await anonymous.json(path);
    assert.equal(status, 401, path);
    assert.equal(body.error.code, "UNAUTHORIZED", path);
    // It says how to get in: the login page, or a token the operator issues.
    assert.match(body.error.message, /\/login.*Authorization: Bearer.* admin token NAME/, path);
  }
  const ping = await anonymous.json("/api/v1/peers/alice/ping", { method: "POST" });
  assert.equal(ping.status, 401);
  const forged = await anonymous.json("/api/v1/summary", {
    headers: { Cookie: `${SESSION_COOKIE}=made-up`, Authorization: "Bearer made-up" },
  });
  assert.equal(forged.status, 401);
});

Deno.test("HTTP auth - an account that is no admin gets no session, and a revoked admin's session 403 FORBIDDEN", async () => {
  await using op = await startTestOperator();
  await op.account("carol");
  const carol = op.browser();
  assert.equal(await carol.login("carol"), "/login?error=FORBIDDEN&user=carol");
  assert.equal(carol.cookies.has(SESSION_COOKIE), false);
  // The form says which account, the command that makes it an admin, and keeps the name typed.
  const page = await (await carol.fetch("/login?error=FORBIDDEN&user=carol")).text();
  assert.match(page, /The account carol is no admin: the operator runs `[^`]*admin grant carol`/);
  assert.match(page, /id="username"[^>]*value="carol"/);
  // A link carrying other text than a username shows none of it.
  const forged = await (await carol.fetch("/login?error=FORBIDDEN&user=%3Cb%3Eall%20good")).text();
  assert.doesNotMatch(forged, /all good/);
  assert.match(forged, /That account is no admin/);
  const bob = await op.loggedIn("bob");
  await op.running.store.setAdmin("bob", false);
  const { status, body } = await bob.json("/api/v1/peers");
  assert.equal(status, 403);
  assert.equal(body.error.code, "FORBIDDEN");
  assert.match(body.error.message, /admin grant bob/);
});

Deno.test("HTTP auth - the session cookie is HttpOnly and SameSite=Strict, and the admin gets through", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const cookie = alice.setCookies.find((line) => line.startsWith(`${SESSION_COOKIE}=`))!;
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.match(cookie, /Path=\//);
  // Plain HTTP (--insecure-plaintext) only: a Secure cookie would never come back.
  assert.doesNotMatch(cookie, /Secure/);
  const { status, body } = await alice.json("/api/v1/session");
  assert.equal(status, 200);
  assert.equal(body.username, "alice");
  assert.match(body.csrfToken, /^[\w-]{20,}$/);
});

Deno.test("HTTP auth - a POST with a session cookie but no CSRF token is 403 CSRF", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const missing = await alice.json("/api/v1/peers/nobody/ping", { method: "POST" });
  assert.equal(missing.status, 403);
  assert.equal(missing.body.error.code, "CSRF");
  const wrong = await alice.json("/api/v1/peers/nobody/ping", {
    method: "POST",
    headers: { "X-CSRF-Token": "x".repeat(32) },
  });
  assert.equal(wrong.body.error.code, "CSRF");
  const right = await alice.json("/api/v1/peers/nobody/ping", {
    method: "POST",
    headers: { "X-CSRF-Token": await alice.csrfToken() },
  });
  assert.equal(right.status, 404);
  assert.equal(right.body.error.code, "NOT_FOUND");
});

Deno.test("HTTP auth - an admin's API token works as a bearer token, POSTs without CSRF", async () => {
  await using op = await startTestOperator();
  const token = await op.token("alice");
  assert.match(token, /^shoal_api_/);
  const client = op.browser();
  const headers = { Authorization: `Bearer ${token}` };
  const { status, body } = await client.json("/api/v1/session", { headers });
  assert.equal(status, 200);
  assert.equal(body.username, "alice");
  assert.equal(body.csrfToken, null);
  const ping = await client.json("/api/v1/peers/nobody/ping", { method: "POST", headers });
  assert.equal(ping.status, 404);
});

Deno.test("HTTP auth - a revoked admin loses access at once, session and token alike", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const token = await op.token("alice");
  const bearer = { headers: { Authorization: `Bearer ${token}` } };
  assert.equal((await alice.json("/api/v1/peers")).status, 200);
  const revoked = await runTrackerCli(["admin", "revoke", "alice", "--db", op.running.db]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal((await alice.json("/api/v1/peers")).status, 403);
  // Its API tokens went with the role.
  assert.equal((await op.browser().json("/api/v1/peers", bearer)).status, 401);
});

Deno.test("HTTP auth - a wrong password or a missing form token sends the browser back to /login", async () => {
  await using op = await startTestOperator();
  await op.account("alice", { admin: true });
  const browser = op.browser();
  assert.equal(await browser.login("alice", "hunter2-secret"), "/login?error=AUTH_FAILED");
  assert.equal(browser.cookies.has(SESSION_COOKIE), false);
  const forged = await browser.fetch("/login", {
    method: "POST",
    body: new URLSearchParams({ username: "alice", password: "correct horse battery" }),
  });
  assert.equal(forged.status, 303);
  assert.equal(forged.headers.get("Location"), "/login?error=CSRF");
  assert.equal(browser.cookies.has(SESSION_COOKIE), false);
  assert.ok(browser.cookies.has(LOGIN_CSRF_COOKIE));
  const failed = op.events.recent().filter((event) => event.type === "login.failed");
  assert.equal(failed.length, 1);
  // Never the password, in the feed (and so in the log).
  assert.doesNotMatch(JSON.stringify(op.events.recent()), /hunter2/);
});

Deno.test("HTTP auth - the dashboard login backs off like the protocol's after repeated failures", async () => {
  await using op = await startTestOperator();
  await op.account("alice", { admin: true });
  const browser = op.browser();
  const outcomes: string[] = [];
  for (let i = 0; i < 8; i++) outcomes.push(await browser.login("alice", `guess ${i}`));
  assert.ok(outcomes.includes("/login?error=RATE_LIMITED"), outcomes.join(", "));
});

Deno.test("HTTP auth - logout needs the CSRF token and ends the session", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const refused = await alice.fetch("/logout", { method: "POST" });
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
  const csrf = await alice.csrfToken();
  const out = await alice.fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
  await out.body?.cancel();
  assert.equal(out.status, 303);
  assert.equal(out.headers.get("Location"), "/login");
  assert.equal((await alice.json("/api/v1/session")).status, 401);
});

Deno.test("HTTP - every answer carries a strict CSP, nosniff and no referrer", async () => {
  await using op = await startTestOperator();
  for (const path of ["/login", "/healthz", "/metrics", "/api/v1/peers", "/nowhere"]) {
    const response = await op.browser().fetch(path);
    await response.body?.cancel();
    const csp = response.headers.get("Content-Security-Policy") ?? "";
    assert.match(csp, /default-src 'self'/, path);
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.equal(response.headers.get("X-Content-Type-Options"), "nosniff", path);
    assert.equal(response.headers.get("Referrer-Policy"), "no-referrer", path);
  }
});

Deno.test("HTTP - a request body over 16 KiB is refused with 413 before anyone reads it", async () => {
  await using op = await startTestOperator();
  const response = await op.browser().fetch("/login", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: `username=${"a".repeat(20_000)}`,
  });
  assert.equal(response.status, 413);
  assert.equal((await response.json()).error.code, "INVALID_INPUT");
});
