/**
 * The worker of lib/peer/batch_placer.ts: verifies the small files of a
 * `pieces` batch and puts each in place with synchronous calls, on its own
 * core, and answers the batch with one message that gives its buffer back.
 * It has the permissions of the process that started it (a worker inherits
 * them).
 */
/// <reference lib="deno.worker" />
import { type PlaceBatch, placeBatchSync } from "./batch_placer.ts";

self.onmessage = (event: MessageEvent<PlaceBatch | "ready?">) => {
  const batch = event.data;
  if (batch === "ready?") return self.postMessage("ready");
  const placed = placeBatchSync(new Uint8Array(batch.buffer), batch.jobs);
  self.postMessage({ id: batch.id, ...placed, buffer: batch.buffer }, [batch.buffer]);
};
