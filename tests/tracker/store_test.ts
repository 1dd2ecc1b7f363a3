import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
/**
 * The store's contract: one set of tests of the TrackerStore interface, run
 * against SQLite and against a real PostgreSQL (a throwaway cluster this file
 * starts and stops; skipped with a message where PostgreSQL is not
 * installed). Below them, the SQLite store's own tests (its file, its
 * migrations).
 */
import postgres from "postgres";
import { PostgresTrackerStore } from "../../lib/tracker/postgres_store.ts";
import {
  type FileRecord,
  type MemberLimits,
  type MinuteActivity,
  type TrackerStore,
} from "../../lib/tracker/store.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { SQLITE_MIGRATIONS } from "../../lib/tracker/sqlite_schema.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import { shoalError } from "../helpers/errors.ts";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
/** Stands for a peer's PEM certificate; the store keeps it as given. */
const CERTIFICATE = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

/** Runs `work` with a fresh temp directory, removed afterwards. */
async function inTempDir(work: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-store-test-" });
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A test of the {@link TrackerStore} interface: `work` gets a fresh store,
 * and `another` opens a second store on the same database, as another
 * tracker process (or an admin command) would.
 */
type ContractTest = (store: TrackerStore, another: () => Promise<TrackerStore>) => Promise<void>;

const CONTRACT: [string, ContractTest][] = [];

/**
 * Registers a test of the store interface. Each runs against SQLite (a test
 * of its own) and against a real PostgreSQL (the steps of one test that
 * starts a throwaway cluster, below the last).
 */
function contract(name: string, work: ContractTest): void {
  CONTRACT.push([name, work]);
  Deno.test(`TrackerStore on SQLite - ${name}`, () =>
    inTempDir(async (dir) => {
      const path = `${dir}/tracker.db`;
      const opened: TrackerStore[] = [];
      try {
        const store = SqliteTrackerStore.open(path);
        opened.push(store);
        await work(store, () => {
          const next = SqliteTrackerStore.open(path);
          opened.push(next);
          return Promise.resolve(next);
        });
      } finally {
        for (const store of opened) await store.close();
      }
    }));
}

function file(owner: string, name: string, overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    owner,
    name,
    type: name.includes(".") ? name.slice(name.lastIndexOf(".") + 1) : "",
    size: 1000,
    contentId: HASH_A,
    publishedAt: "2025-01-02T03:04:05.000Z",
    files: 1,
    ...overrides,
  };
}

/** The names of `listings`, in order. */
function names(listings: { name: string }[]): string[] {
  return listings.map((listing) => listing.name);
}

contract("a created user can be read back", async (store) => {
  const before = Date.now();
  await store.createUser("alice", "hash-of-alice");
  const user = await store.getUser("alice");
  assert.ok(user);
  assert.equal(user.username, "alice");
  assert.equal(user.passwordHash, "hash-of-alice");
  assert.ok(Date.parse(user.createdAt) >= before - 1000, user.createdAt);
  assert.equal(await store.getUser("bob"), null);
});

contract("usernames are looked up case-insensitively, spelled as registered", async (store) => {
  await store.createUser("Alice", "h");
  assert.equal((await store.getUser("alice"))?.username, "Alice");
  assert.equal((await store.getUser("ALICE"))?.username, "Alice");
});

contract("a duplicate username throws USERNAME_TAKEN, whatever its case", async (store) => {
  await store.createUser("Alice", "first");
  await assert.rejects(() => store.createUser("Alice", "second"), shoalError("USERNAME_TAKEN"));
  await assert.rejects(() => store.createUser("alice", "second"), shoalError("USERNAME_TAKEN"));
  assert.equal((await store.getUser("alice"))?.passwordHash, "first");
});

contract("sessions are created, looked up and deleted", async (store) => {
  await store.createUser("alice", "h");
  await store.createUser("bob", "h");
  await store.createSession("token-hash-1", "alice");
  await store.createSession("token-hash-2", "alice");
  await store.createSession("token-hash-3", "bob");
  assert.equal(await store.sessionUser("token-hash-1"), "alice");
  assert.equal(await store.sessionUser("token-hash-3"), "bob");
  assert.equal(await store.sessionUser("unknown"), null);

  await store.deleteSession("token-hash-1");
  assert.equal(await store.sessionUser("token-hash-1"), null);
  assert.equal(await store.sessionUser("token-hash-2"), "alice");
  await store.deleteSession("token-hash-1");
});

contract("the users of many sessions are looked up in one call", async (store) => {
  await store.createUser("Alice", "h");
  await store.createUser("bob", "h");
  await store.createSession("hash-a", "Alice");
  await store.createSession("hash-b", "bob");
  assert.deepEqual(
    await store.sessionUsers(["hash-a", "gone", "hash-b"]),
    new Map([["hash-a", "Alice"], ["hash-b", "bob"]]),
  );
  assert.deepEqual(await store.sessionUsers([]), new Map());
  await store.deleteSession("hash-a");
  assert.deepEqual(await store.sessionUsers(["hash-a", "hash-b"]), new Map([["hash-b", "bob"]]));
});

contract("sessions keep when they were made and last used, and where from", async (store) => {
  await store.createUser("alice", "h");
  await store.createUser("bob", "h");
  await store.createSession("hash-old", "alice", "192.0.2.1", "2026-01-01T00:00:00.000Z");
  await store.createSession("hash-new", "alice", null, "2026-02-01T00:00:00.000Z");
  await store.createSession("hash-bob", "bob", "192.0.2.2", "2026-01-15T00:00:00.000Z");
  await store.touchSession("hash-old", "2026-03-01T00:00:00.000Z");
  assert.deepEqual(await store.sessionsOf("alice"), [
    {
      tokenHash: "hash-new",
      username: "alice",
      createdAt: "2026-02-01T00:00:00.000Z",
      lastSeen: "2026-02-01T00:00:00.000Z",
      address: null,
    },
    {
      tokenHash: "hash-old",
      username: "alice",
      createdAt: "2026-01-01T00:00:00.000Z",
      lastSeen: "2026-03-01T00:00:00.000Z",
      address: "192.0.2.1",
    },
  ]);
  assert.equal((await store.getSession("hash-bob"))?.address, "192.0.2.2");
  assert.equal(await store.getSession("unknown"), null);
});

contract("deleteIdleSessions deletes those last used before the cutoff", async (store) => {
  await store.createUser("alice", "h");
  await store.createSession("hash-idle", "alice", null, "2026-01-01T00:00:00.000Z");
  await store.createSession("hash-used", "alice", null, "2026-01-01T00:00:00.000Z");
  await store.touchSession("hash-used", "2026-02-10T00:00:00.000Z");
  assert.equal(await store.deleteIdleSessions("2026-02-01T00:00:00.000Z"), 1);
  assert.equal(await store.sessionUser("hash-idle"), null);
  assert.equal(await store.sessionUser("hash-used"), "alice");
});

contract("a session for an unknown user is refused", async (store) => {
  await assert.rejects(() => store.createSession("token-hash", "ghost"));
  assert.equal(await store.sessionUser("token-hash"), null);
});

contract("publish returns replaced=false first, then true, and keeps the latest", async (store) => {
  await store.createUser("alice", "h");
  assert.equal(await store.publish(file("alice", "song.mp3")), false);
  assert.equal(
    await store.publish(file("alice", "song.mp3", { size: 2000, contentId: HASH_B })),
    true,
  );
  const files = await store.filesOf("alice");
  assert.equal(files.length, 1);
  assert.equal(files[0].size, 2000);
  assert.equal(files[0].contentId, HASH_B);
  assert.equal(files[0].type, "mp3");
});

contract("the same name from two owners is two publications", async (store) => {
  await store.createUser("alice", "h");
  await store.createUser("bob", "h");
  assert.equal(await store.publish(file("alice", "notes.txt")), false);
  assert.equal(await store.publish(file("bob", "notes.txt")), false);
  assert.deepEqual((await store.filesNamed("notes.txt")).map((f) => f.owner), ["alice", "bob"]);
});

contract("unpublish returns whether there was such a publication", async (store) => {
  await store.createUser("alice", "h");
  await store.createUser("bob", "h");
  await store.publish(file("alice", "a.txt"));
  assert.equal(await store.unpublish("bob", "a.txt"), false);
  assert.equal(await store.unpublish("alice", "a.txt"), true);
  assert.equal(await store.unpublish("alice", "a.txt"), false);
  assert.deepEqual(await store.filesOf("alice"), []);
});

contract("a listing is offline with no address before its owner announces", async (store) => {
  await store.createUser("alice", "h");
  await store.publish(file("alice", "a.txt"));
  assert.deepEqual(await store.filesNamed("a.txt"), [{
    ...file("alice", "a.txt"),
    online: false,
    host: null,
    port: null,
    certificate: null,
  }]);
});

contract("listings carry online status and address after setPeerOnline", async (store) => {
  await store.createUser("alice", "h");
  await store.publish(file("alice", "report.pdf"));
  await store.setPeerOnline("alice", "192.168.1.20", 7000, CERTIFICATE);

  const expected = {
    ...file("alice", "report.pdf"),
    online: true,
    host: "192.168.1.20",
    port: 7000,
    certificate: CERTIFICATE,
  };
  assert.deepEqual(await store.filesNamed("report.pdf"), [expected]);
  assert.deepEqual(await store.searchFiles("port"), [expected]);
  assert.deepEqual(await store.filesOf("alice"), [expected]);
  assert.deepEqual(await store.allFiles(), [expected]);

  await store.setPeerOnline("alice", "192.168.1.21", 7001, null);
  assert.equal((await store.filesNamed("report.pdf"))[0].host, "192.168.1.21");
  assert.equal((await store.filesNamed("report.pdf"))[0].port, 7001);
});

contract("listings lose online status after setPeerOffline", async (store) => {
  await store.createUser("alice", "h");
  await store.publish(file("alice", "report.pdf"));
  await store.setPeerOnline("alice", "10.0.0.5", 7000, null);
  await store.setPeerOffline("alice");

  assert.equal((await store.filesNamed("report.pdf"))[0].online, false);
  assert.equal((await store.searchFiles("report"))[0].online, false);
  const peer = await store.getPeer("alice");
  assert.ok(peer);
  assert.equal(peer.online, false);
  assert.equal(peer.host, "10.0.0.5");
  assert.equal(peer.port, 7000);
});

contract(
  "a starting tracker process takes offline the peers no live process holds",
  async (store, another) => {
    for (const name of ["alice", "bob"]) {
      await store.createUser(name, "h");
      await store.publish(file(name, `${name}.txt`));
    }
    await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
    await store.setPeerOnline("bob", "10.0.0.2", 7000, null);
    assert.deepEqual((await store.allFiles()).map((f) => f.online), [true, true]);

    // The store that set them never joined as a live process (as a tracker that died before).
    await (await another()).joinPresence();
    assert.deepEqual((await store.allFiles()).map((f) => f.online), [false, false]);
    assert.deepEqual((await store.searchFiles(".txt")).map((f) => f.online), [false, false]);
    assert.deepEqual((await store.listPeers()).map((p) => [p.username, p.online]), [
      ["alice", false],
      ["bob", false],
    ]);
  },
);

contract("filesNamed lists online owners first", async (store) => {
  for (const name of ["alice", "bob", "carol"]) {
    await store.createUser(name, "h");
    await store.publish(file(name, "shared.iso"));
  }
  await store.setPeerOnline("carol", "10.0.0.3", 7000, null);
  assert.deepEqual((await store.filesNamed("shared.iso")).map((f) => [f.owner, f.online]), [
    ["carol", true],
    ["alice", false],
    ["bob", false],
  ]);
  assert.deepEqual(await store.filesNamed("missing.iso"), []);
});

contract("peersAt finds peers by host, and by host and port", async (store) => {
  for (const name of ["alice", "bob", "carol"]) await store.createUser(name, "h");
  await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
  await store.setPeerOnline("bob", "10.0.0.1", 7001, null);
  await store.setPeerOnline("carol", "10.0.0.2", 7000, null);
  assert.deepEqual((await store.peersAt("10.0.0.1")).map((p) => p.username), ["alice", "bob"]);
  assert.deepEqual((await store.peersAt("10.0.0.1", 7001)).map((p) => p.username), ["bob"]);
  assert.deepEqual(await store.peersAt("10.0.0.9"), []);
});

contract("searchFiles matches a substring, ignoring ASCII case", async (store) => {
  await store.createUser("alice", "h");
  for (const name of ["Annual Report.pdf", "report-2024.xlsx", "photo.jpg"]) {
    await store.publish(file("alice", name));
  }
  assert.deepEqual(names(await store.searchFiles("REPORT")), [
    "Annual Report.pdf",
    "report-2024.xlsx",
  ]);
  assert.deepEqual(names(await store.searchFiles("")), [
    "Annual Report.pdf",
    "photo.jpg",
    "report-2024.xlsx",
  ]);
  assert.deepEqual(await store.searchFiles("nothing like it"), []);
});

contract("searchFiles treats '%', '_' and '\\' as literal characters", async (store) => {
  await store.createUser("alice", "h");
  for (const name of ["100%_done.txt", "100 done.txt", "a_b.txt", "axb.txt", "back\\slash"]) {
    await store.publish(file("alice", name));
  }
  assert.deepEqual(names(await store.searchFiles("%")), ["100%_done.txt"]);
  assert.deepEqual(names(await store.searchFiles("_")), ["100%_done.txt", "a_b.txt"]);
  assert.deepEqual(names(await store.searchFiles("a_b")), ["a_b.txt"]);
  assert.deepEqual(names(await store.searchFiles("100%")), ["100%_done.txt"]);
  assert.deepEqual(names(await store.searchFiles("\\")), ["back\\slash"]);
});

contract("deleteUser removes the user's sessions, peer and files only", async (store) => {
  for (const name of ["alice", "bob"]) {
    await store.createUser(name, "h");
    await store.createSession(`session-${name}`, name);
    await store.setPeerOnline(name, "10.0.0.1", name === "alice" ? 7000 : 7001, null);
    await store.publish(file(name, "shared.txt"));
    await store.publish(file(name, `${name}.txt`));
  }

  await store.deleteUser("alice");

  assert.equal(await store.getUser("alice"), null);
  assert.equal(await store.sessionUser("session-alice"), null);
  assert.equal(await store.getPeer("alice"), null);
  assert.deepEqual(await store.filesOf("alice"), []);
  assert.deepEqual((await store.allFiles()).map((f) => [f.owner, f.name]), [
    ["bob", "bob.txt"],
    ["bob", "shared.txt"],
  ]);
  assert.equal(await store.sessionUser("session-bob"), "bob");
  assert.equal((await store.getPeer("bob"))?.port, 7001);

  // The name is free again.
  await store.createUser("alice", "new");
  assert.deepEqual(await store.filesOf("alice"), []);
});

contract(
  "admin role and API tokens: granted, checked, and revoked with the tokens",
  async (store) => {
    await store.createUser("alice", "h");
    assert.equal(await store.isAdmin("alice"), false);
    assert.equal(await store.setAdmin("nobody", true), false);
    assert.equal(await store.setAdmin("alice", true), true);
    assert.equal(await store.isAdmin("alice"), true);
    await store.createApiToken("token-a", "alice");
    assert.equal(await store.apiTokenUser("token-a"), "alice");
    assert.equal(await store.apiTokenUser("token-b"), null);

    await store.setAdmin("alice", false);
    assert.equal(await store.isAdmin("alice"), false);
    assert.equal(await store.apiTokenUser("token-a"), null);
  },
);

contract("stats and listAccounts count accounts, presence and shares", async (store) => {
  for (const name of ["alice", "bob", "carl"]) await store.createUser(name, "h");
  await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
  await store.setPeerOnline("bob", "10.0.0.2", 7000, null);
  await store.setPeerOffline("bob");
  await store.publish(file("alice", "a.txt", { size: 100 }));
  await store.publish(file("alice", "b.txt", { size: 23 }));
  await store.publish(file("bob", "c.txt", { size: 7 }));

  assert.deepEqual(await store.stats(), {
    accounts: 3,
    peers: 2,
    peersOnline: 1,
    shares: 3,
    bytesPublished: 130,
  });
  const accounts = await store.listAccounts();
  assert.deepEqual(accounts.map((a) => [a.username, a.online, a.host, a.port, a.shares]), [
    ["alice", true, "10.0.0.1", 7000, 2],
    ["bob", false, "10.0.0.2", 7000, 1],
    ["carl", false, null, null, 0],
  ]);
  assert.ok(accounts.every((a) => typeof a.lastSeen === "string" && a.lastSeen !== ""));
  const bytes = await store.databaseBytes();
  assert.ok(bytes === null || bytes > 0);
});

Deno.test("SqliteTrackerStore - data survives close and reopen", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/tracker.db`;
    {
      using store = SqliteTrackerStore.open(path);
      await store.createUser("alice", "hash-a");
      await store.createSession("session-a", "alice");
      await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
      await store.publish(file("alice", "keep.txt", { contentId: HASH_B, size: 42 }));
    }
    {
      using store = SqliteTrackerStore.open(path);
      assert.equal((await store.getUser("alice"))?.passwordHash, "hash-a");
      assert.equal(await store.sessionUser("session-a"), "alice");
      assert.equal((await store.getPeer("alice"))?.port, 7000);
      assert.deepEqual(await store.filesOf("alice"), [{
        ...file("alice", "keep.txt", { contentId: HASH_B, size: 42 }),
        online: true,
        host: "10.0.0.1",
        port: 7000,
        certificate: null,
      }]);
      await assert.rejects(() => store.createUser("ALICE", "x"), shoalError("USERNAME_TAKEN"));
    }
  }));

Deno.test("SqliteTrackerStore - reopening an existing database runs no migration twice", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/tracker.db`;
    await SqliteTrackerStore.open(path).close();
    {
      using first = SqliteTrackerStore.open(path);
      // A second store on the same file while the first is open, as an admin command does.
      using second = SqliteTrackerStore.open(path);
      await first.createUser("alice", "h");
      assert.equal((await second.getUser("alice"))?.username, "alice");
    }
    const db = new DatabaseSync(path);
    try {
      const { user_version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(user_version, 6);
      const tables = db.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
      ).all() as { name: string }[];
      assert.deepEqual(tables.map((t) => t.name), [
        "activity",
        "api_tokens",
        "files",
        "folder_member_counts",
        "folder_members",
        "peers",
        "sessions",
        "totals",
        "users",
      ]);
    } finally {
      db.close();
    }
  }));

Deno.test("SqliteTrackerStore - a database of the version before folder member counts keeps its members, counted", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/tracker.db`;
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA foreign_keys = ON");
      for (const migration of SQLITE_MIGRATIONS.slice(0, 5)) db.exec(migration);
      db.exec("PRAGMA user_version = 5");
      db.exec(`INSERT INTO users (username, password_hash, created_at) VALUES ('alice', 'h', '')`);
      db.exec(`INSERT INTO files (owner, name, type, size, content_id, published_at, files)
        VALUES ('alice', 'course', 'folder', 3, '${HASH_A}', '', 3)`);
      const member = db.prepare(
        "INSERT INTO folder_members (owner, folder_id, content_id) VALUES ('alice', ?, ?)",
      );
      // A published folder of 3 files, and one sent members but never published.
      for (const n of [1, 2, 3]) member.run(HASH_A, idOf(n));
      for (const n of [4, 5]) member.run(HASH_B, idOf(n));
    } finally {
      db.close();
    }
    await Deno.chmod(path, 0o600);
    using store = SqliteTrackerStore.open(path);
    await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
    assert.equal(await store.countOnlineOwnersOf(idOf(2)), 1);
    // Counted: a 4th member of the folder published with 3 files is refused.
    await assert.rejects(
      store.addFolderMembers("alice", HASH_A, [idOf(9)]),
      shoalError("LIMIT_EXCEEDED", /published with 3 files, not 4/),
    );
    // The folder never published counts too, and goes first when the account is full.
    const full = { perFolder: 10, perAccount: 5, pendingFolders: 4 };
    await store.addFolderMembers("alice", idOf(1000), [idOf(6), idOf(7)], full);
    await store.publish(file("alice", "late", { type: "folder", contentId: HASH_B, files: 2 }));
    assert.equal(await store.countOnlineOwnersOf(idOf(4)), 0);
  }));

Deno.test("SqliteTrackerStore - a database from a newer schema version is refused with IO", () =>
  inTempDir((dir) => {
    const path = `${dir}/tracker.db`;
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => SqliteTrackerStore.open(path), shoalError("IO"));
  }));

Deno.test("SqliteTrackerStore - a database that cannot be created throws IO", () =>
  inTempDir((dir) => {
    assert.throws(() => SqliteTrackerStore.open(`${dir}/missing/dir/tracker.db`), shoalError("IO"));
  }));

Deno.test("SqliteTrackerStore - close is idempotent", () =>
  inTempDir(async (dir) => {
    const store = SqliteTrackerStore.open(`${dir}/tracker.db`);
    await store.close();
    await store.close();
  }));

contract(
  "restorePeer puts a peer back online as it serves, and writes nothing when the store already has it so",
  async (store) => {
    await store.createUser("alice", "h");
    await store.setPeerOnline("alice", "192.168.1.20", 7000, CERTIFICATE);
    const seen = (await store.getPeer("alice"))!.since;
    await store.restorePeer("alice", "192.168.1.20", 7000, CERTIFICATE);
    assert.equal((await store.getPeer("alice"))!.since, seen, "nothing written");

    await store.setPeerOffline("alice");
    await store.restorePeer("alice", "192.168.1.20", 7000, CERTIFICATE);
    const restored = (await store.getPeer("alice"))!;
    assert.equal(restored.online, true);
    assert.deepEqual([restored.host, restored.port, restored.certificate], [
      "192.168.1.20",
      7000,
      CERTIFICATE,
    ]);

    await store.createUser("bob", "h");
    await store.restorePeer("bob", "192.168.1.30", 7001, null);
    assert.equal((await store.getPeer("bob"))?.online, true);
  },
);

contract("ping answers, and leavePresence takes this process's peers offline", async (store) => {
  await store.ping();
  await store.joinPresence();
  await store.createUser("alice", "h");
  await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
  assert.deepEqual(await store.presenceHeartbeat(), { rejoined: false });
  assert.equal((await store.getPeer("alice"))?.online, true, "a heartbeat keeps its own peers");
  await store.setPeerOffline("alice");
  await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
  await store.leavePresence();
  // SQLite leaves that to each connection's close; on PostgreSQL the process's peers go with it.
  await store.setPeerOffline("alice");
  assert.equal((await store.getPeer("alice"))?.online, false);
});

contract(
  "a name published in two spellings that differ only in case is AMBIGUOUS",
  async (store) => {
    await store.createUser("alice", "h");
    await store.createUser("bob", "h");
    await store.publish(file("alice", "Notes.pdf"));
    await store.publish(file("bob", "NOTES.pdf"));
    await assert.rejects(() => store.filesNamed("notes.pdf"), shoalError("AMBIGUOUS"));
    assert.deepEqual((await store.filesNamed("Notes.pdf")).map((f) => f.owner), ["alice"]);
    assert.equal(await store.countFilesNamed("NOTES.pdf", "BOB"), 1);
    assert.deepEqual((await store.filesNamed("NOTES.pdf", { owner: "Bob" })).map((f) => f.owner), [
      "bob",
    ]);
  },
);

contract(
  "onlineOwnersOf lists online owners of a content once each, within the page",
  async (store) => {
    for (const name of ["alice", "bob", "carol"]) {
      await store.createUser(name, "h");
      await store.publish(file(name, "a.txt"));
      await store.publish(file(name, "copy.txt"));
    }
    await store.setPeerOnline("alice", "10.0.0.1", 7000, null);
    await store.setPeerOnline("carol", "10.0.0.3", 7000, CERTIFICATE);
    const owners = await store.onlineOwnersOf(HASH_A);
    assert.deepEqual(
      owners.map((p) => [p.username, p.certificate]).sort(),
      [["alice", null], ["carol", CERTIFICATE]],
    );
    assert.equal((await store.onlineOwnersOf(HASH_A, { limit: 1 })).length, 1);
    assert.deepEqual(
      (await store.onlineOwnersOf(HASH_A, { owner: "CAROL" })).map((p) => p.username),
      ["carol"],
    );
    assert.equal(await store.countOnlineOwnersOf(HASH_A), 2);
    assert.equal(await store.countOnlineOwnersOf(HASH_A, "bob"), 0);
    assert.equal(await store.countSearch("TXT"), 6);
  },
);

contract(
  "a second store on the same database sees what the first wrote",
  async (store, another) => {
    await store.createUser("alice", "h");
    await store.createSession("s", "alice");
    await store.publish(file("alice", "x.txt", { size: Number.MAX_SAFE_INTEGER }));
    const second = await another();
    assert.equal(await second.sessionUser("s"), "alice");
    assert.equal((await second.allFiles())[0].size, Number.MAX_SAFE_INTEGER);
  },
);

/** The content id of a test's `n`th file. */
const idOf = (n: number) => n.toString(16).padStart(64, "0");

/** A folder record of `owner`'s, with `files` files. */
const folder = (owner: string, name: string, contentId: string, files: number) =>
  file(owner, name, { type: "folder", contentId, files });

/** Creates `count` online accounts h00, h01, ...; returns their names. */
async function onlineAccounts(store: TrackerStore, count: number): Promise<string[]> {
  const users = Array.from({ length: count }, (_, i) => `h${String(i).padStart(2, "0")}`);
  for (const [i, user] of users.entries()) {
    await store.createUser(user, "h");
    await store.setPeerOnline(user, "10.0.0.1", 7000 + i, null);
  }
  return users;
}

/** How many calls of `sample` it takes until every one of `all` was named; at most `rounds`. */
async function callsToNameAll(
  all: string[],
  rounds: number,
  sample: () => Promise<string[]>,
): Promise<number> {
  const seen = new Set<string>();
  for (let round = 1; round <= rounds; round++) {
    for (const name of await sample()) seen.add(name);
    if (seen.size === all.length) return round;
  }
  assert.deepEqual([...seen].sort(), all, `after ${rounds} calls`);
  return rounds;
}

contract(
  "holdersOf names a random sample of a file's holders: repeated calls name every one",
  async (store) => {
    const users = await onlineAccounts(store, 20);
    for (const user of users) await store.publish(file(user, "popular.iso", { contentId: HASH_A }));
    // 8 of 20 a call: each is missed by one call with probability 0.6, by 200 with 1e-44.
    await callsToNameAll(users, 200, async () => {
      const holders = (await store.holdersOf([HASH_A], 8)).get(HASH_A)!;
      assert.equal(holders.length, 8);
      assert.equal(new Set(holders.map((peer) => peer.username)).size, 8);
      return holders.map((peer) => peer.username);
    });
  },
);

contract(
  "holdersOf gives the files of one folder the same holders in one call, and only online ones",
  async (store) => {
    const users = await onlineAccounts(store, 20);
    const files = [idOf(1), idOf(2), idOf(3)];
    for (const user of users) {
      await store.addFolderMembers(user, HASH_B, files);
      await store.publish(folder(user, "course", HASH_B, 3));
    }
    await store.setPeerOffline("h03");
    const found = await store.holdersOf([...files, idOf(99)], 8);
    const first = found.get(files[0])!.map((peer) => peer.username);
    assert.equal(first.length, 8);
    assert.ok(!first.includes("h03"));
    for (const id of files) assert.deepEqual(found.get(id)!.map((peer) => peer.username), first);
    assert.deepEqual(found.get(idOf(99)), []);
  },
);

contract(
  "members of a folder not published name no holder until it is; unpublishing forgets them",
  async (store) => {
    await onlineAccounts(store, 1);
    await store.addFolderMembers("h00", HASH_B, [idOf(1), idOf(2)]);
    assert.deepEqual((await store.holdersOf([idOf(1)], 8)).get(idOf(1)), []);
    await store.publish(folder("h00", "course", HASH_B, 2));
    assert.deepEqual(
      (await store.holdersOf([idOf(1)], 8)).get(idOf(1))!.map((peer) => peer.username),
      ["h00"],
    );
    assert.equal(await store.countOnlineOwnersOf(idOf(2)), 1);
    await store.unpublish("h00", "course");
    assert.equal(await store.countOnlineOwnersOf(idOf(2)), 0);
    // Published again without its members: they were forgotten, and are not back.
    await store.publish(folder("h00", "course", HASH_B, 2));
    assert.equal(await store.countOnlineOwnersOf(idOf(2)), 0);
  },
);

contract(
  "a folder re-published with other content forgets the old members; deleting the account all",
  async (store, another) => {
    await onlineAccounts(store, 1);
    await store.addFolderMembers("h00", HASH_A, [idOf(1)]);
    await store.publish(folder("h00", "course", HASH_A, 1));
    await store.addFolderMembers("h00", HASH_B, [idOf(2)]);
    await store.publish(folder("h00", "course", HASH_B, 1));
    assert.equal(await store.countOnlineOwnersOf(idOf(1)), 0);
    assert.equal(await store.countOnlineOwnersOf(idOf(2)), 1);
    // The count went with the rows: the old folder's content may be sent again in full.
    await store.addFolderMembers("h00", HASH_A, [idOf(3)], limits({ perAccount: 2 }));
    await store.deleteUser("h00");
    await store.createUser("h00", "h");
    await store.setPeerOnline("h00", "10.0.0.1", 7000, null);
    await store.publish(folder("h00", "course", HASH_B, 1));
    const second = await another();
    assert.equal(await second.countOnlineOwnersOf(idOf(2)), 0);
    await store.addFolderMembers("h00", HASH_B, [idOf(2)], limits({ perAccount: 1 }));
  },
);

/** {@link MemberLimits} small enough to reach in a test. */
function limits(overrides: Partial<MemberLimits>): MemberLimits {
  return { perFolder: 10, perAccount: 100, pendingFolders: 2, ...overrides };
}

contract(
  "an id twice in one members batch, or again in a later one, is one member",
  async (store) => {
    await onlineAccounts(store, 1);
    // Ten distinct ids in 12 (one twice in the batch, one again later): the limit of 10 holds them.
    await store.addFolderMembers("h00", HASH_B, [idOf(1), idOf(1), idOf(2)], limits({}));
    await store.addFolderMembers(
      "h00",
      HASH_B,
      Array.from({ length: 9 }, (_, i) => idOf(2 + i)),
      limits({}),
    );
    await assert.rejects(
      store.addFolderMembers("h00", HASH_B, [idOf(11)], limits({})),
      shoalError("LIMIT_EXCEEDED", /at most 10 files/),
    );
  },
);

contract(
  "members past a folder's file count, the folder limit or the account's are LIMIT_EXCEEDED",
  async (store) => {
    await onlineAccounts(store, 1);
    const ids = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => idOf(from + i));
    // Published with 3 files: a 4th member is refused, and nothing of that batch is kept.
    await store.addFolderMembers("h00", HASH_A, ids(0, 2));
    await store.publish(folder("h00", "three", HASH_A, 3));
    await assert.rejects(
      store.addFolderMembers("h00", HASH_A, ids(1, 3), limits({})),
      shoalError("LIMIT_EXCEEDED", /published with 3 files/),
    );
    assert.equal(await store.countOnlineOwnersOf(idOf(3)), 0);
    await store.addFolderMembers("h00", HASH_A, ids(1, 2), limits({}));
    assert.equal(await store.countOnlineOwnersOf(idOf(2)), 1);
    // Sent again (a re-publish of the same folder), the same ids count once.
    await store.addFolderMembers("h00", HASH_A, ids(0, 3), limits({}));
    // A folder not yet published: at most perFolder.
    await assert.rejects(
      store.addFolderMembers("h00", HASH_B, ids(100, 11), limits({})),
      shoalError("LIMIT_EXCEEDED", /at most 10 files/),
    );
    // The account: 3 members already, so 8 more pass a limit of 10.
    await assert.rejects(
      store.addFolderMembers("h00", HASH_B, ids(100, 8), limits({ perAccount: 10 })),
      shoalError("LIMIT_EXCEEDED", /at most 10 files in its folders/),
    );
    await store.addFolderMembers("h00", HASH_B, ids(100, 7), limits({ perAccount: 10 }));
  },
);

contract(
  "a publication with fewer files than its members is LIMIT_EXCEEDED and forgets them",
  async (store) => {
    await onlineAccounts(store, 1);
    await store.addFolderMembers("h00", HASH_B, [idOf(1), idOf(2), idOf(3)]);
    // A single file, or a folder claiming fewer files, with the members' folder id.
    await assert.rejects(
      store.publish(file("h00", "lie.txt", { contentId: HASH_B })),
      shoalError("LIMIT_EXCEEDED", /3 member files/),
    );
    assert.deepEqual(await store.filesOf("h00"), []);
    // Forgotten: published now, the folder names none of them.
    await store.publish(folder("h00", "course", HASH_B, 2));
    assert.equal(await store.countOnlineOwnersOf(idOf(1)), 0);
  },
);

contract(
  "members of folders never published are kept for a few folders, the oldest forgotten first",
  async (store) => {
    await onlineAccounts(store, 1);
    const small = limits({ pendingFolders: 2 });
    // A published folder does not count as pending.
    await store.addFolderMembers("h00", HASH_A, [idOf(9)], small);
    await store.publish(folder("h00", "kept", HASH_A, 1));
    await store.addFolderMembers("h00", idOf(1001), [idOf(1)], small);
    await store.addFolderMembers("h00", idOf(1002), [idOf(2)], small);
    await store.addFolderMembers("h00", idOf(1003), [idOf(3)], small);
    // 1001 went: published now, it names no holder of its file; 1002 and 1003 do.
    for (const [folderId, member, held] of [[1001, 1, 0], [1002, 2, 1], [1003, 3, 1]]) {
      await store.publish(folder("h00", `f${folderId}`, idOf(folderId), 1));
      assert.equal(await store.countOnlineOwnersOf(idOf(member)), held, `folder ${folderId}`);
    }
    assert.equal(await store.countOnlineOwnersOf(idOf(9)), 1);
    // A hostile account sending members of ever new folders never holds more than two.
    for (let i = 0; i < 20; i++) {
      await store.addFolderMembers("h00", idOf(2000 + i), [idOf(3000 + i)], small);
    }
    await store.publish(folder("h00", "late", idOf(2000), 1));
    await store.publish(folder("h00", "latest", idOf(2019), 1));
    assert.equal(await store.countOnlineOwnersOf(idOf(3000)), 0);
    assert.equal(await store.countOnlineOwnersOf(idOf(3019)), 1);
  },
);

contract(
  "past the account's limit, members of folders never published are forgotten, not the batch refused",
  async (store) => {
    await onlineAccounts(store, 1);
    const ids = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => idOf(from + i));
    const tight = limits({ perFolder: 4, perAccount: 12, pendingFolders: 4 });
    // Published: 4 members. Then two publishes of a changed folder cut short after their
    // members (Ctrl-C): 4 more each, which name nobody.
    await store.addFolderMembers("h00", HASH_A, ids(0, 4), tight);
    await store.publish(folder("h00", "big", HASH_A, 4));
    await store.addFolderMembers("h00", idOf(1001), ids(10, 4), tight);
    await store.addFolderMembers("h00", idOf(1002), ids(20, 3), tight);
    // The third attempt (4 + 4 + 3 + 4 = 15 members) fits once the oldest cut-short folder,
    // 1001, is forgotten.
    await store.addFolderMembers("h00", idOf(1003), ids(30, 4), tight);
    for (const [folderId, member, held] of [[1001, 10, 0], [1002, 20, 1], [1003, 30, 1]]) {
      await store.publish(folder("h00", `f${folderId}`, idOf(folderId), 4));
      assert.equal(await store.countOnlineOwnersOf(idOf(member)), held, `folder ${folderId}`);
    }
    // Published folders are never forgotten for room: past the limit, the batch is refused.
    await assert.rejects(
      store.addFolderMembers("h00", idOf(1004), ids(40, 2), tight),
      shoalError("LIMIT_EXCEEDED", /at most 12 files in its folders/),
    );
    assert.equal(await store.countOnlineOwnersOf(idOf(0)), 1);
  },
);

contract(
  "members sent at once through two processes are counted once each",
  async (store, another) => {
    await onlineAccounts(store, 1);
    const second = await another();
    const batch = (from: number) => Array.from({ length: 50 }, (_, i) => idOf(from + i));
    // Four batches, two through each process, overlapping: 0..49, 25..74, 50..99, 75..124.
    await Promise.all([
      store.addFolderMembers("h00", HASH_B, batch(0)),
      second.addFolderMembers("h00", HASH_B, batch(25)),
      store.addFolderMembers("h00", HASH_B, batch(50)),
      second.addFolderMembers("h00", HASH_B, batch(75)),
    ]);
    // 125 distinct ids: at most 125 counted (a known one passes a limit of 125)...
    await store.addFolderMembers(
      "h00",
      HASH_B,
      [idOf(0)],
      limits({ perFolder: 125, perAccount: 125 }),
    );
    // ...and at least 125 (a publication of 124 files is refused).
    await assert.rejects(
      store.publish(folder("h00", "course", HASH_B, 124)),
      shoalError("LIMIT_EXCEEDED", /125 member files/),
    );
  },
);

contract(
  "each process's activity per minute is summed, replaced when recorded again, and forgotten",
  async (store, another) => {
    const minute = (time: string, counts: Partial<MinuteActivity> = {}): MinuteActivity => ({
      time,
      publishes: 0,
      logins: 0,
      loginsFailed: 0,
      tickets: 0,
      ...counts,
    });
    const [t1, t2] = ["2026-11-30T08:01:00.000Z", "2026-11-30T08:02:00.000Z"];
    const second = await another();
    await store.recordActivity([minute(t1, { publishes: 1, tickets: 2 })], t1);
    await second.recordActivity([minute(t1, { logins: 2 }), minute(t2, { loginsFailed: 1 })], t1);
    // Recorded again by the first process: its own count for t1 is replaced, not added to.
    await store.recordActivity([minute(t1, { publishes: 3, tickets: 2 })], t1);
    assert.deepEqual(await store.activitySince(t1), [
      minute(t1, { publishes: 3, logins: 2, tickets: 2 }),
      minute(t2, { loginsFailed: 1 }),
    ]);
    assert.deepEqual(await second.activitySince(t2), [minute(t2, { loginsFailed: 1 })]);
    await store.recordActivity([], t2);
    assert.deepEqual(await second.activitySince(t1), [minute(t2, { loginsFailed: 1 })]);
  },
);

contract(
  "onlineOwnersOf past its limit names a random sample: repeated calls name every owner",
  async (store) => {
    const users = await onlineAccounts(store, 10);
    for (const user of users) await store.publish(file(user, "a.txt"));
    // 3 of 10 a call: each is missed by 200 calls with probability 0.7^200, about 1e-31.
    await callsToNameAll(users, 200, async () => {
      const owners = await store.onlineOwnersOf(HASH_A, { limit: 3 });
      assert.equal(owners.length, 3);
      return owners.map((peer) => peer.username);
    });
  },
);

Deno.test("TrackerStore on PostgreSQL - every contract test, on a throwaway cluster", async (t) => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;
  const url = await pg.newDatabase();
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (const [name, work] of CONTRACT) {
      await t.step(name, async () => {
        const opened: TrackerStore[] = [];
        try {
          const store = await PostgresTrackerStore.open(url, { maxConnections: 2 });
          opened.push(store);
          await admin.unsafe(
            "TRUNCATE users, sessions, peers, files, tracker_processes, activity CASCADE",
          );
          await work(store, async () => {
            const next = await PostgresTrackerStore.open(url, { maxConnections: 2 });
            opened.push(next);
            return next;
          });
        } finally {
          for (const store of opened) await store.close();
        }
      });
    }
  } finally {
    await admin.end();
  }
});
