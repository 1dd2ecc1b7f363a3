import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { runTrackerCli } from "../helpers/cli.ts";
import { tempDir } from "../helpers/processes.ts";

Deno.test("tracker.ts admin grant/token/revoke - the role and API tokens on the database", async () => {
  await using dir = await tempDir("shoal-admin-role-");
  const db = `${dir.path}/tracker.db`;
  {
    using store = SqliteTrackerStore.open(db);
    store.createUser("Alice", "scrypt$x");
  }
  const early = await runTrackerCli(["admin", "token", "alice", "--db", db]);
  assert.notEqual(early.code, 0);
  assert.match(early.stderr, /not an admin/);
  assert.match(early.stderr, /admin grant Alice/);

  const granted = await runTrackerCli(["admin", "grant", "alice", "--db", db]);
  assert.equal(granted.code, 0, granted.stderr);
  assert.match(granted.stdout, /Alice is an admin/);

  const issued = await runTrackerCli(["admin", "token", "alice", "--db", db]);
  assert.equal(issued.code, 0, issued.stderr);
  const token = issued.stdout.trim();
  assert.match(token, /^shoal_api_[\w-]{43}$/);
  {
    using store = SqliteTrackerStore.open(db);
    const hash = createHash("sha256").update(token).digest("hex");
    assert.equal(await store.apiTokenUser(hash), "Alice");
    assert.equal(await store.isAdmin("alice"), true);
  }
  // Only the hash is kept: the token itself is nowhere in the database file.
  const bytes = new TextDecoder("latin1").decode(await Deno.readFile(db));
  assert.equal(bytes.includes(token), false);

  const revoked = await runTrackerCli(["admin", "revoke", "alice", "--db", db]);
  assert.equal(revoked.code, 0, revoked.stderr);
  {
    using store = SqliteTrackerStore.open(db);
    assert.equal(await store.isAdmin("alice"), false);
    assert.equal(await store.apiTokenUser(createHash("sha256").update(token).digest("hex")), null);
  }

  const nobody = await runTrackerCli(["admin", "grant", "zed", "--db", db]);
  assert.notEqual(nobody.code, 0);
  assert.match(nobody.stderr, /no account named "zed"/);
});
