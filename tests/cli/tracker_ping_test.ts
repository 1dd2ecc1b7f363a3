/** `tracker.ts ping` (run in this process): its exit status says whether the peer process answered. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { tempDir } from "../helpers/processes.ts";
import { runTrackerCli as runTracker } from "../helpers/cli.ts";

Deno.test("tracker.ts ping - exits 1 when the peer does not answer, with the report printed", async () => {
  await using dir = await tempDir("shoal-ping-");
  const db = join(dir.path, "tracker.db");
  // A loopback port that was just free: nothing answers there.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  {
    using store = SqliteTrackerStore.open(db);
    await store.createUser("gone", "not a real hash");
    await store.setPeerOnline("gone", "127.0.0.1", port, null);
  }
  const plain = await runTracker(["ping", "gone", "--db", db]);
  assert.equal(plain.code, 1, plain.stderr);
  assert.match(plain.stdout, /^peer gone at 127\.0\.0\.1:\d+/);
  assert.match(plain.stdout, /app ping: no answer/);
  assert.equal(plain.stderr, "", "the report says it all: no second message");

  const json = await runTracker(["ping", "gone", "--db", db, "--json"]);
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stdout).probe.answered, false);
});
