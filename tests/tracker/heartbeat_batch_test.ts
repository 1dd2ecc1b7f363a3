/**
 * Thousands of serving peers heartbeat every 10 s, and every request checks
 * its session in the store: the checks that come while one is under way go
 * to the store together, so a busy tracker makes a few queries, not one per
 * request, and each still sees its own session (a revoked one ends).
 */
import assert from "node:assert/strict";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS } from "../../lib/protocol/messages.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import type { TrackerStore } from "../../lib/tracker/store.ts";
import { hashToken } from "../../lib/tracker/tokens.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { shoalError } from "../helpers/errors.ts";
import { CHEAP_COST, testTicketKey } from "../helpers/tracker.ts";

const CONNECTIONS = 20;
const PASSWORD = "correct horse battery";

/** `store` with its session checks recorded, and held while `hold()` is in force. */
function heldSessionChecks(store: SqliteTrackerStore) {
  const calls: string[][] = [];
  let gate: Promise<void> = Promise.resolve();
  let open = () => {};
  const held = new Proxy(store, {
    get(target, property) {
      if (property === "sessionUser") {
        return async (tokenHash: string) => {
          calls.push([tokenHash]);
          await gate;
          return await target.sessionUser(tokenHash);
        };
      }
      if (property === "sessionUsers") {
        return async (tokenHashes: string[]) => {
          calls.push(tokenHashes);
          await gate;
          return await target.sessionUsers(tokenHashes);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as TrackerStore;
  return {
    store: held,
    calls,
    hold: () => {
      const { promise, resolve } = Promise.withResolvers<void>();
      gate = promise;
      open = resolve;
    },
    release: () => open(),
  };
}

Deno.test("heartbeats that come while a session check is under way are checked together", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-heartbeat-batch-" });
  using sqlite = SqliteTrackerStore.open(`${dir}/tracker.db`);
  const passwords = new PasswordHasher({ cost: CHEAP_COST });
  const checks = heldSessionChecks(sqlite);
  const tracker = new Tracker(checks.store, {
    ticketKey: await testTicketKey(),
    passwords,
    warn: () => {},
  });
  const clients: ProtocolClient<typeof TRACKER_METHODS>[] = [];
  try {
    const address = await tracker.listen({ host: "127.0.0.1", port: 0 });
    const tokens: string[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      await sqlite.createUser(`peer${i}`, await passwords.hash(PASSWORD));
      const client = await ProtocolClient.connect(address, TRACKER_METHODS, {
        agent: "heartbeat-batch-test",
        expect: "tracker",
      });
      clients.push(client);
      tokens.push((await client.call("login", { username: `peer${i}`, password: PASSWORD })).token);
    }

    // The first check is held; the other heartbeats reach the tracker meanwhile.
    checks.hold();
    const before = checks.calls.length;
    const beats = clients.map((client) => client.call("heartbeat", {}));
    for (let turns = 0; turns < 100 && checks.calls.length === before; turns++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    checks.release();
    assert.deepEqual(await Promise.all(beats), clients.map(() => ({})));
    const made = checks.calls.slice(before);
    assert.equal(made.flat().length, CONNECTIONS, "every connection's session was checked");
    assert.ok(made.length < CONNECTIONS, `${made.length} queries for ${CONNECTIONS} heartbeats`);

    // A session ended elsewhere ends at its connection's next request, batched or not.
    await sqlite.deleteSession(hashToken(tokens[0]));
    const results = await Promise.allSettled(clients.map((client) => client.call("heartbeat", {})));
    assert.equal(results[0].status, "rejected");
    await assert.rejects(
      Promise.reject((results[0] as PromiseRejectedResult).reason),
      shoalError("AUTH_REQUIRED"),
    );
    assert.ok(results.slice(1).every((result) => result.status === "fulfilled"));
  } finally {
    for (const client of clients) client.close();
    await tracker.close();
    await Deno.remove(dir, { recursive: true });
  }
});
