/**
 * A hashing worker (started by lib/peer/hash_pool.ts): hashes batches of
 * small files with synchronous calls, on its own core, and answers each
 * batch with one message. It has the permissions of the process that
 * started it (a worker inherits them).
 */
/// <reference lib="deno.worker" />
import { toShoalError } from "../protocol/errors.ts";
import { hashSmallFile } from "./small_file_hash.ts";
import { decodeBatch, encodeReply, type HashBatch, type HashOutcome } from "./hash_pool.ts";

self.onmessage = (event: MessageEvent<HashBatch>) => {
  const jobs = decodeBatch(event.data);
  const outcomes: HashOutcome[] = [];
  for (const { path, seen, before } of jobs) {
    try {
      outcomes.push(hashSmallFile(path, seen, before));
    } catch (error) {
      // The batch stops at its first failure: the publish fails with it.
      const { code, message, hint } = toShoalError(error);
      outcomes.push({ error: { code, message, hint } });
      break;
    }
  }
  self.postMessage(encodeReply(event.data.id, jobs, outcomes));
};
