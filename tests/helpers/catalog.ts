import type { Manifest } from "../../lib/protocol/messages.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { contentIdOf, sha256Hex } from "../../lib/peer/manifest.ts";

/** `content` cut into pieces of `pieceSize`, with its manifest and content id. */
export function manifestOf(content: Uint8Array, pieceSize: number) {
  const count = Math.ceil(content.length / pieceSize);
  const manifest: Manifest = {
    version: 1,
    size: content.length,
    pieceSize,
    pieces: Array.from(
      { length: count },
      (_, i) => sha256Hex(content.subarray(i * pieceSize, (i + 1) * pieceSize)),
    ),
  };
  return { manifest, contentId: contentIdOf(manifest) };
}

/** A catalog serving every piece of `content` from memory, and nothing else. */
export function memoryCatalog(content: Uint8Array, pieceSize: number): Catalog {
  const { manifest, contentId } = manifestOf(content, pieceSize);
  return {
    find: (wanted) =>
      Promise.resolve(
        wanted === contentId
          ? {
            manifest,
            have: Bitfield.full(manifest.pieces.length),
            read: (index, into) => {
              into.set(content.subarray(index * pieceSize, index * pieceSize + into.length));
              return Promise.resolve();
            },
          }
          : null,
      ),
  };
}
