import type { Manifest } from "../protocol/messages.ts";
import type { ShoalError } from "../protocol/errors.ts";
import type { Bitfield } from "./bitfield.ts";

/** Content this peer can serve: a complete share, or a download still in progress. */
export interface ServedContent {
  manifest: Manifest;
  /** The share's name, for the log; none for a download still in progress. */
  name?: string;
  /** The pieces that have been verified and can be served. */
  have: Bitfield;
  /** Reads one verified piece from disk into `into`, which is exactly the piece's length. */
  read(index: number, into: Uint8Array): Promise<void>;
}

/** A content under BATCHED_BELOW_BYTES, as a `pieces` batch serves it: whole, in one read. */
export interface SmallContent {
  size: number;
  /** The share the upload log counts it under: its own, or the folder holding it. */
  share: { contentId: string; name: string | null };
  /**
   * Reads the whole content into `into`, exactly `size` bytes; fails (or
   * throws) with a ShoalError such as CONTENT_CHANGED when it cannot.
   */
  read(into: Uint8Array): void | Promise<void>;
}

/**
 * A content found one by one, as a batch item: its first piece, all of a
 * content under BATCHED_BELOW_BYTES (the piece server refuses a larger one
 * before reading); null while that piece is not here (or it has none).
 */
export function smallOf(
  content: ServedContent,
  share: { contentId: string; name: string | null },
): SmallContent | null {
  if (!content.have.has(0)) return null;
  return { size: content.manifest.size, share, read: (into) => content.read(0, into) };
}

/** Finds servable content by content id; never from a path received off the network. */
export interface Catalog {
  find(contentId: string): Promise<ServedContent | null>;
  /**
   * Many small contents at once, for a `pieces` batch, in the order asked:
   * null for one this peer does not have, an error for one it cannot serve.
   * Without it, a batch finds each content with {@link find}.
   */
  findSmall?(contentIds: readonly string[]): Promise<(SmallContent | ShoalError | null)[]>;
  /** Where the manifest text of a folder shared here is kept, by the folder's content id. */
  folderManifest?(contentId: string): Promise<string | null>;
  /** Lets go of whatever the catalog holds open. */
  close?(): Promise<void>;
}

/** Downloads in progress in this process, served piece by piece as they verify. */
export class PartialCatalog implements Catalog {
  readonly #contents = new Map<string, ServedContent>();

  set(contentId: string, content: ServedContent | null): void {
    if (content) this.#contents.set(contentId, content);
    else this.#contents.delete(contentId);
  }

  find(contentId: string): Promise<ServedContent | null> {
    return Promise.resolve(this.#contents.get(contentId) ?? null);
  }
}
