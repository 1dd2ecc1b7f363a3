import type { Manifest } from "../protocol/messages.ts";
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

/** Finds servable content by content id; never from a path received off the network. */
export interface Catalog {
  find(contentId: string): Promise<ServedContent | null>;
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
