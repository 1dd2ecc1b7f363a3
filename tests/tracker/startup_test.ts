import assert from "node:assert/strict";
import { formatAddress } from "../../lib/protocol/address.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { DatabaseLock } from "../../lib/tracker/database_lock.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { startTestTracker, testTicketKey } from "../helpers/tracker.ts";
import { runTrackerCli } from "../helpers/cli.ts";

Deno.test("a tracker that cannot bind its port leaves every peer's presence as it was", async () => {
  await using running = await startTestTracker();
  const alice = await running.login("alice");
  await alice.call("announce", { port: 4000 });
  using second = SqliteTrackerStore.open(running.db);
  const intruder = new Tracker(second, { ticketKey: await testTicketKey(), warn: () => {} });
  await assert.rejects(intruder.listen(running.address));
  await intruder.close();
  assert.equal((await running.store.getPeer("alice"))?.online, true);
});

Deno.test("a second tracker on the same database refuses to start, naming the first", async () => {
  await using running = await startTestTracker();
  using lock = DatabaseLock.acquire(running.db);
  lock.record(running.address);
  const alice = await running.login("alice");
  await alice.call("announce", { port: 4000 });

  assert.throws(
    () => DatabaseLock.acquire(running.db),
    (error: unknown) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, "BUSY");
      assert.match(error.message, new RegExp(`pid ${Deno.pid}`));
      assert.match(error.message, new RegExp(`listening on ${formatAddress(running.address)}`));
      assert.match(error.message, /stop it first, or pass --db FILE/);
      return true;
    },
  );
  assert.equal((await running.store.getPeer("alice"))?.online, true);
});

Deno.test("the database lock is free again once its tracker stops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-lock-" });
  try {
    DatabaseLock.acquire(`${dir}/tracker.db`).release();
    using again = DatabaseLock.acquire(`${dir}/tracker.db`);
    assert.equal(again.path, `${dir}/tracker.db.lock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a heartbeat restores a serving peer's presence the store lost", async () => {
  await using running = await startTestTracker();
  const alice = await running.login("alice");
  await alice.call("announce", { port: 4000 });
  await running.store.markAllPeersOffline();
  assert.equal((await running.store.getPeer("alice"))?.online, false);

  await alice.call("heartbeat", {});
  const peer = await running.store.getPeer("alice");
  assert.equal(peer?.online, true);
  assert.equal(peer?.host, "127.0.0.1");
  assert.equal(peer?.port, 4000);
});

Deno.test("a heartbeat of a connection that never announced puts nobody online", async () => {
  await using running = await startTestTracker();
  const bob = await running.login("bob");
  await bob.call("heartbeat", {});
  assert.equal(await running.store.getPeer("bob"), null);
});

Deno.test("a --db in a folder that does not exist says so and how to go on, not the lock file's raw error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-startup-" });
  try {
    const db = `${dir}/not-made-yet/tracker.db`;
    assert.throws(
      () => DatabaseLock.acquire(db),
      (error: unknown) => {
        assert.ok(error instanceof ShoalError);
        assert.equal(error.code, "IO");
        assert.equal(
          error.message,
          `cannot make the database ${db}: the folder ${dir}/not-made-yet does not exist`,
        );
        assert.match(error.hint ?? "", /^create it first \(mkdir -p \S+not-made-yet\)/);
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a tracker whose HTTP or protocol port is in use says so and logs no start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-startup-" });
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((taken.addr as Deno.NetAddr).port);
  try {
    for (
      const [ports, said] of [
        [
          ["--port", "0", "--http-port", port],
          /^error: cannot serve HTTP on 127\.0\.0\.1:\d+: the port is in use/m,
        ],
        [
          ["--port", port, "--http-port", "0"],
          /^error: cannot listen on 127\.0\.0\.1:\d+: the port is in use/m,
        ],
      ] as const
    ) {
      const result = await runTrackerCli([
        "serve",
        "--db",
        `${dir}/tracker.db`,
        "--host",
        "127.0.0.1",
        "--no-announce",
        ...ports,
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, said);
      // The log's start line would tell an operator's log reader the tracker had started.
      assert.doesNotMatch(result.stderr, /INFO\s+start/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
