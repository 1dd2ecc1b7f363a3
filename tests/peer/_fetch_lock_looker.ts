/**
 * A worker for fetch_lock_test.ts: looks at a fetch lock (as `downloads`
 * and `cancel` do) `rounds` times, as fast as it can, then says it is done.
 */
/// <reference lib="deno.worker" />
import { FetchLock } from "../../lib/peer/fetch_lock.ts";
import { PeerHome } from "../../lib/peer/home.ts";

self.onmessage = (event: MessageEvent<{ home: string; contentId: string; rounds: number }>) => {
  const { home: dir, contentId, rounds } = event.data;
  using home = PeerHome.open(dir);
  let held = 0;
  for (let i = 0; i < rounds; i++) if (FetchLock.isHeld(home, contentId)) held++;
  self.postMessage({ held });
};
