/**
 * Pieces of the end-to-end tests that run one tracker as two processes: the
 * identity they share, and a peer's move from a killed one to the other.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Daemon, type RunningTracker, runTrackerCommand } from "./processes.ts";

/**
 * Runs `tracker.ts identity init --out DIR/identity`, asserting it succeeds;
 * returns the identity's path (for `--identity`) and what the command printed.
 */
export async function initTrackerIdentity(dir: string): Promise<{ path: string; stdout: string }> {
  const path = join(dir, "identity");
  const init = await runTrackerCommand(["identity", "init", "--out", path]);
  assert.equal(init.code, 0, init.stderr);
  return { path, stdout: init.stdout };
}

/**
 * Checks that `serving` (a peer given `--tracker FROM,TO`) is connected at
 * `from`, kills `from` with SIGKILL, and waits for the peer to say it moved
 * to `to`, online as `user`.
 */
export async function killTrackerAndWaitForMove(
  serving: Daemon,
  from: RunningTracker,
  to: RunningTracker,
  user: string,
): Promise<void> {
  assert.ok(
    serving.lines.some((l) => l.includes(`at tracker ${from.address}`)),
    serving.lines.join("\n"),
  );
  await from.daemon.stop("SIGKILL");
  await serving.waitFor(
    new RegExp(
      `^tracker ${RegExp.escape(from.address)} lost; now connected to ${
        RegExp.escape(to.address)
      } \\(online as ${user}`,
    ),
  );
}
