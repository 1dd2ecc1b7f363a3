/** Databases and homes hold secrets: they are private to their owner, and tightened if not. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PeerHome } from "../../lib/peer/home.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";
import type { ShoalError } from "../../lib/protocol/errors.ts";

const POSIX = Deno.build.os !== "windows";

const modeOf = (path: string) => Deno.statSync(path).mode! & 0o777;

/** Runs `work` in a fresh temp directory, removed afterwards. */
async function inTempDir(work: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-private-test-" });
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "a new tracker database and its WAL files are readable by their owner only",
  ignore: !POSIX,
  fn: () =>
    inTempDir(async (dir) => {
      const path = join(dir, "tracker.db");
      const warnings: string[] = [];
      using store = SqliteTrackerStore.open(path, { warn: (line) => warnings.push(line) });
      await store.createUser("alice", "scrypt$hash");
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.equal(modeOf(file), 0o600, `${file} is ${modeOf(file).toString(8)}`);
      }
      assert.deepEqual(warnings, [], "nothing was loosened, so nothing to say");
    }),
});

Deno.test({
  name: "an existing 0644 tracker database is tightened to 0600 with one warning, once",
  ignore: !POSIX,
  fn: () =>
    inTempDir((dir) => {
      const path = join(dir, "tracker.db");
      SqliteTrackerStore.open(path).close();
      Deno.chmodSync(path, 0o644);
      const warnings: string[] = [];
      const warn = (line: string) => warnings.push(line);
      SqliteTrackerStore.open(path, { warn }).close();
      assert.equal(modeOf(path), 0o600);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /^warning: other users could read the tracker's password hashes/);
      assert.ok(warnings[0].includes(`${path} from 0644 to 0600`), warnings[0]);
      assert.ok(!warnings[0].includes("\n"));
      SqliteTrackerStore.open(path, { warn }).close();
      assert.equal(warnings.length, 1, "the second open has nothing to change");
    }),
});

Deno.test({
  name: "a new peer home is 0700 and its database 0600",
  ignore: !POSIX,
  fn: () =>
    inTempDir((dir) => {
      const home = join(dir, "nested", "home");
      const warnings: string[] = [];
      using opened = PeerHome.open(home, { warn: (line) => warnings.push(line) });
      opened.saveSession({ username: "alice", token: "t".repeat(43) });
      assert.equal(modeOf(home), 0o700);
      assert.equal(modeOf(join(home, "peer.db")), 0o600);
      assert.deepEqual(warnings, []);
    }),
});

Deno.test({
  name: "an existing 0755 home with a 0644 database is tightened, saying what changed",
  ignore: !POSIX,
  fn: () =>
    inTempDir((dir) => {
      const home = join(dir, "home");
      PeerHome.open(home).close();
      Deno.chmodSync(home, 0o755);
      Deno.chmodSync(join(home, "peer.db"), 0o644);
      const warnings: string[] = [];
      const warn = (line: string) => warnings.push(line);
      PeerHome.open(home, { warn }).close();
      assert.equal(modeOf(home), 0o700);
      assert.equal(modeOf(join(home, "peer.db")), 0o600);
      assert.equal(warnings.length, 2, warnings.join("\n"));
      assert.match(
        warnings[0],
        new RegExp(`peer home: changed the permissions of .*home from 0755 to 0700$`),
      );
      assert.match(warnings[1], /could read your session token: .*peer\.db from 0644 to 0600$/);
      PeerHome.open(home, { warn }).close();
      assert.equal(warnings.length, 2, "the second open has nothing to change");
    }),
});

Deno.test({
  name: "a WAL file left readable by others is tightened when another process opens the database",
  ignore: !POSIX,
  fn: () =>
    inTempDir(async (dir) => {
      const path = join(dir, "tracker.db");
      using running = SqliteTrackerStore.open(path);
      await running.createUser("alice", "scrypt$hash");
      Deno.chmodSync(`${path}-wal`, 0o644);
      const warnings: string[] = [];
      using admin = SqliteTrackerStore.open(path, { warn: (line) => warnings.push(line) });
      assert.equal((await admin.getUser("alice"))?.username, "alice");
      assert.equal(modeOf(`${path}-wal`), 0o600);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.ok(warnings[0].endsWith(`${path}-wal from 0644 to 0600`), warnings[0]);
    }),
});

Deno.test({
  name:
    "the tracker's TLS and ticket keys are created 0600, and tightened with a warning if copied 0644",
  ignore: !POSIX,
  fn: () =>
    inTempDir(async (dir) => {
      const warnings: string[] = [];
      const warn = (line: string) => warnings.push(line);
      const first = await loadOrCreateIdentity(dir, "tls-", { warn });
      const ticketKey = await loadOrCreateTicketKey(dir, "ticket-key.pem", { warn });
      const keys = [join(dir, "tls-key.pem"), join(dir, "ticket-key.pem")];
      for (const key of keys) assert.equal(modeOf(key), 0o600, `${key} is new`);
      assert.deepEqual(warnings, []);

      for (const key of keys) Deno.chmodSync(key, 0o644);
      const again = await loadOrCreateIdentity(dir, "tls-", { warn });
      const ticketKeyAgain = await loadOrCreateTicketKey(dir, "ticket-key.pem", { warn });
      assert.equal(again.key, first.key, "the same TLS key, only tightened");
      assert.equal(ticketKeyAgain.publicKeyBase64, ticketKey.publicKeyBase64);
      for (const key of keys) assert.equal(modeOf(key), 0o600, `${key} was tightened`);
      assert.equal(warnings.length, 2, warnings.join("\n"));
      assert.match(
        warnings[0],
        /other users could read the TLS key: .*tls-key\.pem from 0644 to 0600/,
      );
      assert.match(warnings[1], /other users could read the ticket key: .*from 0644 to 0600/);
    }),
});

Deno.test({
  name: "a key is never written through a link planted where it will be created",
  ignore: !POSIX,
  fn: () =>
    inTempDir(async (dir) => {
      const stolen = join(dir, "attacker-readable.pem");
      Deno.symlinkSync(stolen, join(dir, "ticket-key.pem"));
      await assert.rejects(
        loadOrCreateTicketKey(dir, "ticket-key.pem", { warn: () => {} }),
        (error: ShoalError) => error.code === "IO",
      );
      assert.throws(() => Deno.statSync(stolen), Deno.errors.NotFound, "nothing written there");
    }),
});
