/**
 * What a newcomer hits in the first hour, end to end: a FIFO to publish,
 * which would hang a process that opened it (the rest is in tests/cli/newcomer_test.ts).
 * The publish is a child, killed if it hangs; the tracker and the sign-up run in process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CliPeer } from "../helpers/cli.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, TestPeer } from "../helpers/processes.ts";

Deno.test("newcomer - publishing a FIFO is refused at once", async (t) => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const alice = new TestPeer(join(dir.path, "alice"), tracker.address);
  await new CliPeer(alice.home, tracker.address).signUp("alice");
  await t.step("publishing a FIFO is refused at once, in one line", async () => {
    const fifo = join(dir.path, "pipe");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    // Opening a FIFO would wait for a writer forever: the refusal must come before.
    const child = alice.spawn(["publish", fifo]);
    const timer = setTimeout(() => child.kill(), 30_000);
    const output = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.notEqual(output.signal, "SIGTERM", "publish of a FIFO hung (killed after 30 s)");
    assert.equal(output.code, 1);
    assert.equal(stderr.trim(), `error: not a regular file: ${fifo} is a named pipe (FIFO)`);
  });
});
