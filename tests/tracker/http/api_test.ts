import assert from "node:assert/strict";
import { startTestOperator, type TestOperator } from "../../helpers/operator.ts";

/** carol serves at 127.0.0.1:PORT (nothing listens there) and publishes two files; dave only registered. */
async function withNetwork(op: TestOperator) {
  const carol = await op.running.login("carol");
  // A port nobody listens on: taken, then freed.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await carol.call("announce", { port });
  await carol.call("publish", {
    name: "song.ogg",
    type: "ogg",
    size: 1000,
    contentId: "a".repeat(64),
  });
  await carol.call("publish", {
    name: "notes.txt",
    type: "txt",
    size: 24,
    contentId: "b".repeat(64),
  });
  await op.account("dave");
  const erin = await op.running.login("erin");
  await erin.call("sources", { contentId: "a".repeat(64) });
  return { carol, erin, port };
}

Deno.test("API - summary counts what the store holds", async () => {
  await using op = await startTestOperator();
  await withNetwork(op);
  const alice = await op.loggedIn("alice");
  const { status, body } = await alice.json("/api/v1/summary");
  assert.equal(status, 200);
  assert.equal(body.peersOnline, 1);
  assert.equal(body.peers, 1);
  assert.equal(body.accounts, 4);
  assert.equal(body.shares, 2);
  assert.equal(body.bytesPublished, 1024);
  assert.ok(!Number.isNaN(Date.parse(body.startedAt)));
  assert.equal(typeof body.version, "string");
});

Deno.test("API - peers lists every account, online with its address, with its share count", async () => {
  await using op = await startTestOperator();
  const { port } = await withNetwork(op);
  const alice = await op.loggedIn("alice");
  const { body } = await alice.json("/api/v1/peers");
  const byName = Object.fromEntries(body.peers.map((p: { username: string }) => [p.username, p]));
  assert.deepEqual(Object.keys(byName), ["alice", "carol", "dave", "erin"]);
  assert.equal(byName.carol.online, true);
  assert.equal(byName.carol.address, `127.0.0.1:${port}`);
  assert.equal(byName.carol.shares, 2);
  assert.equal(byName.dave.online, false);
  assert.equal(byName.dave.address, null);
  assert.equal(byName.dave.shares, 0);
  assert.ok(!Number.isNaN(Date.parse(byName.dave.lastSeen)));
});

Deno.test("API - one peer with its shares, and 404 NOT_FOUND for nobody", async () => {
  await using op = await startTestOperator();
  await withNetwork(op);
  const alice = await op.loggedIn("alice");
  const { status, body } = await alice.json("/api/v1/peers/CAROL");
  assert.equal(status, 200);
  assert.equal(body.peer.username, "carol");
  assert.equal(body.peer.shares, 2);
  assert.deepEqual(body.shares.map((s: { name: string }) => s.name), ["notes.txt", "song.ogg"]);
  const share = body.shares[1];
  assert.deepEqual(Object.keys(share).sort(), [
    "address",
    "contentId",
    "files",
    "name",
    "online",
    "owner",
    "publishedAt",
    "size",
    "type",
  ]);
  const missing = await alice.json("/api/v1/peers/nobody");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "NOT_FOUND");
});

Deno.test("API - shares are searched by name, with a limit and the full total", async () => {
  await using op = await startTestOperator();
  await withNetwork(op);
  const alice = await op.loggedIn("alice");
  const all = await alice.json("/api/v1/shares");
  assert.equal(all.body.total, 2);
  const found = await alice.json("/api/v1/shares?q=SONG");
  assert.deepEqual(found.body.shares.map((s: { name: string }) => s.name), ["song.ogg"]);
  assert.equal(found.body.shares[0].owner, "carol");
  const one = await alice.json("/api/v1/shares?limit=1");
  assert.equal(one.body.shares.length, 1);
  assert.equal(one.body.total, 2);
  const bad = await alice.json("/api/v1/shares?limit=zero");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "INVALID_INPUT");
});

Deno.test("API - events list what happened, newest last, never a password", async () => {
  await using op = await startTestOperator();
  await withNetwork(op);
  const alice = await op.loggedIn("alice");
  const { body } = await alice.json("/api/v1/events");
  const types = body.events.map((e: { type: string }) => e.type);
  for (const type of ["start", "login.ok", "peer.online", "publish", "ticket"]) {
    assert.ok(types.includes(type), `${type} in ${types}`);
  }
  const seqs = body.events.map((e: { seq: number }) => e.seq);
  assert.deepEqual(seqs, [...seqs].sort((a: number, b: number) => a - b));
  const ticket = body.events.find((e: { type: string }) => e.type === "ticket");
  assert.equal(ticket.user, "erin");
  assert.equal(ticket.contentId, "a".repeat(64));
  assert.equal(typeof ticket.for, "string");
  const last2 = await alice.json("/api/v1/events?limit=2");
  assert.deepEqual(last2.body.events, body.events.slice(-2));
  assert.doesNotMatch(JSON.stringify(body), /correct horse/);
});

Deno.test("API - the event stream sends new events as server-sent events, resuming after Last-Event-ID", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  const lastSeq = op.events.lastSeq;
  const response = await alice.fetch("/api/v1/events/stream", {
    headers: { "Last-Event-ID": String(lastSeq - 1) },
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("Content-Type") ?? "", /text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  await op.running.login("carol");
  let text = "";
  // Bounded: the replayed event, then carol's login.
  for (let i = 0; i < 20 && (text.match(/^data: /gm) ?? []).length < 2; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  const messages = text.split("\n\n").filter((m) => m.includes("data: "));
  assert.match(messages[0], /^event: shoal$/m);
  assert.match(messages[0], new RegExp(`^id: ${lastSeq}$`, "m"));
  const second = JSON.parse(/^data: (.*)$/m.exec(messages[1])![1]);
  assert.equal(second.type, "login.ok");
  assert.equal(second.user, "carol");
});

Deno.test("API - history has 60 minutes, oldest first, counting this minute's events", async () => {
  await using op = await startTestOperator();
  await withNetwork(op);
  const alice = await op.loggedIn("alice");
  const { body } = await alice.json("/api/v1/history");
  assert.equal(body.minutes.length, 60);
  const times = body.minutes.map((m: { time: string }) => Date.parse(m.time));
  assert.deepEqual(times, [...times].sort((a: number, b: number) => a - b));
  const sum = (key: string) =>
    body.minutes.reduce((total: number, m: Record<string, number>) => total + m[key], 0);
  assert.equal(sum("publishes"), 2);
  assert.equal(sum("tickets"), 1);
  assert.ok(sum("logins") >= 3);
  assert.equal(body.minutes.at(-1).peersOnline, 1);
});

Deno.test("API - ping runs the OS ping and the protocol probe, and says the probe failed", async () => {
  await using op = await startTestOperator();
  await withNetwork(op);
  const token = await op.token("alice");
  const { status, body } = await op.browser().json("/api/v1/peers/carol/ping", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(status, 200);
  assert.equal(body.probe.ok, false);
  assert.equal(body.probe.rttMs, null);
  assert.equal(typeof body.probe.error, "string");
  assert.equal(typeof body.os.ok, "boolean");
  if (body.os.ok) assert.equal(body.os.error, null);
  const admin = op.events.recent().find((e) => e.type === "admin");
  assert.equal(admin?.user, "alice");
});
