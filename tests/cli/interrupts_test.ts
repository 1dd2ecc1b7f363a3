/**
 * Ctrl-C listeners live as long as the operation they serve: gone when it
 * ends, or, when Ctrl-C ended it, once that has been reported; so a process
 * that runs many commands gathers none.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { listenForInterrupts, releaseInterrupts } from "../../lib/cli/interrupts.ts";
import { reportError } from "../../lib/cli/errors.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { signedUpCliPeers } from "../helpers/cli.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";

/**
 * Counts the signal listeners added and not removed while `run` runs, and
 * calls `onAdded` as each is added. A signal is delivered with `deliver`,
 * which calls the listeners added here for it (after a turn, as the runtime
 * does), never with a real one: `deno test --parallel` runs other test
 * files in this same process, and a real SIGTERM reached their commands too
 * (a fetch in tests/cli/lifecycle_test.ts ended "interrupted").
 */
async function countingListeners(
  run: (deliver: (signal: Deno.Signal) => void) => void | Promise<void>,
  onAdded: (signal: Deno.Signal, deliver: (signal: Deno.Signal) => void) => void = () => {},
): Promise<number> {
  const { addSignalListener, removeSignalListener } = Deno;
  const live = new Map<() => void, Deno.Signal>();
  const deliver = (signal: Deno.Signal) =>
    setTimeout(() => {
      for (const [handler, on] of [...live]) if (on === signal) handler();
    }, 0);
  // Never added to the runtime: only `deliver` calls them.
  Deno.addSignalListener = (signal, handler) => {
    live.set(handler, signal);
    onAdded(signal, deliver);
  };
  Deno.removeSignalListener = (_signal, handler) => {
    live.delete(handler);
  };
  try {
    await run(deliver);
    return live.size;
  } finally {
    Deno.addSignalListener = addSignalListener;
    Deno.removeSignalListener = removeSignalListener;
  }
}

Deno.test("listenForInterrupts - removed when the operation ends; after an interruption, once it is reported", async () => {
  let heard = 0;
  assert.equal(
    await countingListeners(() => {
      const listeners = listenForInterrupts(() => heard++);
      listeners.stop(false);
      listeners.stop(false);
    }),
    0,
  );
  assert.equal(
    await countingListeners(() => {
      for (let i = 0; i < 20; i++) listenForInterrupts(() => heard++).stop(true);
      releaseInterrupts();
    }),
    0,
  );
  let left = 0;
  await countingListeners(async (deliver) => {
    listenForInterrupts(() => heard++).stop(true);
    // The copy of the Ctrl-C that stopped it, arriving while it is reported: heard, not acted on.
    deliver("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 50));
    const log = console.log;
    console.log = () => {};
    try {
      reportError(new ShoalError("CANCELLED", "interrupted"), { json: true });
    } finally {
      console.log = log;
    }
  }).then((count) => left = count);
  assert.equal(left, 0);
  assert.equal(heard, 0);
});

Deno.test("a folder's publish stopped by Ctrl-C (or SIGTERM) in process leaves no signal listener behind", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice] = await signedUpCliPeers(dir.path, tracker.address, "alice");
  const tree = join(dir.path, "tree");
  await Deno.mkdir(tree);
  for (let i = 0; i < 2_000; i++) await Deno.writeTextFile(join(tree, `f${i}.txt`), `file ${i}`);
  let result = { code: -1, stderr: "" };
  const left = await countingListeners(
    async () => {
      result = await alice.run(["publish", tree]);
    },
    // SIGTERM (as Ctrl-C) as soon as the publish listens for it, while it hashes.
    (signal, deliver) => signal === "SIGTERM" && deliver("SIGTERM"),
  );
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /stopped hashing; nothing was published/);
  assert.equal(left, 0, "the publish's listeners are gone");
});

Deno.test("a big file's publish stopped by Ctrl-C (or SIGTERM) while it hashes says nothing was published, as a folder's does", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice] = await signedUpCliPeers(dir.path, tracker.address, "alice");
  // Sparse: a gigabyte to hash, no disk taken.
  const big = join(dir.path, "big.iso");
  using file = await Deno.open(big, { create: true, write: true });
  await file.truncate(1024 ** 3);
  let result = { code: -1, stderr: "" };
  const left = await countingListeners(
    async () => {
      result = await alice.run(["publish", big]);
    },
    (signal, deliver) => signal === "SIGTERM" && deliver("SIGTERM"),
  );
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /^error: stopped hashing; nothing was published$/m);
  assert.equal(left, 0, "the publish's listeners are gone");
  assert.equal(JSON.parse(await alice.ok(["view", "--json"])).length, 0);
});
