/**
 * Content ids: a file is named by the SHA-256 of its manifest's canonical
 * JSON. Kept apart from manifest.ts (which re-exports it) with nothing heavy
 * imported, so a hashing worker (hash_worker.ts) starts fast and names each
 * file itself.
 */
import { createHash } from "node:crypto";
import type { Manifest } from "../protocol/messages.ts";

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The content id: SHA-256 of the manifest's canonical JSON (fixed key order). */
export function contentIdOf(manifest: Manifest): string {
  return sha256Hex(JSON.stringify({
    version: manifest.version,
    size: manifest.size,
    pieceSize: manifest.pieceSize,
    pieces: manifest.pieces,
  }));
}
