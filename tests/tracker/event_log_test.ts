import assert from "node:assert/strict";
import { EventFeed } from "../../lib/tracker/events.ts";
import { EventLog } from "../../lib/tracker/event_log.ts";
import { startTestTracker } from "../helpers/tracker.ts";

const at = () => new Date("2026-11-30T05:00:00.000Z");

Deno.test("EventFeed - keeps the newest events up to its capacity, in order, numbered", () => {
  const feed = new EventFeed({ capacity: 3, now: at });
  for (const name of ["a", "b", "c", "d", "e"]) feed.emit("unpublish", "alice", { name });
  const kept = feed.recent();
  assert.deepEqual(kept.map((e) => e.seq), [3, 4, 5]);
  assert.deepEqual(feed.recent({ afterSeq: 4 }).map((e) => e.seq), [5]);
  assert.deepEqual(feed.recent({ limit: 2 }).map((e) => e.seq), [4, 5]);
  assert.equal(feed.lastSeq, 5);
});

Deno.test("EventFeed - a failing subscriber is reported, and the others still hear", () => {
  const errors: unknown[] = [];
  const feed = new EventFeed({ onSubscriberError: (error) => errors.push(error) });
  const heard: string[] = [];
  feed.subscribe(() => {
    throw new Error("boom");
  });
  const stop = feed.subscribe((event) => heard.push(event.type));
  feed.emit("register", "bob", { address: "10.0.0.1" });
  stop();
  feed.emit("unregister", "bob", {});
  assert.deepEqual(heard, ["register"]);
  assert.equal(errors.length, 2);
});

Deno.test("EventLog - text lines: time, level, type and key=value, odd values quoted", () => {
  const feed = new EventFeed({ now: at });
  const lines: string[] = [];
  using _log = new EventLog(feed, { write: (line) => lines.push(line) });
  feed.emit("publish", "alice", {
    name: "my song\x1b[31m.ogg",
    contentId: "ab".repeat(32),
    size: 42,
    replaced: false,
  });
  feed.emit("login.failed", "bob", {
    address: "10.0.0.2",
    via: "dashboard",
    reason: "wrong password",
  });
  assert.equal(
    lines[0],
    `2026-11-30T05:00:00.000Z INFO  publish user=alice name="my song\\u001b[31m.ogg" contentId=${
      "ab".repeat(32)
    } size=42 replaced=false`,
  );
  assert.equal(
    lines[1],
    '2026-11-30T05:00:00.000Z WARN  login.failed user=bob address=10.0.0.2 via=dashboard reason="wrong password"',
  );
});

Deno.test("EventLog - JSON lines carry time, level, msg and the fields; --log-level filters", () => {
  const feed = new EventFeed({ now: at });
  const lines: string[] = [];
  using log = new EventLog(feed, { format: "json", level: "warn", write: (l) => lines.push(l) });
  feed.emit("peer.online", "alice", { address: "10.0.0.1:4000" });
  feed.emit("login.failed", "bob", {
    address: "10.0.0.2",
    via: "protocol",
    reason: "no such account",
  });
  log.warn("something odd");
  assert.equal(lines.length, 2);
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2026-11-30T05:00:00.000Z",
    level: "warn",
    msg: "login.failed",
    user: "bob",
    address: "10.0.0.2",
    via: "protocol",
    reason: "no such account",
  });
  assert.equal(JSON.parse(lines[1]).msg, "something odd");
});

Deno.test("Tracker log - a session's events as lines: login, online, publish, ticket, offline; never the password", async () => {
  const feed = new EventFeed();
  const lines: string[] = [];
  using _log = new EventLog(feed, { format: "json", write: (line) => lines.push(line) });
  {
    await using running = await startTestTracker({ events: feed });
    const alice = await running.login("alice");
    await alice.call("announce", { port: 7000 });
    await alice.call("publish", { name: "a.bin", type: "bin", size: 3, contentId: "c".repeat(64) });
    await alice.call("sources", { contentId: "c".repeat(64), owner: "alice" });
    await alice.call("unpublish", { name: "a.bin" });
    await alice.call("logout", {});
  }
  const records = lines.map((line) => JSON.parse(line));
  assert.deepEqual(records.map((r) => r.msg), [
    "start",
    "login.ok",
    "peer.online",
    "publish",
    "ticket",
    "unpublish",
    "peer.offline",
  ]);
  assert.equal(records[2].address, "127.0.0.1:7000");
  assert.equal(records[4].user, "alice");
  assert.equal(records[4].for, "alice");
  assert.equal(records[4].contentId, "c".repeat(64));
  assert.equal(records[6].reason, "logout");
  assert.doesNotMatch(lines.join("\n"), /correct horse/);
});
