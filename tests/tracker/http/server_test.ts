import assert from "node:assert/strict";
import { ShoalError } from "../../../lib/protocol/errors.ts";
import { EventFeed } from "../../../lib/tracker/events.ts";
import { TrackerMetrics } from "../../../lib/tracker/metrics.ts";
import { startHttpServer } from "../../../lib/tracker/http/server.ts";
import { SqliteTrackerStore } from "../../../lib/tracker/sqlite_store.ts";

Deno.test("startHttpServer - a port in use is one IO error that names what to pass, and nothing left dangling", async () => {
  const dir = await Deno.makeTempDir();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const store = SqliteTrackerStore.open(`${dir}/tracker.db`);
  const events = new EventFeed();
  using metrics = new TrackerMetrics(store, events);
  try {
    const error = await startHttpServer({
      store,
      events,
      metrics,
      checkPassword: () => Promise.reject(new ShoalError("AUTH_FAILED", "no")),
      address: { host: "127.0.0.1", port: taken.addr.port },
    }).catch((error: unknown) => error);
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "IO");
    assert.match(error.message, /port is in use \(pass another --http-port/);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startHttpServer - an --http-host that is no address of this machine says so, not 'listen EINVAL'", async () => {
  const dir = await Deno.makeTempDir();
  const store = SqliteTrackerStore.open(`${dir}/tracker.db`);
  const events = new EventFeed();
  using metrics = new TrackerMetrics(store, events);
  try {
    const error = await startHttpServer({
      store,
      events,
      metrics,
      checkPassword: () => Promise.reject(new ShoalError("AUTH_FAILED", "no")),
      // TEST-NET-1 (RFC 5737): never an address of a real machine.
      address: { host: "192.0.2.1", port: 0 },
    }).catch((error: unknown) => error);
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "IO");
    assert.match(
      error.message,
      /^cannot serve HTTP on 192\.0\.2\.1:0: 192\.0\.2\.1 is not an address of this machine \(pass --http-host/,
    );
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
