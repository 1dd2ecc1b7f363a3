/**
 * One fetch of a folder at a time from a home: the lock is taken once, a
 * second taker (or a check) is refused with BUSY naming the holder, and it
 * is free again once released.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FetchLock } from "../../lib/peer/fetch_lock.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { tempDir } from "../helpers/processes.ts";

const CONTENT = "ab".repeat(32);

Deno.test("FetchLock - a second fetch of the same folder is refused while the first holds it; free once released", async () => {
  await using dir = await tempDir();
  using home = PeerHome.open(join(dir.path, "home"));
  const busy = (error: Error & { code?: string }) =>
    error.code === "BUSY" &&
    new RegExp(`"course" is being fetched from this home already \\(pid ${Deno.pid}\\)`)
      .test(error.message);
  {
    using _held = FetchLock.acquire(home, CONTENT, "course");
    assert.throws(() => FetchLock.acquire(home, CONTENT, "course"), busy);
    assert.throws(() => FetchLock.check(home, CONTENT, "course"), busy);
    // Another folder is another lock.
    FetchLock.acquire(home, "cd".repeat(32), "other").release();
  }
  FetchLock.check(home, CONTENT, "course");
  FetchLock.acquire(home, CONTENT, "course").release();
});

Deno.test("FetchLock - looking at the lock (as downloads and cancel do) never makes a fetch starting at that moment fail", async () => {
  await using dir = await tempDir();
  using home = PeerHome.open(join(dir.path, "home"));
  // The lock file exists (an earlier fetch), so a look has something to look at.
  FetchLock.acquire(home, CONTENT, "course").release();
  const worker = new Worker(new URL("./_fetch_lock_looker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const looked = new Promise<{ held: number }>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    });
    worker.postMessage({ home: home.dir, contentId: CONTENT, rounds: 20_000 });
    // Fetches start and end while the worker looks, in another thread: none may be refused.
    let refused = 0;
    let done = false;
    looked.finally(() => done = true);
    for (let i = 0; i < 200_000 && !done; i++) {
      try {
        FetchLock.acquire(home, CONTENT, "course").release();
      } catch (error) {
        if ((error as { code?: string }).code !== "BUSY") throw error;
        refused++;
      }
      if (i % 1000 === 999) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await looked;
    assert.equal(refused, 0, `${refused} fetches were refused BUSY by a mere look`);
  } finally {
    worker.terminate();
  }
});

Deno.test("FetchLock - isHeld sees a holder in this process and in another, and nothing once released", async () => {
  await using dir = await tempDir();
  using home = PeerHome.open(join(dir.path, "home"));
  assert.equal(FetchLock.isHeld(home, CONTENT), false);
  {
    using _held = FetchLock.acquire(home, CONTENT, "course");
    assert.equal(FetchLock.isHeld(home, CONTENT), true);
    assert.equal(FetchLock.isHeld(home, "cd".repeat(32)), false);
  }
  assert.equal(FetchLock.isHeld(home, CONTENT), false);
  // Another process holds it until it is told to stop.
  const path = join(home.dir, "locks", `fetch-${CONTENT}.lock`);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const f = Deno.openSync(${JSON.stringify(path)}, { read: true, write: true });
       f.lockSync(true); console.log("held"); await Deno.stdin.readable.getReader().read();`,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assert.match((await reader.read()).value ?? "", /held/);
  assert.equal(FetchLock.isHeld(home, CONTENT), true);
  await child.stdin.close();
  await child.status;
  await reader.cancel();
  assert.equal(FetchLock.isHeld(home, CONTENT), false);
});
