/**
 * `peer.ts sessions`: a user lists their sessions and ends one left on
 * another machine; the peer program runs in this process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer } from "../helpers/cli.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";

interface SessionRow {
  id: string;
  created: string;
  lastSeen: string;
  address: string | null;
  current: boolean;
}

Deno.test("peer.ts sessions lists alice's sessions, and one revoked elsewhere is logged out", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  await alice.signUp("alice");
  // Alice's second machine: another home, the same account.
  const laptop = new CliPeer(join(dir.path, "alice-laptop"), tracker.address);
  await laptop.ok(["login", "alice", "--password-stdin"], { stdin: "alice-password\n" });

  const sessions: SessionRow[] = JSON.parse(await alice.ok(["sessions", "--json"]));
  assert.equal(sessions.length, 2, JSON.stringify(sessions));
  assert.ok(sessions.every((session) => session.address === "127.0.0.1"));
  const [mine] = sessions.filter((session) => session.current);
  const [theirs] = sessions.filter((session) => !session.current);
  assert.ok(mine && theirs, JSON.stringify(sessions));

  const table = await alice.ok(["sessions"]);
  assert.match(table, new RegExp(`${mine.id}.*yes`));
  assert.ok(table.includes(theirs.id), table);

  assert.match(await alice.ok(["sessions", "revoke", theirs.id]), /^revoked the session \w+\n$/);
  const refused = await laptop.run(["sessions"]);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /not logged in/);
  // The hint is the command as run, with the same --home: it logs this home back in.
  assert.match(
    refused.stderr,
    /hint: run `deno run -A \S*peer\.ts .*--home \S+ login <username>` first/,
  );

  const unknown = await alice.run(["sessions", "revoke", theirs.id]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no session .*peer\.ts .*sessions$/m);
  const malformed = await alice.run(["sessions", "revoke", "not-an-id"]);
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr, /^error: "not-an-id" is no session id: one is 16 hex digits$/m);
  assert.match(malformed.stderr, /^hint: `.*peer\.ts .*sessions` lists yours, with their ids$/m);

  const revokedHere = JSON.parse(await alice.ok(["sessions", "revoke", mine.id, "--json"]));
  assert.deepEqual(revokedHere, { id: mine.id, current: true });
  const after = await alice.run(["sessions"]);
  assert.match(after.stderr, /not logged in/);
});
