/**
 * The dashboard's history of peers online: this process's peers move it as
 * they come and go, and the store's count (every tracker process's peers)
 * sets it whenever the HTTP side reads it. On a store several processes
 * share, /api/v1/history says its per-minute counts are this process's.
 */
import assert from "node:assert/strict";
import { EventFeed } from "../../../lib/tracker/events.ts";
import { History } from "../../../lib/tracker/http/history.ts";
import { buildHttpApp } from "../../../lib/tracker/http/app.ts";
import { WebSessions } from "../../../lib/tracker/http/web_sessions.ts";
import type { TrackerMetrics } from "../../../lib/tracker/metrics.ts";
import type { TrackerStats, TrackerStore } from "../../../lib/tracker/store.ts";
import { startTestOperator } from "../../helpers/operator.ts";

Deno.test("History - the store's count of peers online replaces the events' own, which then move it", () => {
  const feed = new EventFeed();
  using history = new History(feed);
  feed.emit("peer.online", "alice", { address: "10.0.0.1:7000" });
  feed.emit("peer.online", "bob", { address: "10.0.0.2:7000" });
  assert.equal(history.minutes().at(-1)!.peersOnline, 2);
  // Another process's 8 peers are online too.
  history.observePeersOnline(10);
  assert.equal(history.minutes().at(-1)!.peersOnline, 10);
  feed.emit("peer.online", "carol", { address: "10.0.0.3:7000" });
  feed.emit("peer.offline", "alice", { reason: "disconnected" });
  feed.emit("peer.offline", "bob", { reason: "disconnected" });
  assert.equal(history.minutes().at(-1)!.peersOnline, 9);
});

Deno.test("API - history's peers online are the store's, whoever put them online", async () => {
  await using op = await startTestOperator();
  const alice = await op.loggedIn("alice");
  for (const name of ["p1", "p2", "p3"]) {
    await op.account(name);
    // As another tracker process would: written to the store, no event in this one.
    await op.running.store.setPeerOnline(name, "10.0.0.9", 7000, null);
  }
  const { body } = await alice.json("/api/v1/history");
  assert.equal(body.minutes.at(-1).peersOnline, 3);
  assert.equal(body.scope, "tracker");
});

Deno.test("API - on a store several processes share, history says its counts are this process's", async () => {
  const stats: TrackerStats = {
    accounts: 9,
    peers: 9,
    peersOnline: 7,
    shares: 0,
    bytesPublished: 0,
  };
  // What the route and its admin check read of a shared (PostgreSQL) store, and its shared-only
  // method that marks it as one.
  const store = {
    apiTokenUser: () => Promise.resolve("alice"),
    isAdmin: () => Promise.resolve(true),
    stats: () => Promise.resolve(stats),
    keepPeer: () => Promise.resolve(true),
  } as unknown as TrackerStore;
  const events = new EventFeed();
  using history = new History(events);
  const app = buildHttpApp({
    store,
    events,
    sessions: new WebSessions(),
    checkPassword: () => Promise.reject(new Error("no login here")),
    secureCookies: true,
    startedAt: new Date(),
    closing: new AbortController().signal,
  }, { metrics: {} as TrackerMetrics, history });
  const response = await app.request("https://tracker.lan/api/v1/history", {
    headers: { Authorization: "Bearer some-token" },
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.scope, "process");
  assert.equal(body.minutes.at(-1).peersOnline, 7);
});
