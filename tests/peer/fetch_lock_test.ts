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
