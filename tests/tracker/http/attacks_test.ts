/**
 * A hostile user on the LAN against the tracker's HTTP side: each test
 * performs one attack (in process, loopback, port 0) and checks it fails.
 */
import assert from "node:assert/strict";
import { startTestOperator, WebClient } from "../../helpers/operator.ts";
import { startHttpServer } from "../../../lib/tracker/http/server.ts";
import { buildHttpApp } from "../../../lib/tracker/http/app.ts";
import type { History } from "../../../lib/tracker/http/history.ts";
import { runTrackerCli } from "../../helpers/cli.ts";
import { SESSION_COOKIE, WebSessions } from "../../../lib/tracker/http/web_sessions.ts";
import { LOGIN_CSRF_COOKIE } from "../../../lib/tracker/http/login.ts";
import { MAX_EVENT_STREAMS } from "../../../lib/tracker/http/event_stream.ts";
import { rawClient } from "../../helpers/raw_client.ts";

/** Reads a response body to its end, at most `maxReads` chunks; whether it ended, and the text. */
async function readToEnd(
  response: Response,
  maxReads = 50,
): Promise<{ done: boolean; text: string }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (let i = 0; i < maxReads; i++) {
    const { value, done } = await reader.read();
    if (done) return { done: true, text };
    text += value;
  }
  await reader.cancel();
  return { done: false, text };
}

Deno.test("attack - a session cookie planted before login is never honoured nor kept (no fixation)", async () => {
  await using op = await startTestOperator();
  await op.account("alice", { admin: true });
  const victim = op.browser();
  victim.cookies.set(SESSION_COOKIE, "attacker-chosen-session-token-0123456789");
  assert.equal((await victim.json("/api/v1/session")).status, 401);
  assert.equal(await victim.login("alice"), "/");
  const issued = victim.cookies.get(SESSION_COOKIE)!;
  assert.notEqual(issued, "attacker-chosen-session-token-0123456789");
  const attacker = op.browser();
  attacker.cookies.set(SESSION_COOKIE, "attacker-chosen-session-token-0123456789");
  assert.equal((await attacker.json("/api/v1/session")).status, 401);
  assert.equal((await victim.json("/api/v1/session")).status, 200);
});

Deno.test("attack - login guesses over HTTP and over the protocol share one back-off", async () => {
  await using op = await startTestOperator();
  await op.account("alice", { admin: true });
  const browser = op.browser();
  let location = "";
  for (let i = 0; i < 10 && location !== "/login?error=RATE_LIMITED"; i++) {
    location = await browser.login("alice", `guess-${i}`);
  }
  assert.equal(location, "/login?error=RATE_LIMITED");
  // The protocol login from the same address, right password: held back too.
  const client = await op.running.connect();
  await assert.rejects(
    client.call("login", { username: "alice", password: "correct horse battery" }),
    (error: Error & { code?: string }) => error.code === "RATE_LIMITED",
  );
});

Deno.test("attack - login guesses through the HTTP port count against the guesser's own address, not the loopback behind it", async () => {
  await using op = await startTestOperator();
  await op.account("alice", { admin: true });
  // The guesser's host is 127.0.0.2; the server behind the port sees every connection from
  // 127.0.0.1, so a back-off keyed on that would hold back everyone.
  using fromElsewhere = Deno.createHttpClient({ localAddress: "127.0.0.2" });
  // Deno's fetch takes `client`, which RequestInit does not name.
  const via = { client: fromElsewhere } as RequestInit;
  const guesser = op.browser();
  const guess = async (password: string) => {
    await (await guesser.fetch("/login", via)).body?.cancel();
    const form = new URLSearchParams({
      username: "alice",
      password,
      csrf: guesser.cookies.get(LOGIN_CSRF_COOKIE) ?? "",
    });
    const response = await guesser.fetch("/login", {
      method: "POST",
      body: form,
      ...via,
    });
    await response.body?.cancel();
    return response.headers.get("Location") ?? "";
  };
  let location = "";
  for (let i = 0; i < 10 && location !== "/login?error=RATE_LIMITED"; i++) {
    location = await guess(`guess-${i}`);
  }
  assert.equal(location, "/login?error=RATE_LIMITED");
  // Held back for the guesser, even with the right password ...
  assert.equal(await guess("correct horse battery"), "/login?error=RATE_LIMITED");
  // ... and not for alice at her own address.
  assert.equal(await op.browser().login("alice"), "/");
  const failed = op.events.recent({}).flatMap((event) =>
    event.type === "login.failed" ? [event.address] : []
  );
  assert.ok(failed.length > 0);
  assert.deepEqual(new Set(failed), new Set(["127.0.0.2"]));
});

Deno.test("attack - cross-origin POSTs are refused, whatever token they carry", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const csrf = await alice.csrfToken();
  const cases: Record<string, string>[] = [
    { Origin: "http://evil.example" },
    { Origin: "null", "Sec-Fetch-Site": "cross-site" },
    { Origin: op.url, "Sec-Fetch-Site": "cross-site" },
    { "Sec-Fetch-Site": "same-site" },
  ];
  for (const headers of cases) {
    const ping = await alice.json("/api/v1/peers/nobody/ping", {
      method: "POST",
      headers: { ...headers, "X-CSRF-Token": csrf },
    });
    assert.equal(ping.status, 403, JSON.stringify(headers));
    assert.equal(ping.body.error.code, "CSRF");
    const logout = await alice.fetch("/logout", {
      method: "POST",
      headers,
      body: new URLSearchParams({ csrf }),
    });
    await logout.body?.cancel();
    assert.equal(logout.status, 403, JSON.stringify(headers));
  }
  // Still logged in: none of the forged logouts went through.
  assert.equal((await alice.json("/api/v1/session")).status, 200);
  // A login form posted from another site, with the attacker's own form token and cookie.
  const attacker = op.browser();
  await (await attacker.fetch("/login")).body?.cancel();
  const forged = await attacker.fetch("/login", {
    method: "POST",
    headers: { Origin: "http://evil.example" },
    body: new URLSearchParams({
      username: "alice",
      password: "correct horse battery",
      csrf: attacker.cookies.get(LOGIN_CSRF_COOKIE)!,
    }),
  });
  await forged.body?.cancel();
  assert.equal(forged.status, 403);
  assert.equal(attacker.cookies.has(SESSION_COOKIE), false);
  // The same origin, as a browser sends it, still works.
  const own = await alice.json("/api/v1/peers/nobody/ping", {
    method: "POST",
    headers: { Origin: op.url, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf },
  });
  assert.equal(own.status, 404);
});

Deno.test("attack - logout as a form post with a wrong or missing token keeps the session", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  for (const body of [new URLSearchParams(), new URLSearchParams({ csrf: "x".repeat(32) })]) {
    const response = await alice.fetch("/logout", { method: "POST", body });
    await response.body?.cancel();
    assert.equal(response.status, 403);
  }
  assert.equal((await alice.json("/api/v1/session")).status, 200);
});

Deno.test("attack - any account's logins open no session, so they cannot push an admin's session out", async () => {
  await using op = await startTestOperator();
  const sessions = new WebSessions({ capacity: 3 });
  await using http = await startHttpServer({
    store: op.running.store,
    events: op.events,
    metrics: op.metrics,
    checkPassword: (username, password, address) =>
      op.running.tracker.checkPassword(username, password, address),
    address: { host: "127.0.0.1", port: 0 },
    sessions,
    warn: () => {},
  });
  await op.account("alice", { admin: true });
  const alice = new WebClient(http.url);
  assert.equal(await alice.login("alice"), "/");
  // Mallory registers an ordinary account (anyone on the LAN can) and logs in again and again.
  for (let i = 0; i < 6; i++) {
    await op.account(`mallory${i}`);
    const mallory = new WebClient(http.url);
    assert.equal(await mallory.login(`mallory${i}`), `/login?error=FORBIDDEN&user=mallory${i}`);
    assert.equal(mallory.cookies.has(SESSION_COOKIE), false);
  }
  // Before: the sixth login had pushed alice's session out; 401.
  assert.equal((await alice.json("/api/v1/session")).status, 200);
});

Deno.test("attack - a demoted admin's session sees no page, no API, no stream", async () => {
  await using op = await startTestOperator();
  const bob = await op.loggedIn("bob");
  await op.running.store.setAdmin("bob", false);
  for (const path of ["/", "/peers", "/shares", "/peers/bob"]) {
    const response = await bob.fetch(path);
    await response.body?.cancel();
    assert.equal(response.status, 303, path);
    assert.equal(response.headers.get("Location"), "/login?error=FORBIDDEN");
  }
  const stream = await bob.fetch("/api/v1/events/stream");
  assert.equal(stream.status, 403);
  await stream.body?.cancel();
});

Deno.test("attack - a revoked admin's open event stream ends at the next event", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const stream = await alice.fetch("/api/v1/events/stream");
  assert.equal(stream.status, 200);
  const revoked = await runTrackerCli(["admin", "revoke", "alice", "--db", op.running.db]);
  assert.equal(revoked.code, 0, revoked.stderr);
  op.events.emit("login.ok", "carol", { address: "127.0.0.1", via: "protocol" });
  const { done, text } = await readToEnd(stream);
  assert.equal(done, true, "the stream should end");
  assert.doesNotMatch(text, /carol/);
});

Deno.test("attack - a logged-out session's open event stream ends too", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const csrf = await alice.csrfToken();
  const stream = await alice.fetch("/api/v1/events/stream");
  const cookie = alice.cookies.get(SESSION_COOKIE)!;
  const out = await alice.fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
  await out.body?.cancel();
  assert.equal(out.status, 303);
  assert.notEqual(cookie, alice.cookies.get(SESSION_COOKIE));
  op.events.emit("login.ok", "carol", { address: "127.0.0.1", via: "protocol" });
  const { done, text } = await readToEnd(stream);
  assert.equal(done, true);
  assert.doesNotMatch(text, /carol/);
});

Deno.test("attack - event streams are capped: the next is 503 BUSY, and a closed one frees its place", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const open: Response[] = [];
  try {
    for (let i = 0; i < MAX_EVENT_STREAMS; i++) {
      const response = await alice.fetch("/api/v1/events/stream");
      assert.equal(response.status, 200, `stream ${i}`);
      open.push(response);
    }
    const refused = await alice.json("/api/v1/events/stream");
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, "BUSY");
    await open.pop()!.body!.cancel();
    // The server learns of the cancel asynchronously: a bounded wait for the freed place.
    let again: Response | null = null;
    for (let i = 0; i < 100; i++) {
      op.events.emit("login.ok", "carol", { address: "127.0.0.1", via: "protocol" });
      again = await alice.fetch("/api/v1/events/stream");
      if (again.status === 200) break;
      await again.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(again!.status, 200);
    open.push(again!);
  } finally {
    await Promise.all(open.map((response) => response.body?.cancel()));
  }
});

Deno.test("attack - names with HTML and line breaks stay inside one SSE message and stay JSON", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const stream = await alice.fetch("/api/v1/events/stream");
  const evil = 'x\n\ndata: {"forged":true}\r\nevent: admin\r<script>alert(1)</script>\u2028';
  op.events.emit("login.ok", evil, { address: "127.0.0.1", via: "protocol" });
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (let i = 0; i < 20 && !text.includes("\n\n"); i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  const message = text.slice(0, text.indexOf("\n\n"));
  const lines = message.split(/\r\n|\r|\n/);
  assert.equal(lines.length, 3, JSON.stringify(lines));
  assert.equal(lines[0], "event: shoal");
  const event = JSON.parse(lines[2].slice("data: ".length));
  assert.equal(event.user, evil);
  // The JSON API answers as JSON with nosniff, never as HTML.
  const response = await alice.fetch("/api/v1/events");
  assert.match(response.headers.get("Content-Type") ?? "", /application\/json/);
  assert.equal(response.headers.get("X-Content-Type-Options"), "nosniff");
  await response.body?.cancel();
});

Deno.test("attack - a login error code with HTML in it is shown escaped, never as markup", async () => {
  await using op = await startTestOperator();
  const code = encodeURIComponent(`"><script>alert(1)</script><img src=x onerror=alert(1)>`);
  const response = await op.browser().fetch(`/login?error=${code}`);
  const html = await response.text();
  assert.equal(response.status, 200);
  assert.doesNotMatch(html, /<script>alert|<img src=x/);
  assert.match(html, /&#60;script&#62;/);
});

Deno.test("attack - path traversal under /assets/ finds nothing outside the dashboard folder", async () => {
  await using op = await startTestOperator();
  const browser = op.browser();
  const paths = [
    "/assets/../app.ts",
    "/assets/..%2Fapp.ts",
    "/assets/%2e%2e%2fapp.ts",
    "/assets/%2e%2e/%2e%2e/deno.json",
    "/assets/..%5Capp.ts",
    "/assets/login.html",
    "/assets/.%2e/dashboard.ts",
    "/assets/common.js%00.css",
    "/assets/%252e%252e%252fapp.ts",
  ];
  for (const path of paths) {
    const response = await browser.fetch(path);
    const body = await response.text();
    assert.notEqual(response.status, 200, path);
    assert.doesNotMatch(body, /import|Deno|compilerOptions/, path);
  }
  const fine = await browser.fetch("/assets/common.js");
  await fine.body?.cancel();
  assert.equal(fine.status, 200);
});

Deno.test("attack - huge, negative or odd limits are refused or capped", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  for (const limit of ["-1", "0", "1e9", "0x10", "1.5", "%20", ""]) {
    const { status, body } = await alice.json(`/api/v1/shares?limit=${limit}`);
    assert.equal(status, 400, limit);
    assert.equal(body.error.code, "INVALID_INPUT");
  }
  const huge = await alice.json(`/api/v1/shares?limit=${"9".repeat(400)}`);
  assert.equal(huge.status, 200);
  const events = await alice.json(`/api/v1/events?limit=${"9".repeat(400)}`);
  assert.equal(events.status, 200);
  assert.equal((await alice.json("/api/v1/events?limit=-5")).status, 400);
});

Deno.test("attack - ping reaches only a registered peer's recorded address, never a host named in the URL", async () => {
  await using op = await startTestOperator();
  const token = await op.token("alice");
  const headers = { Authorization: `Bearer ${token}` };
  // A listener that must never be dialled.
  using target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let dialled = false;
  const accepting = (async () => {
    for await (const connection of target) {
      dialled = true;
      connection.close();
    }
  })().catch(() => {});
  const port = target.addr.port;
  for (
    const name of [
      `127.0.0.1:${port}`,
      encodeURIComponent(`127.0.0.1:${port}`),
      "169.254.169.254",
      encodeURIComponent("http://127.0.0.1:" + port),
      "localhost",
      "..%2F..%2Fsummary",
    ]
  ) {
    const { status, body } = await op.browser().json(`/api/v1/peers/${name}/ping`, {
      method: "POST",
      headers,
    });
    assert.equal(status, 404, name);
    assert.equal(body.error.code, "NOT_FOUND", name);
  }
  target.close();
  await accepting;
  assert.equal(dialled, false);
});

Deno.test("attack - error answers carry the security headers too", async () => {
  await using op = await startTestOperator();
  const browser = op.browser();
  const answers: Response[] = [
    await browser.fetch("/no/such/page"),
    await browser.fetch("/api/v1/no-such-route"),
    await browser.fetch("/api/v1/summary"),
    await browser.fetch("/login", { method: "POST", body: "x".repeat(20_000) }),
    await browser.fetch("/assets/..%2Fapp.ts"),
    await browser.fetch("/api/v1/peers/x/ping", { method: "POST", headers: { Origin: "null" } }),
  ];
  for (const response of answers) {
    await response.body?.cancel();
    assert.ok(response.status >= 400, response.url);
    assert.match(response.headers.get("Content-Security-Policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(response.headers.get("X-Content-Type-Options"), "nosniff");
    assert.equal(response.headers.get("X-Frame-Options"), "DENY");
  }
});

/**
 * A raw connection to the HTTP port from an attacker's own host (127.0.0.2,
 * or `from`) that writes `text` and no more ({@link rawClient}).
 */
const rawConnect = (
  op: { http: { address: { port: number } } },
  text: string,
  from = "127.0.0.2",
) => rawClient(op.http.address.port, text, from, 30_000);

async function honestAnswers(op: Awaited<ReturnType<typeof startTestOperator>>, admin: WebClient) {
  const health = await op.browser().json("/healthz");
  assert.equal(health.status, 200);
  assert.equal((await admin.json("/api/v1/summary")).status, 200);
  const bob = await op.running.login("bob");
  const found = await bob.call("search", { text: "anything" });
  assert.ok(Array.isArray(found.files));
}

Deno.test("attack - slowloris, huge headers and huge bodies from one host: both ports keep answering others, and the slow connections are closed", async () => {
  const warnings: string[] = [];
  await using op = await startTestOperator({
    door: { headerTimeoutMs: 1_000 },
    warn: (line) => warnings.push(line),
  });
  const alice = await op.loggedIn("alice");
  const held: Awaited<ReturnType<typeof rawConnect>>[] = [];
  try {
    // From 127.0.0.2: many connections that never finish their headers (past the 64 one address
    // may hold, each is closed as it comes).
    for (let i = 0; i < 200; i++) {
      held.push(await rawConnect(op, "GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    }
    // A megabyte of headers, and a body far over the limit, announced and then trickled, from
    // another host.
    held.push(
      await rawConnect(
        op,
        `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(1 << 20)}\r\n\r\n`,
        "127.0.0.3",
      ),
    );
    held.push(
      await rawConnect(
        op,
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
          `Content-Length: ${1 << 30}\r\n\r\nusername=`,
        "127.0.0.3",
      ),
    );
    // Everyone else (127.0.0.1) is served meanwhile.
    await honestAnswers(op, alice);
    // A huge chunked body is cut off at the limit, not read to its end.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 64; i++) controller.enqueue(new Uint8Array(16 * 1024));
        controller.close();
      },
    });
    const big = await alice.fetch("/logout", { method: "POST", body: chunks });
    await big.body?.cancel();
    assert.equal(big.status, 413);
    await honestAnswers(op, alice);
    // Every slow connection is closed by the tracker: those over the host's limit at once,
    // the others at the header deadline, answered 408.
    const ends = await Promise.all(held.slice(0, 200).map((connection) => connection.ended));
    assert.equal(ends.filter((end) => end.timedOut).length, 0);
    assert.equal(ends.filter((end) => /^HTTP\/1\.1 408/.test(end.received)).length, 64);
    assert.ok(warnings.some((line) => /127\.0\.0\.2: 64 connections open/.test(line)));
    // The megabyte of headers was refused (431) and closed.
    const huge = await held[200].ended;
    assert.equal(huge.timedOut, false);
    assert.match(huge.received, /^HTTP\/1\.1 431/);
    // And the host is served again once its slow connections are gone.
    const again = await rawConnect(
      op,
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match((await again.ended).received, /^HTTP\/1\.1 200/);
  } finally {
    for (const connection of held) connection.close();
  }
});

Deno.test("attack - under TLS every cookie the tracker sets is Secure, HttpOnly and SameSite=Strict", async () => {
  await using op = await startTestOperator();
  await op.account("alice", { admin: true });
  const app = buildHttpApp({
    store: op.running.store,
    events: op.events,
    sessions: new WebSessions(),
    checkPassword: (username, password, address) =>
      op.running.tracker.checkPassword(username, password, address),
    secureCookies: true,
    startedAt: new Date(),
    closing: new AbortController().signal,
  }, { metrics: op.metrics, history: { minutes: () => [] } as unknown as History });
  const page = await app.request("https://tracker.lan/login");
  await page.body?.cancel();
  const formCookie = page.headers.getSetCookie().find((line) =>
    line.startsWith(`${LOGIN_CSRF_COOKIE}=`)
  )!;
  const csrf = /^[^=]+=([^;]+)/.exec(formCookie)![1];
  const login = await app.request("https://tracker.lan/login", {
    method: "POST",
    headers: { Cookie: `${LOGIN_CSRF_COOKIE}=${csrf}` },
    body: new URLSearchParams({ username: "alice", password: "correct horse battery", csrf }),
  });
  await login.body?.cancel();
  assert.equal(login.headers.get("Location"), "/");
  const cookies = [formCookie, ...login.headers.getSetCookie()];
  assert.ok(cookies.some((line) => line.startsWith(`${SESSION_COOKIE}=`)));
  for (const line of cookies) {
    assert.match(line, /; Secure/, line);
    if (!/Max-Age=0/i.test(line)) {
      assert.match(line, /; HttpOnly/, line);
      assert.match(line, /; SameSite=Strict/, line);
    }
  }
});
