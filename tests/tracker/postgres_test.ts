/**
 * What only the PostgreSQL store does: presence shared by several tracker
 * processes, migrations run by several at once, and an outage of the
 * database, which refuses logins and publishes with STORE_UNAVAILABLE (said
 * once, in one line) while connections already logged in stay up. One
 * throwaway cluster for the file; skipped with a message where PostgreSQL is
 * not installed.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS } from "../../lib/protocol/messages.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { PostgresTrackerStore } from "../../lib/tracker/postgres_store.ts";
import { POSTGRES_MIGRATIONS } from "../../lib/tracker/postgres_schema.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { shoalError } from "../helpers/errors.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import { CHEAP_COST, testTicketKey } from "../helpers/tracker.ts";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("PostgresTrackerStore - presence, migrations and outages", async (t) => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;

  await t.step(
    "a starting process leaves a live one's peers online; a dead one's go offline",
    async () => {
      const url = await pg.newDatabase();
      await using a = await PostgresTrackerStore.open(url);
      await a.joinPresence();
      await a.createUser("alice", "h");
      await a.createUser("bob", "h");
      await a.setPeerOnline("alice", "10.0.0.1", 7000, null);

      await using b = await PostgresTrackerStore.open(url);
      await b.joinPresence();
      assert.equal((await b.getPeer("alice"))?.online, true, "a live process's peer stays online");
      await b.setPeerOnline("bob", "10.0.0.2", 7000, null);

      // a falls silent: its last beat an hour ago, far past the 20 s window.
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql`UPDATE tracker_processes SET heartbeat_at = now() - interval '1 hour'
                WHERE id = ${a.processId}`;
      } finally {
        await sql.end();
      }
      // b's next beat takes a's peers offline, not its own.
      assert.deepEqual(await b.presenceHeartbeat(), { rejoined: false });
      assert.equal((await b.getPeer("alice"))?.online, false);
      assert.equal((await b.getPeer("bob"))?.online, true);

      // a was only slow: its next beat finds itself taken for dead, and says so.
      assert.deepEqual(await a.presenceHeartbeat(), { rejoined: true });
      assert.equal((await a.getPeer("bob"))?.online, true, "rejoining takes nobody offline");
    },
  );

  await t.step(
    "a peer that moved to another process is not taken offline by the old one",
    async () => {
      const url = await pg.newDatabase();
      await using a = await PostgresTrackerStore.open(url);
      await using b = await PostgresTrackerStore.open(url);
      await a.joinPresence();
      await b.joinPresence();
      await a.createUser("alice", "h");
      await a.setPeerOnline("alice", "10.0.0.1", 7000, null);
      await b.setPeerOnline("alice", "10.0.0.1", 7001, null);
      // a notices its old connection closing only now.
      await a.setPeerOffline("alice");
      assert.equal((await a.getPeer("alice"))?.online, true);
      assert.equal((await a.getPeer("alice"))?.port, 7001);
      await a.leavePresence();
      assert.equal((await b.getPeer("alice"))?.online, true, "a stopping leaves b's peers alone");
      await b.leavePresence();
      assert.equal((await a.getPeer("alice"))?.online, false);
    },
  );

  await t.step(
    "many peers are kept online in one statement, except those another live process holds",
    async () => {
      const url = await pg.newDatabase();
      await using a = await PostgresTrackerStore.open(url);
      await using b = await PostgresTrackerStore.open(url);
      await a.joinPresence();
      await b.joinPresence();
      for (const name of ["alice", "Bob", "carol", "dave"]) await a.createUser(name, "h");
      await a.setPeerOnline("alice", "10.0.0.1", 7000, null);
      await b.setPeerOnline("Bob", "10.0.0.2", 7000, null);
      await a.setPeerOnline("carol", "10.0.0.3", 7000, "cert");
      await a.setPeerOffline("carol");
      const kept = await a.keepPeers([
        { username: "alice", host: "10.0.0.1", port: 7000, certificate: null },
        { username: "bob", host: "10.0.0.2", port: 7001, certificate: null },
        { username: "carol", host: "10.0.0.3", port: 7000, certificate: "cert" },
        { username: "dave", host: "10.0.0.4", port: 7000, certificate: null },
        { username: "nobody", host: "10.0.0.5", port: 7000, certificate: null },
      ]);
      assert.deepEqual(
        kept,
        new Map([
          ["alice", true],
          ["bob", false],
          ["carol", true],
          ["dave", true],
          ["nobody", true],
        ]),
      );
      assert.equal((await a.getPeer("Bob"))?.port, 7000, "b's peer is left as b has it");
      assert.equal((await a.getPeer("carol"))?.online, true, "a peer the store lost is back");
      assert.equal((await a.getPeer("dave"))?.online, true);
      assert.equal(await a.getPeer("nobody"), null);
      assert.equal(await a.keepPeer("bob", "10.0.0.2", 7001, null), false);
      assert.deepEqual(await a.peerHeldElsewhere("BOB"), { instance: null }, "in any case");
      assert.equal(await a.peerHeldElsewhere("alice"), null, "a's own peer");
      assert.deepEqual(await b.peerHeldElsewhere("Alice"), { instance: null }, "a's, seen from b");
      assert.deepEqual(await a.keepPeers([]), new Map());
    },
  );

  await t.step(
    "a database of the version before folder member counts keeps its members, counted",
    async () => {
      const url = await pg.newDatabase();
      const before = POSTGRES_MIGRATIONS.length - 1;
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.begin(async (tx) => {
          await tx.unsafe(
            "CREATE TABLE shoal_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
          );
          for (let step = 0; step < before; step++) {
            await tx.unsafe(POSTGRES_MIGRATIONS[step]);
            await tx.unsafe("INSERT INTO shoal_schema (version) VALUES ($1)", [step + 1]);
          }
          await tx`INSERT INTO users (username, password_hash, created_at) VALUES ('alice', 'h', '')`;
          await tx`INSERT INTO files (owner, name, type, size, content_id, published_at, files)
            VALUES ('alice', 'course', 'folder', 3, ${"a".repeat(64)}, '', 3)`;
          for (const [folder, n] of [["a", 1], ["a", 2], ["a", 3], ["b", 4], ["b", 5]] as const) {
            await tx`INSERT INTO folder_members (owner, folder_id, content_id)
              VALUES ('alice', ${folder.repeat(64)}, ${String(n).padStart(64, "0")})`;
          }
        });
      } finally {
        await sql.end();
      }
      await using store = await PostgresTrackerStore.open(url);
      await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
      const id = (n: number) => String(n).padStart(64, "0");
      assert.equal(await store.countOnlineOwnersOf(id(2)), 1);
      // Counted: a 4th member of the folder published with 3 files is refused.
      await assert.rejects(
        store.addFolderMembers("alice", "a".repeat(64), [id(9)]),
        shoalError("LIMIT_EXCEEDED", /published with 3 files, not 4/),
      );
      // The folder never published counts too, and goes first when the account is full.
      const full = { perFolder: 10, perAccount: 5, pendingFolders: 4 };
      await store.addFolderMembers("alice", id(1000), [id(6), id(7)], full);
      await store.publish({
        owner: "alice",
        name: "late",
        type: "folder",
        size: 2,
        contentId: "b".repeat(64),
        publishedAt: new Date().toISOString(),
        files: 2,
      });
      assert.equal(await store.countOnlineOwnersOf(id(4)), 0);
    },
  );

  await t.step("processes opening a new database at once apply each migration once", async () => {
    const url = await pg.newDatabase();
    const stores = await Promise.all(
      Array.from({ length: 4 }, () => PostgresTrackerStore.open(url, { maxConnections: 1 })),
    );
    for (const store of stores) await store.close();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`SELECT version FROM shoal_schema ORDER BY version`;
      assert.deepEqual(rows.map((row) => row.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      await sql`INSERT INTO shoal_schema (version) VALUES (99)`;
    } finally {
      await sql.end();
    }
    await assert.rejects(() => PostgresTrackerStore.open(url), shoalError("IO", /newer/));
  });

  await t.step("an admin command's store refuses a database no tracker has set up", async () => {
    const url = await pg.newDatabase();
    await assert.rejects(
      () => PostgresTrackerStore.open(url, { mustExist: true }),
      shoalError("NOT_FOUND", /no tracker database at PostgreSQL/),
    );
    await (await PostgresTrackerStore.open(url)).close();
    await (await PostgresTrackerStore.open(url, { mustExist: true })).close();
  });

  await t.step("an unreachable database is one clear STORE_UNAVAILABLE error at open", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    await assert.rejects(
      () => PostgresTrackerStore.open(`postgres://postgres@127.0.0.1:${port}/none`),
      shoalError("STORE_UNAVAILABLE", /cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/none/),
    );
  });

  await t.step("a database or role the server does not have is named with the server", async () => {
    const server = new URL(pg.url);
    await assert.rejects(
      () => PostgresTrackerStore.open(`postgres://postgres@${server.host}/no_such_db`),
      shoalError(
        "INVALID_INPUT",
        /^PostgreSQL at 127\.0\.0\.1:\d+\/no_such_db: database "no_such_db" does not exist$/,
      ),
    );
    await assert.rejects(
      () => PostgresTrackerStore.open(`postgres://no_such_role@${server.host}/postgres`),
      shoalError("INVALID_INPUT", /^PostgreSQL at .*: role "no_such_role" does not exist$/),
    );
  });

  await t.step(
    "with the database down, logins and publishes are refused with STORE_UNAVAILABLE and heartbeats go on",
    async () => {
      const url = await pg.newDatabase();
      const warnings: string[] = [];
      await using store = await PostgresTrackerStore.open(url, {
        warn: (line) => warnings.push(line),
        connectTimeoutSeconds: 2,
      });
      const passwords = new PasswordHasher({ cost: CHEAP_COST });
      const tracker = new Tracker(store, {
        ticketKey: await testTicketKey(),
        passwords,
        warn: (line) => warnings.push(line),
      });
      const address = await tracker.listen({ host: "127.0.0.1", port: 0 });
      const connect = () =>
        ProtocolClient.connect(address, TRACKER_METHODS, { agent: "test", expect: "tracker" });
      const alice = await connect();
      const late = await connect();
      try {
        await alice.call("register", { username: "alice", password: "correct horse" });
        await alice.call("login", { username: "alice", password: "correct horse" });
        await alice.call("announce", { port: 7000 });
        await alice.call("publish", {
          name: "notes.txt",
          type: "txt",
          size: 5,
          contentId: "c".repeat(64),
        });

        await pg.stop();
        await assert.rejects(
          () => late.call("login", { username: "alice", password: "correct horse" }),
          shoalError("STORE_UNAVAILABLE"),
        );
        await assert.rejects(
          () =>
            alice.call("publish", {
              name: "b.txt",
              type: "txt",
              size: 1,
              contentId: "d".repeat(64),
            }),
          shoalError("STORE_UNAVAILABLE"),
        );
        await alice.call("heartbeat", {});
        await assert.rejects(
          () => late.call("register", { username: "bob", password: "correct horse" }),
          shoalError("STORE_UNAVAILABLE"),
        );
        const down = warnings.filter((line) => line.includes("is unreachable"));
        assert.equal(down.length, 1, warnings.join("\n"));
        assert.match(down[0], /^PostgreSQL at 127\.0\.0\.1:\d+\/shoal_test_\d+ is unreachable/);

        await pg.start();
        // The pool reconnects on its own; the first statements may still meet closed connections.
        let loggedIn = false;
        for (let tried = 0; tried < 50 && !loggedIn; tried++) {
          loggedIn = await late.call("login", { username: "alice", password: "correct horse" })
            .then(() => true, () => false);
          if (!loggedIn) await pause(100);
        }
        assert.ok(loggedIn, warnings.join("\n"));
        assert.ok(
          warnings.some((line) => line.endsWith("is reachable again")),
          warnings.join("\n"),
        );
        assert.equal((await store.getPeer("alice"))?.online, true);
      } finally {
        alice.close();
        late.close();
        await tracker.close();
      }
    },
  );

  await t.step(
    "over a Unix socket (libpq's ?host=DIR) it opens, and a stopped server is STORE_UNAVAILABLE said in one line",
    async () => {
      const url = await pg.newDatabase();
      const database = new URL(url).pathname.slice(1);
      const overSocket =
        `postgres://postgres@localhost:${pg.port}/${database}?host=${pg.socketDir}`;
      const warnings: string[] = [];
      await using store = await PostgresTrackerStore.open(overSocket, {
        warn: (line) => warnings.push(line),
        connectTimeoutSeconds: 2,
      });
      assert.equal(store.description, `PostgreSQL at ${pg.socketDir}:${pg.port}/${database}`);
      await store.ping();

      await pg.stop();
      try {
        await assert.rejects(() => store.ping(), shoalError("STORE_UNAVAILABLE"));
        await assert.rejects(() => store.getPeer("alice"), shoalError("STORE_UNAVAILABLE"));
        const down = warnings.filter((line) => line.includes("is unreachable"));
        assert.equal(down.length, 1, warnings.join("\n"));
        await assert.rejects(
          () => PostgresTrackerStore.open(overSocket),
          shoalError("STORE_UNAVAILABLE", /cannot reach PostgreSQL at \//),
        );
      } finally {
        await pg.start();
      }
    },
  );
});
