/**
 * An open event stream ends with its dashboard session: at logout and at
 * idle expiry at once (no event needed), and it does not itself keep its
 * session alive; requests do. The session clock is the test's: no waiting.
 */
import assert from "node:assert/strict";
import { startTestOperator, type WebClient } from "../../helpers/operator.ts";
import {
  SESSION_COOKIE,
  WEB_SESSION_IDLE_MS,
  WebSessions,
} from "../../../lib/tracker/http/web_sessions.ts";

/** Reads a stream until it ends (true) or `until` shows in it (false); at most 50 reads. */
async function readStream(response: Response, until?: string): Promise<boolean> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    for (let i = 0; i < 50; i++) {
      const { value, done } = await reader.read();
      if (done) return true;
      text += value;
      if (until !== undefined && text.includes(until)) return false;
    }
    throw new Error(`the stream neither ended nor showed ${until}: ${text}`);
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** An operator whose dashboard sessions run on a clock the test moves. */
async function withClock() {
  const clock = { now: Date.now() };
  const sessions = new WebSessions({ now: () => clock.now });
  const op = await startTestOperator({ sessions });
  return { op, sessions, clock };
}

/** Opens an event stream as `client`; fails unless it opened. */
async function openStream(client: WebClient): Promise<Response> {
  const stream = await client.fetch("/api/v1/events/stream");
  assert.equal(stream.status, 200);
  return stream;
}

Deno.test("a session idle past 12 h ends with its open event stream, which never counted as use", async () => {
  const { op, sessions, clock } = await withClock();
  await using _op = op;
  const alice = await op.loggedIn("alice");
  const stream = await openStream(alice);
  clock.now += WEB_SESSION_IDLE_MS - 1000;
  assert.equal(sessions.endIdle(), 0);
  clock.now += 2000;
  // What the tracker's sweep does every minute; no event is needed for the stream to end.
  assert.equal(sessions.endIdle(), 1);
  assert.equal(await readStream(stream), true, "the stream should end");
  assert.equal((await alice.json("/api/v1/session")).status, 401);
});

Deno.test("a session in use (the dashboard's reloads) keeps its event stream open past 12 h", async () => {
  const { op, sessions, clock } = await withClock();
  await using _op = op;
  const alice = await op.loggedIn("alice");
  const stream = await openStream(alice);
  for (let hour = 0; hour < 24; hour++) {
    clock.now += 3600_000;
    assert.equal((await alice.json("/api/v1/summary")).status, 200);
    assert.equal(sessions.endIdle(), 0);
  }
  op.events.emit("login.ok", "carol", { address: "127.0.0.1", via: "protocol" });
  assert.equal(await readStream(stream, "carol"), false, "the stream should be open");
});

Deno.test("logging out ends the session's open event stream at once, with no event", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const csrf = await alice.csrfToken();
  const stream = await openStream(alice);
  const other = await op.loggedIn("alice");
  const kept = await openStream(other);
  const out = await alice.fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
  await out.body?.cancel();
  assert.equal(out.status, 303);
  assert.equal(alice.cookies.has(SESSION_COOKIE), false);
  assert.equal(await readStream(stream), true, "the logged-out stream should end");
  // The same account's other session and its stream go on.
  op.events.emit("login.ok", "carol", { address: "127.0.0.1", via: "protocol" });
  assert.equal(await readStream(kept, "carol"), false);
});
