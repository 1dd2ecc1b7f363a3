/**
 * The login back-off and the registration limits of several tracker
 * processes on one PostgreSQL count what all of them saw. Registrations
 * spread over the processes, or fired at both at once, get the one burst; guesses spread over the processes back off as they
 * would on one, an address the owner logged in from through one process is
 * the owner's through every other, and counts past the forgetting time are
 * pruned. Driven through `Tracker.checkPassword` (the dashboard's and the
 * protocol's check) with addresses named, and a clock the test moves. One
 * throwaway cluster; skipped with a message where PostgreSQL is not installed.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS } from "../../lib/protocol/messages.ts";
import { LoginLimiter } from "../../lib/tracker/login_limiter.ts";
import { RegisterLimiter } from "../../lib/tracker/register_limiter.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { PostgresTrackerStore } from "../../lib/tracker/postgres_store.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { shoalError } from "../helpers/errors.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import { CHEAP_COST, testTicketKey } from "../helpers/tracker.ts";

const PASSWORD = "correct horse";

Deno.test("PostgreSQL - the login back-off and the registration limits are shared by the tracker's processes", async (t) => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;
  let clock = Date.parse("2026-01-01T00:00:00Z");
  const now = () => clock;

  /** Two trackers (processes) on one new database, each with its own limiter. */
  async function twoTrackers() {
    const url = await pg.newDatabase();
    const storeA = await PostgresTrackerStore.open(url);
    const storeB = await PostgresTrackerStore.open(url);
    const ticketKey = await testTicketKey();
    const passwords = new PasswordHasher({ cost: CHEAP_COST });
    const limiter = () =>
      new LoginLimiter({
        freePerUser: 3,
        freePerAddress: 6,
        freeAddressesPerUser: 3,
        baseDelayMs: 60_000,
        forgetAfterMs: 900_000,
      });
    const options = { ticketKey, passwords, now, warn: () => {} };
    const registrations = () =>
      new RegisterLimiter({ burstPerAddress: 3, intervalPerAddressMs: 60_000 });
    const a = new Tracker(storeA, {
      ...options,
      loginLimiter: limiter(),
      registerLimiter: registrations(),
    });
    const b = new Tracker(storeB, {
      ...options,
      loginLimiter: limiter(),
      registerLimiter: registrations(),
    });
    await storeA.createUser("alice", await passwords.hash(PASSWORD));
    await storeA.createUser("bob", await passwords.hash(PASSWORD));
    return {
      url,
      a,
      b,
      [Symbol.asyncDispose]: async () => {
        await a.close();
        await b.close();
        await storeA.close();
        await storeB.close();
      },
    };
  }
  const wrong = (tracker: Tracker, username: string, address: string) =>
    assert.rejects(
      () => tracker.checkPassword(username, "wrong", address),
      shoalError("AUTH_FAILED"),
    );

  await t.step(
    "guesses at one name from one address, spread over two processes, back off on both",
    async () => {
      await using pair = await twoTrackers();
      await wrong(pair.a, "alice", "10.0.0.1");
      await wrong(pair.b, "alice", "10.0.0.1");
      await wrong(pair.a, "alice", "10.0.0.1");
      // Three failures in all (two through a): both processes make 10.0.0.1 wait for alice.
      for (const tracker of [pair.a, pair.b]) {
        await assert.rejects(
          () => tracker.checkPassword("alice", PASSWORD, "10.0.0.1"),
          shoalError("RATE_LIMITED", /for alice from 10\.0\.0\.1; try again in 60 s/),
        );
      }
      // Another address, and another name from that address, are not held back.
      assert.equal(await pair.b.checkPassword("alice", PASSWORD, "10.0.0.2"), "alice");
      assert.equal(await pair.b.checkPassword("bob", PASSWORD, "10.0.0.1"), "bob");
      // Once the wait is over, the owner's correct login clears the count everywhere.
      clock += 60_001;
      assert.equal(await pair.a.checkPassword("alice", PASSWORD, "10.0.0.1"), "alice");
      await wrong(pair.b, "alice", "10.0.0.1");
      assert.equal(await pair.b.checkPassword("alice", PASSWORD, "10.0.0.1"), "alice");
    },
  );

  await t.step(
    "guesses at many names from one address count together across processes",
    async () => {
      await using pair = await twoTrackers();
      for (let i = 0; i < 6; i++) await wrong(i % 2 ? pair.a : pair.b, `nobody${i}`, "10.0.0.9");
      await assert.rejects(
        () => pair.a.checkPassword("bob", PASSWORD, "10.0.0.9"),
        shoalError("RATE_LIMITED", /from 10\.0\.0\.9;/),
      );
    },
  );

  await t.step(
    "a name guessed from many addresses waits everywhere but where its owner logged in, through any process",
    async () => {
      await using pair = await twoTrackers();
      // Alice logs in through a from her own machine.
      assert.equal(await pair.a.checkPassword("alice", PASSWORD, "192.168.1.5"), "alice");
      // Guessers from three addresses, through both processes.
      await wrong(pair.a, "alice", "10.1.0.1");
      await wrong(pair.b, "alice", "10.1.0.2");
      await wrong(pair.b, "alice", "10.1.0.3");
      await assert.rejects(
        () => pair.b.checkPassword("alice", PASSWORD, "10.1.0.4"),
        shoalError("RATE_LIMITED", /for alice from many addresses/),
      );
      // b never saw her log in, yet her machine is hers there too.
      assert.equal(await pair.b.checkPassword("alice", PASSWORD, "192.168.1.5"), "alice");
    },
  );

  await t.step("counts past the forgetting time are ignored, then pruned", async () => {
    await using pair = await twoTrackers();
    for (let i = 0; i < 3; i++) await wrong(pair.a, "alice", "10.2.0.1");
    await assert.rejects(
      () => pair.b.checkPassword("alice", PASSWORD, "10.2.0.1"),
      shoalError("RATE_LIMITED"),
    );
    clock += 900_001;
    assert.equal(await pair.b.checkPassword("alice", PASSWORD, "10.2.0.1"), "alice");
    await wrong(pair.b, "bob", "10.3.0.1");
    const sql = postgres(pair.url, { max: 1, onnotice: () => {} });
    try {
      const keys = await sql`SELECT key FROM login_failures ORDER BY key`;
      assert.deepEqual(keys.map((row) => row.key), [
        "address:10.3.0.1",
        "pair:bob@10.3.0.1",
        "user:bob",
      ]);
      const addresses = await sql`SELECT key, address FROM login_failure_addresses`;
      assert.deepEqual(addresses.map((row) => [row.key, row.address]), [["user:bob", "10.3.0.1"]]);
    } finally {
      await sql.end();
    }
  });

  await t.step(
    "registrations from one address spread over two processes, or fired at both at once, get one burst",
    async () => {
      await using pair = await twoTrackers();
      const addresses = [
        await pair.a.listen({ host: "127.0.0.1", port: 0 }),
        await pair.b.listen({ host: "127.0.0.1", port: 0 }),
      ];
      const clients: ProtocolClient<typeof TRACKER_METHODS>[] = [];
      const register = async (which: number, username: string) => {
        const client = await ProtocolClient.connect(addresses[which], TRACKER_METHODS, {
          agent: "test",
          expect: "tracker",
        });
        clients.push(client);
        return await client.call("register", { username, password: PASSWORD });
      };
      try {
        await register(0, "carol");
        await register(1, "dave");
        await register(0, "erin");
        // Three in all from 127.0.0.1: the burst is spent on both processes.
        for (const which of [0, 1]) {
          await assert.rejects(
            () => register(which, `frank${which}`),
            shoalError(
              "RATE_LIMITED",
              /too many new accounts from your address; try again in 60 s/,
            ),
          );
        }
        // A minute on, one more, through whichever process; then none again.
        clock += 60_000;
        const raced = await Promise.allSettled(
          ["g0", "g1", "g2", "g3"].map((name, i) => register(i % 2, name)),
        );
        assert.deepEqual(
          raced.map((result) => result.status).sort(),
          ["fulfilled", "rejected", "rejected", "rejected"],
        );
        for (const result of raced) {
          if (result.status === "rejected") {
            assert.equal(result.reason.code, "RATE_LIMITED", String(result.reason));
          }
        }
      } finally {
        for (const client of clients) client.close();
      }
    },
  );
});
