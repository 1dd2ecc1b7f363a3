/**
 * The worker of bench/folder_hash_floor.ts: reads each file of a batch
 * whole, checks it with an `lstat`, and hashes it and its one-piece
 * manifest, as a publish's hashing worker does (lib/peer/hash_worker.ts),
 * with nothing else.
 */
/// <reference lib="deno.worker" />
import { closeSync, constants, openSync, readSync } from "node:fs";
import { contentIdOf, sha256Hex } from "../lib/peer/content_id.ts";
import { SMALL_FILE_BYTES as PIECE_SIZE } from "../lib/peer/small_file_hash.ts";

const buffer = new Uint8Array(PIECE_SIZE);

/** Reads, checks and hashes a batch's files; how many. */
export function hashBatch({ paths, sizes }: { paths: string[]; sizes: number[] }): number {
  for (let i = 0; i < paths.length; i++) {
    if (sizes[i] > PIECE_SIZE) throw new Error(`${paths[i]} is not a small file`);
    const fd = openSync(paths[i], constants.O_RDONLY | constants.O_NOFOLLOW);
    const bytes = buffer.subarray(0, sizes[i]);
    try {
      let filled = 0;
      while (filled < bytes.length) {
        const read = readSync(fd, bytes, filled, bytes.length - filled, filled);
        if (read === 0) break;
        filled += read;
      }
      if (Deno.lstatSync(paths[i]).size !== filled) throw new Error(`${paths[i]} changed`);
    } finally {
      closeSync(fd);
    }
    // The content id a file has alone, as a publish names it.
    contentIdOf({
      version: 1,
      size: bytes.length,
      pieceSize: PIECE_SIZE,
      pieces: bytes.length === 0 ? [] : [sha256Hex(bytes)],
    });
  }
  return paths.length;
}

// As a worker (not when bench/folder_hash_floor.ts imports it to hash on its own thread).
if ("WorkerGlobalScope" in globalThis) {
  self.onmessage = (event: MessageEvent<{ paths: string[]; sizes: number[] }>) => {
    self.postMessage({ hashed: hashBatch(event.data) });
  };
}
