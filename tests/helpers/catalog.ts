import type { Manifest } from "../../lib/protocol/messages.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import type { Catalog, SmallContent } from "../../lib/peer/catalog.ts";
import { choosePieceSize, contentIdOf, sha256Hex } from "../../lib/peer/manifest.ts";

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

/**
 * A catalog of several contents from memory (each cut as choosePieceSize
 * would), with the batch look-up of small ones: `calls` counts the look-ups
 * of each kind (so a test sees batches were used), `reads` records the
 * buffer each small content was read into, and `fail` makes a content's
 * small read throw.
 */
export function contentsCatalog(
  contents: Uint8Array[],
  fail: (contentId: string) => Error | null = () => null,
) {
  const byId = new Map<string, { manifest: Manifest; content: Uint8Array }>();
  for (const content of contents) {
    const { manifest, contentId } = manifestOf(content, choosePieceSize(content.length));
    byId.set(contentId, { manifest, content });
  }
  const calls = { find: 0, findSmall: 0 };
  const reads: ArrayBufferLike[] = [];
  const catalog: Catalog = {
    find(contentId) {
      calls.find++;
      const found = byId.get(contentId);
      if (!found) return Promise.resolve(null);
      const { manifest, content } = found;
      return Promise.resolve({
        manifest,
        have: Bitfield.full(manifest.pieces.length),
        read: (index, into) => {
          const at = index * manifest.pieceSize;
          into.set(content.subarray(at, at + into.length));
          return Promise.resolve();
        },
      });
    },
    findSmall(contentIds) {
      calls.findSmall++;
      return Promise.resolve(contentIds.map((contentId): SmallContent | null => {
        const found = byId.get(contentId);
        return found === undefined ? null : {
          size: found.content.length,
          share: { contentId, name: null },
          read: (into) => {
            const error = fail(contentId);
            if (error) throw error;
            reads.push(into.buffer);
            into.set(found.content);
          },
        };
      }));
    },
  };
  return { catalog, calls, reads };
}
