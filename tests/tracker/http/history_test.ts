/**
 * The dashboard's history of peers online: this process's peers move it as
 * they come and go, and the store's count (every tracker process's peers)
 * sets it whenever the HTTP side reads it. On a store several processes
 * share, /api/v1/history sums every process's per-minute counts.
 */
import assert from "node:assert/strict";
import { EventFeed } from "../../../lib/tracker/events.ts";
import { History, type MinuteCounts } from "../../../lib/tracker/http/history.ts";
import { type HttpServer, startHttpServer } from "../../../lib/tracker/http/server.ts";
import { grantAdmin, issueApiToken } from "../../../lib/tracker/admins.ts";
import { TrackerMetrics } from "../../../lib/tracker/metrics.ts";
import { PostgresTrackerStore } from "../../../lib/tracker/postgres_store.ts";
import { startTestPostgres } from "../../helpers/postgres.ts";
import { buildHttpApp } from "../../../lib/tracker/http/app.ts";
import { WebSessions } from "../../../lib/tracker/http/web_sessions.ts";
import type { MinuteActivity, TrackerStats, TrackerStore } from "../../../lib/tracker/store.ts";
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
  assert.equal((await alice.json("/api/v1/summary")).body.sharedStore, false);
});

Deno.test("API - on a store several processes share, history sums every process's counts", async () => {
  const stats: TrackerStats = {
    accounts: 9,
    peers: 9,
    peersOnline: 7,
    shares: 0,
    bytesPublished: 0,
  };
  const recorded: MinuteActivity[][] = [];
  // What the routes and the admin check read of a shared (PostgreSQL) store, its shared-only
  // method that marks it as one, and another process's 5 tickets this minute.
  const store = {
    apiTokenUser: () => Promise.resolve("alice"),
    isAdmin: () => Promise.resolve(true),
    stats: () => Promise.resolve(stats),
    keepPeer: () => Promise.resolve(true),
    recordActivity: (minutes: MinuteActivity[]) => {
      recorded.push(minutes);
      return Promise.resolve();
    },
    activitySince: () =>
      Promise.resolve(
        recorded.flat().map((minute) => ({ ...minute, tickets: minute.tickets + 5 })),
      ),
  } as unknown as TrackerStore;
  const events = new EventFeed();
  using history = new History(events);
  events.emit("ticket", "bob", { contentId: "*", for: "any owner", sources: 1 });
  const app = buildHttpApp({
    store,
    events,
    sessions: new WebSessions(),
    checkPassword: () => Promise.reject(new Error("no login here")),
    secureCookies: true,
    startedAt: new Date(),
    closing: new AbortController().signal,
  }, { metrics: {} as TrackerMetrics, history });
  const get = async (path: string) => {
    const response = await app.request(`https://tracker.lan${path}`, {
      headers: { Authorization: "Bearer some-token" },
    });
    assert.equal(response.status, 200);
    return await response.json();
  };
  const { minutes } = await get("/api/v1/history");
  // This process's one ticket was recorded before the sums were read.
  assert.equal(recorded.flat().length, 1);
  assert.equal(recorded.flat()[0].tickets, 1);
  assert.equal(minutes.at(-1).tickets, 6);
  assert.equal(minutes.at(-1).peersOnline, 7);
  assert.equal((await get("/api/v1/summary")).sharedStore, true);
});

Deno.test("API - two tracker processes on one PostgreSQL: each one's dashboard counts both", async () => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;
  const url = await pg.newDatabase();
  const processes = [];
  try {
    for (let i = 0; i < 2; i++) {
      const store = await PostgresTrackerStore.open(url, { maxConnections: 2 });
      const events = new EventFeed();
      const metrics = new TrackerMetrics(store, events);
      processes.push({ store, events, metrics, http: null as HttpServer | null });
      processes[i].http = await startHttpServer({
        store,
        events,
        metrics,
        checkPassword: () => Promise.reject(new Error("no login here")),
        address: { host: "127.0.0.1", port: 0 },
        warn: () => {},
      });
    }
    const [a, b] = processes;
    await a.store.createUser("alice", "not-a-real-hash");
    await grantAdmin(a.store, "alice");
    const { token } = await issueApiToken(a.store, "alice");
    a.events.emit("publish", "bob", { name: "x", contentId: "*", size: 1, replaced: false });
    a.events.emit("publish", "bob", { name: "y", contentId: "*", size: 1, replaced: false });
    b.events.emit("login.failed", "mallory", {
      address: "10.0.0.9",
      via: "protocol",
      reason: "wrong password",
    });
    await b.store.createUser("carol", "not-a-real-hash");
    await b.store.setPeerOnline("carol", "10.0.0.3", 7000, null);
    const history = async (server: HttpServer) => {
      const response = await fetch(`${server.url}/api/v1/history`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 200);
      return (await response.json()).minutes as MinuteCounts[];
    };
    // Each process records its own minutes as its dashboard is read: read both, then each again.
    await history(a.http!);
    await history(b.http!);
    for (const server of [a.http!, b.http!]) {
      const minutes = await history(server);
      const sum = (key: "publishes" | "loginsFailed") =>
        minutes.reduce((total, minute) => total + minute[key], 0);
      assert.equal(sum("publishes"), 2, server.url);
      assert.equal(sum("loginsFailed"), 1, server.url);
      assert.equal(minutes.at(-1)!.peersOnline, 1, server.url);
    }
  } finally {
    for (const { store, metrics, http } of processes) {
      await http?.close();
      metrics[Symbol.dispose]();
      await store.close();
    }
  }
});
