/** Guessing a password through `peer.ts login`, in this process against an in-process tracker. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer } from "../helpers/cli.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";

Deno.test("five wrong passwords make the tracker back off, even for the right one", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  const password = "the-right-password";
  await alice.ok(["register", "alice", "--password-stdin"], { stdin: `${password}\n` });
  for (let attempt = 1; attempt <= 5; attempt++) {
    const wrong = await alice.run(["login", "alice", "--password-stdin"], {
      stdin: "a-wrong-password\n",
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong username or password/);
  }
  // Right after the fifth, within the first wait (a second): no process to start, so no race.
  const right = await alice.run(["login", "alice", "--password-stdin"], { stdin: `${password}\n` });
  assert.equal(right.code, 1, right.stderr);
  assert.match(right.stderr, /too many failed logins .* try again in \d+ s/);
});
