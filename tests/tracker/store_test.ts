import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type FileRecord, SqliteTrackerStore } from "../../lib/tracker/store.ts";
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

/** Runs `work` against a store on a fresh SQLite file, closed and removed afterwards. */
function withStore(work: (store: SqliteTrackerStore, path: string) => void): Promise<void> {
  return inTempDir((dir) => {
    const path = `${dir}/tracker.db`;
    using store = SqliteTrackerStore.open(path);
    work(store, path);
  });
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

Deno.test("SqliteTrackerStore - a created user can be read back", () =>
  withStore((store) => {
    const before = Date.now();
    store.createUser("alice", "hash-of-alice");
    const user = store.getUser("alice");
    assert.ok(user);
    assert.equal(user.username, "alice");
    assert.equal(user.passwordHash, "hash-of-alice");
    assert.ok(Date.parse(user.createdAt) >= before - 1000, user.createdAt);
    assert.equal(store.getUser("bob"), null);
  }));

Deno.test("SqliteTrackerStore - usernames are looked up case-insensitively, spelled as registered", () =>
  withStore((store) => {
    store.createUser("Alice", "h");
    assert.equal(store.getUser("alice")?.username, "Alice");
    assert.equal(store.getUser("ALICE")?.username, "Alice");
  }));

Deno.test("SqliteTrackerStore - a duplicate username throws USERNAME_TAKEN, whatever its case", () =>
  withStore((store) => {
    store.createUser("Alice", "first");
    assert.throws(() => store.createUser("Alice", "second"), shoalError("USERNAME_TAKEN"));
    assert.throws(() => store.createUser("alice", "second"), shoalError("USERNAME_TAKEN"));
    assert.equal(store.getUser("alice")?.passwordHash, "first");
  }));

Deno.test("SqliteTrackerStore - sessions are created, looked up and deleted", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.createUser("bob", "h");
    store.createSession("token-hash-1", "alice");
    store.createSession("token-hash-2", "alice");
    store.createSession("token-hash-3", "bob");
    assert.equal(store.sessionUser("token-hash-1"), "alice");
    assert.equal(store.sessionUser("token-hash-3"), "bob");
    assert.equal(store.sessionUser("unknown"), null);

    store.deleteSession("token-hash-1");
    assert.equal(store.sessionUser("token-hash-1"), null);
    assert.equal(store.sessionUser("token-hash-2"), "alice");
    store.deleteSession("token-hash-1");
  }));

Deno.test("SqliteTrackerStore - sessions keep when they were made and last used, and where from", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.createUser("bob", "h");
    store.createSession("hash-old", "alice", "192.0.2.1", "2026-01-01T00:00:00.000Z");
    store.createSession("hash-new", "alice", null, "2026-02-01T00:00:00.000Z");
    store.createSession("hash-bob", "bob", "192.0.2.2", "2026-01-15T00:00:00.000Z");
    store.touchSession("hash-old", "2026-03-01T00:00:00.000Z");
    assert.deepEqual(store.sessionsOf("alice"), [
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
    assert.equal(store.getSession("hash-bob")?.address, "192.0.2.2");
    assert.equal(store.getSession("unknown"), null);
  }));

Deno.test("SqliteTrackerStore - deleteIdleSessions deletes those last used before the cutoff", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.createSession("hash-idle", "alice", null, "2026-01-01T00:00:00.000Z");
    store.createSession("hash-used", "alice", null, "2026-01-01T00:00:00.000Z");
    store.touchSession("hash-used", "2026-02-10T00:00:00.000Z");
    assert.equal(store.deleteIdleSessions("2026-02-01T00:00:00.000Z"), 1);
    assert.equal(store.sessionUser("hash-idle"), null);
    assert.equal(store.sessionUser("hash-used"), "alice");
  }));

Deno.test("SqliteTrackerStore - a session for an unknown user is refused", () =>
  withStore((store) => {
    assert.throws(() => store.createSession("token-hash", "ghost"));
    assert.equal(store.sessionUser("token-hash"), null);
  }));

Deno.test("SqliteTrackerStore - publish returns replaced=false first, then true, and keeps the latest", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    assert.equal(store.publish(file("alice", "song.mp3")), false);
    assert.equal(
      store.publish(file("alice", "song.mp3", { size: 2000, contentId: HASH_B })),
      true,
    );
    const files = store.filesOf("alice");
    assert.equal(files.length, 1);
    assert.equal(files[0].size, 2000);
    assert.equal(files[0].contentId, HASH_B);
    assert.equal(files[0].type, "mp3");
  }));

Deno.test("SqliteTrackerStore - the same name from two owners is two publications", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.createUser("bob", "h");
    assert.equal(store.publish(file("alice", "notes.txt")), false);
    assert.equal(store.publish(file("bob", "notes.txt")), false);
    assert.deepEqual(store.filesNamed("notes.txt").map((f) => f.owner), ["alice", "bob"]);
  }));

Deno.test("SqliteTrackerStore - unpublish returns whether there was such a publication", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.createUser("bob", "h");
    store.publish(file("alice", "a.txt"));
    assert.equal(store.unpublish("bob", "a.txt"), false);
    assert.equal(store.unpublish("alice", "a.txt"), true);
    assert.equal(store.unpublish("alice", "a.txt"), false);
    assert.deepEqual(store.filesOf("alice"), []);
  }));

Deno.test("SqliteTrackerStore - a listing is offline with no address before its owner announces", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.publish(file("alice", "a.txt"));
    assert.deepEqual(store.filesNamed("a.txt"), [{
      ...file("alice", "a.txt"),
      online: false,
      host: null,
      port: null,
      certificate: null,
    }]);
  }));

Deno.test("SqliteTrackerStore - listings carry online status and address after setPeerOnline", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.publish(file("alice", "report.pdf"));
    store.setPeerOnline("alice", "192.168.1.20", 7000, CERTIFICATE);

    const expected = {
      ...file("alice", "report.pdf"),
      online: true,
      host: "192.168.1.20",
      port: 7000,
      certificate: CERTIFICATE,
    };
    assert.deepEqual(store.filesNamed("report.pdf"), [expected]);
    assert.deepEqual(store.searchFiles("port"), [expected]);
    assert.deepEqual(store.filesOf("alice"), [expected]);
    assert.deepEqual(store.allFiles(), [expected]);

    store.setPeerOnline("alice", "192.168.1.21", 7001, null);
    assert.equal(store.filesNamed("report.pdf")[0].host, "192.168.1.21");
    assert.equal(store.filesNamed("report.pdf")[0].port, 7001);
  }));

Deno.test("SqliteTrackerStore - listings lose online status after setPeerOffline", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.publish(file("alice", "report.pdf"));
    store.setPeerOnline("alice", "10.0.0.5", 7000, null);
    store.setPeerOffline("alice");

    assert.equal(store.filesNamed("report.pdf")[0].online, false);
    assert.equal(store.searchFiles("report")[0].online, false);
    const peer = store.getPeer("alice");
    assert.ok(peer);
    assert.equal(peer.online, false);
    assert.equal(peer.host, "10.0.0.5");
    assert.equal(peer.port, 7000);
  }));

Deno.test("SqliteTrackerStore - markAllPeersOffline takes every peer and listing offline", () =>
  withStore((store) => {
    for (const name of ["alice", "bob"]) {
      store.createUser(name, "h");
      store.publish(file(name, `${name}.txt`));
    }
    store.setPeerOnline("alice", "10.0.0.1", 7000, null);
    store.setPeerOnline("bob", "10.0.0.2", 7000, null);
    assert.deepEqual(store.allFiles().map((f) => f.online), [true, true]);

    store.markAllPeersOffline();
    assert.deepEqual(store.allFiles().map((f) => f.online), [false, false]);
    assert.deepEqual(store.searchFiles(".txt").map((f) => f.online), [false, false]);
    assert.deepEqual(store.listPeers().map((p) => [p.username, p.online]), [
      ["alice", false],
      ["bob", false],
    ]);
  }));

Deno.test("SqliteTrackerStore - filesNamed lists online owners first", () =>
  withStore((store) => {
    for (const name of ["alice", "bob", "carol"]) {
      store.createUser(name, "h");
      store.publish(file(name, "shared.iso"));
    }
    store.setPeerOnline("carol", "10.0.0.3", 7000, null);
    assert.deepEqual(store.filesNamed("shared.iso").map((f) => [f.owner, f.online]), [
      ["carol", true],
      ["alice", false],
      ["bob", false],
    ]);
    assert.deepEqual(store.filesNamed("missing.iso"), []);
  }));

Deno.test("SqliteTrackerStore - peersAt finds peers by host, and by host and port", () =>
  withStore((store) => {
    for (const name of ["alice", "bob", "carol"]) store.createUser(name, "h");
    store.setPeerOnline("alice", "10.0.0.1", 7000, null);
    store.setPeerOnline("bob", "10.0.0.1", 7001, null);
    store.setPeerOnline("carol", "10.0.0.2", 7000, null);
    assert.deepEqual(store.peersAt("10.0.0.1").map((p) => p.username), ["alice", "bob"]);
    assert.deepEqual(store.peersAt("10.0.0.1", 7001).map((p) => p.username), ["bob"]);
    assert.deepEqual(store.peersAt("10.0.0.9"), []);
  }));

Deno.test("SqliteTrackerStore - searchFiles matches a substring, ignoring ASCII case", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    for (const name of ["Annual Report.pdf", "report-2024.xlsx", "photo.jpg"]) {
      store.publish(file("alice", name));
    }
    assert.deepEqual(names(store.searchFiles("REPORT")), ["Annual Report.pdf", "report-2024.xlsx"]);
    assert.deepEqual(names(store.searchFiles("")), [
      "Annual Report.pdf",
      "photo.jpg",
      "report-2024.xlsx",
    ]);
    assert.deepEqual(store.searchFiles("nothing like it"), []);
  }));

Deno.test("SqliteTrackerStore - searchFiles treats '%', '_' and '\\' as literal characters", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    for (const name of ["100%_done.txt", "100 done.txt", "a_b.txt", "axb.txt", "back\\slash"]) {
      store.publish(file("alice", name));
    }
    assert.deepEqual(names(store.searchFiles("%")), ["100%_done.txt"]);
    assert.deepEqual(names(store.searchFiles("_")), ["100%_done.txt", "a_b.txt"]);
    assert.deepEqual(names(store.searchFiles("a_b")), ["a_b.txt"]);
    assert.deepEqual(names(store.searchFiles("100%")), ["100%_done.txt"]);
    assert.deepEqual(names(store.searchFiles("\\")), ["back\\slash"]);
  }));

Deno.test("SqliteTrackerStore - deleteUser removes the user's sessions, peer and files only", () =>
  withStore((store) => {
    for (const name of ["alice", "bob"]) {
      store.createUser(name, "h");
      store.createSession(`session-${name}`, name);
      store.setPeerOnline(name, "10.0.0.1", name === "alice" ? 7000 : 7001, null);
      store.publish(file(name, "shared.txt"));
      store.publish(file(name, `${name}.txt`));
    }

    store.deleteUser("alice");

    assert.equal(store.getUser("alice"), null);
    assert.equal(store.sessionUser("session-alice"), null);
    assert.equal(store.getPeer("alice"), null);
    assert.deepEqual(store.filesOf("alice"), []);
    assert.deepEqual(store.allFiles().map((f) => [f.owner, f.name]), [
      ["bob", "bob.txt"],
      ["bob", "shared.txt"],
    ]);
    assert.equal(store.sessionUser("session-bob"), "bob");
    assert.equal(store.getPeer("bob")?.port, 7001);

    // The name is free again.
    store.createUser("alice", "new");
    assert.deepEqual(store.filesOf("alice"), []);
  }));

Deno.test("SqliteTrackerStore - data survives close and reopen", () =>
  inTempDir((dir) => {
    const path = `${dir}/tracker.db`;
    {
      using store = SqliteTrackerStore.open(path);
      store.createUser("alice", "hash-a");
      store.createSession("session-a", "alice");
      store.setPeerOnline("alice", "10.0.0.1", 7000, null);
      store.publish(file("alice", "keep.txt", { contentId: HASH_B, size: 42 }));
    }
    {
      using store = SqliteTrackerStore.open(path);
      assert.equal(store.getUser("alice")?.passwordHash, "hash-a");
      assert.equal(store.sessionUser("session-a"), "alice");
      assert.equal(store.getPeer("alice")?.port, 7000);
      assert.deepEqual(store.filesOf("alice"), [{
        ...file("alice", "keep.txt", { contentId: HASH_B, size: 42 }),
        online: true,
        host: "10.0.0.1",
        port: 7000,
        certificate: null,
      }]);
      assert.throws(() => store.createUser("ALICE", "x"), shoalError("USERNAME_TAKEN"));
    }
  }));

Deno.test("SqliteTrackerStore - reopening an existing database runs no migration twice", () =>
  inTempDir((dir) => {
    const path = `${dir}/tracker.db`;
    SqliteTrackerStore.open(path).close();
    {
      using first = SqliteTrackerStore.open(path);
      // A second store on the same file while the first is open, as an admin command does.
      using second = SqliteTrackerStore.open(path);
      first.createUser("alice", "h");
      assert.equal(second.getUser("alice")?.username, "alice");
    }
    const db = new DatabaseSync(path);
    try {
      const { user_version } = db.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(user_version, 4);
      const tables = db.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
      ).all() as { name: string }[];
      assert.deepEqual(tables.map((t) => t.name), [
        "files",
        "folder_members",
        "peers",
        "sessions",
        "users",
      ]);
    } finally {
      db.close();
    }
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
  inTempDir((dir) => {
    const store = SqliteTrackerStore.open(`${dir}/tracker.db`);
    store.close();
    store.close();
  }));

Deno.test("SqliteTrackerStore - restorePeer puts a peer back online as it serves, and writes nothing when the store already has it so", () =>
  withStore((store) => {
    store.createUser("alice", "h");
    store.setPeerOnline("alice", "192.168.1.20", 7000, CERTIFICATE);
    const seen = store.getPeer("alice")!.since;
    store.restorePeer("alice", "192.168.1.20", 7000, CERTIFICATE);
    assert.equal(store.getPeer("alice")!.since, seen, "nothing written");

    store.markAllPeersOffline();
    store.restorePeer("alice", "192.168.1.20", 7000, CERTIFICATE);
    const restored = store.getPeer("alice")!;
    assert.equal(restored.online, true);
    assert.deepEqual([restored.host, restored.port, restored.certificate], [
      "192.168.1.20",
      7000,
      CERTIFICATE,
    ]);

    store.createUser("bob", "h");
    store.restorePeer("bob", "192.168.1.30", 7001, null);
    assert.equal(store.getPeer("bob")?.online, true);
  }));
