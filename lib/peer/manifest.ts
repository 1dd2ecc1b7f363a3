/**
 * Manifests and content ids: a file is named by the SHA-256 of its manifest
 * (size, piece size, SHA-256 of every piece), as BitTorrent names a torrent
 * by its info hash. Nothing received is trusted until it matches.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { ShoalError } from "../protocol/errors.ts";
import { type Manifest, MAX_PIECE_BYTES, MAX_PIECES } from "../protocol/messages.ts";

const KIB = 1024;
const MIN_PIECE = 256 * KIB;
/** Keeps a manifest small: at most this many pieces, above the minimum piece size. */
const TARGET_PIECES = 2048;

/** Picks a power-of-two piece size so a file has at most ~2048 pieces. */
export function choosePieceSize(size: number): number {
  let pieceSize = MIN_PIECE;
  while (pieceSize < MAX_PIECE_BYTES && size / pieceSize > TARGET_PIECES) pieceSize *= 2;
  return pieceSize;
}

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

/** The byte length of piece `index`. */
export function pieceLength(manifest: Manifest, index: number): number {
  return Math.min(manifest.pieceSize, manifest.size - index * manifest.pieceSize);
}

/** The bytes covered by the pieces in `have` (the last piece may be short). */
export function bytesHeld(
  manifest: Manifest,
  have: { count: number; has(index: number): boolean },
): number {
  const last = manifest.pieces.length - 1;
  const shortfall = last >= 0 && have.has(last)
    ? manifest.pieceSize - pieceLength(manifest, last)
    : 0;
  return have.count * manifest.pieceSize - shortfall;
}

/**
 * Fills `buffer` from `offset` with positional reads, safe to run several at
 * once on one handle (unlike {@link readAt}, which seeks); false if the file
 * ends first.
 */
export async function readFullyAt(
  file: FileHandle,
  offset: number,
  buffer: Uint8Array,
): Promise<boolean> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, offset + filled);
    if (bytesRead === 0) return false;
    filled += bytesRead;
  }
  return true;
}

/**
 * Reads `buffer.length` bytes at `offset`, or fails with CONTENT_CHANGED if
 * the file is shorter than it was.
 */
export async function readAt(file: Deno.FsFile, offset: number, buffer: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < buffer.length) {
    const read = await file.read(buffer.subarray(filled));
    if (read === null) {
      throw new ShoalError("CONTENT_CHANGED", "the file is shorter than when it was published");
    }
    filled += read;
  }
}

/**
 * Hashes a file piece by piece into its manifest, reading one piece at a
 * time so no file is ever wholly in memory.
 */
export async function buildManifest(path: string, signal?: AbortSignal): Promise<Manifest> {
  using file = await Deno.open(path, { read: true });
  const { size } = await file.stat();
  const pieceSize = choosePieceSize(size);
  if (Math.ceil(size / pieceSize) > MAX_PIECES) {
    throw new ShoalError(
      "INVALID_INPUT",
      `${path} is too large to share (over ${MAX_PIECES} pieces)`,
    );
  }
  const pieces: string[] = [];
  const buffer = new Uint8Array(Math.min(pieceSize, size));
  for (let offset = 0; offset < size; offset += pieceSize) {
    if (signal?.aborted) throw new ShoalError("CANCELLED", `stopped hashing ${path}`);
    const piece = buffer.subarray(0, Math.min(pieceSize, size - offset));
    await readAt(file, offset, piece);
    pieces.push(sha256Hex(piece));
  }
  return { version: 1, size, pieceSize, pieces };
}

/** Checks that `manifest` is the one `contentId` names. */
export function verifyManifest(manifest: Manifest, contentId: string): void {
  if (contentIdOf(manifest) !== contentId) {
    throw new ShoalError("INTEGRITY", "the manifest does not match the content id");
  }
}

/**
 * Refuses a manifest no honest publisher makes, whatever content id names it:
 * a piece size other than the one {@link choosePieceSize} picks for its size,
 * or over `maxPieceBytes`, or a piece count that does not cover the size. A
 * fetcher buffers whole pieces, so a 1 MiB file cut into 64 MiB "pieces"
 * would otherwise cost it 64 MiB a request.
 */
export function checkPieceLayout(manifest: Manifest, maxPieceBytes = MAX_PIECE_BYTES): void {
  const { size, pieceSize, pieces } = manifest;
  const expected = choosePieceSize(size);
  if (pieceSize !== expected) {
    throw new ShoalError(
      "INTEGRITY",
      `the manifest cuts ${size} B into pieces of ${pieceSize} B, where a publisher uses ${expected} B`,
    );
  }
  if (pieceSize > maxPieceBytes) {
    throw new ShoalError(
      "INTEGRITY",
      `the manifest's pieces of ${pieceSize} B are over the ${maxPieceBytes} B this fetch accepts`,
    );
  }
  if (pieces.length !== Math.ceil(size / pieceSize)) {
    throw new ShoalError(
      "INTEGRITY",
      `the manifest lists ${pieces.length} pieces for ${size} B in pieces of ${pieceSize} B`,
    );
  }
}
