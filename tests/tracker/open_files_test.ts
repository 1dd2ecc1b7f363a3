import assert from "node:assert/strict";
import {
  defaultMaxConnections,
  maxConnectionsUnder,
  softOpenFileLimit,
} from "../../lib/tracker/open_files.ts";
import { startTestTracker } from "../helpers/tracker.ts";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

Deno.test("softOpenFileLimit - reads the soft open-file limit of /proc/self/limits", () => {
  assert.equal(softOpenFileLimit(LIMITS), 20_000);
  assert.equal(
    softOpenFileLimit(
      LIMITS.replace("20000                20000", "unlimited            unlimited"),
    ),
    Infinity,
  );
  assert.equal(softOpenFileLimit("Max cpu time unlimited unlimited seconds\n"), null);
});

Deno.test("defaultMaxConnections - keeps descriptors in reserve below this process's own limit", () => {
  const limit = softOpenFileLimit(Deno.readTextFileSync("/proc/self/limits"));
  if (limit === null) return console.log("skipped: no /proc/self/limits here");
  assert.equal(defaultMaxConnections(), maxConnectionsUnder(limit));
});

Deno.test("maxConnectionsUnder - keeps 1,024 descriptors, or a quarter of a lower limit", () => {
  assert.equal(maxConnectionsUnder(20_000), 18_976);
  assert.equal(maxConnectionsUnder(4_096), 3_072);
  // A hard limit of 1,024 (some systems' default): most of it for peers, not 64 connections.
  assert.equal(maxConnectionsUnder(1_024), 768);
  assert.equal(maxConnectionsUnder(64), 64);
  assert.equal(maxConnectionsUnder(Infinity), Infinity);
});

Deno.test("a tracker at its most connections closes the next at accept and still serves those it has", async () => {
  await using running = await startTestTracker({ maxConnections: 2 });
  const alice = await running.login("alice");
  const bob = await running.login("bob");
  await assert.rejects(running.connect());
  assert.ok(running.warnings.some((line) => /2 connections open, the most/.test(line)));
  assert.deepEqual(await alice.call("heartbeat", {}), {});
  assert.deepEqual(await bob.call("heartbeat", {}), {});
});
