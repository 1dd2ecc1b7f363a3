/**
 * Which pieces of each content a piece server has sent (or is sending) to
 * anyone: told to downloaders in `have` (`sent`), so that a crowd sharing
 * one seed asks it for pieces nobody has been sent yet, and takes the
 * others from each other.
 */
import { Bitfield } from "./bitfield.ts";

/** Contents remembered at once; the one marked longest ago is forgotten first. */
const MAX_CONTENTS = 64;

/**
 * @example
 * ```ts
 * const sent = new SentPieces();
 * sent.mark(contentId, 3, manifest.pieces.length);
 * sent.toBase64(contentId, manifest.pieces.length); // for the `have` reply
 * ```
 */
export class SentPieces {
  /** In order of last use: a Map keeps insertion order, and a use re-inserts. */
  readonly #contents = new Map<string, Bitfield>();

  /** Marks piece `index` of a content of `count` pieces as sent. */
  mark(contentId: string, index: number, count: number): void {
    let sent = this.#contents.get(contentId);
    if (sent) {
      this.#contents.delete(contentId);
    } else {
      sent = new Bitfield(count);
      if (this.#contents.size >= MAX_CONTENTS) {
        this.#contents.delete(this.#contents.keys().next().value!);
      }
    }
    this.#contents.set(contentId, sent);
    if (index < sent.size) sent.set(index);
  }

  /** The pieces of a content of `count` pieces sent so far, base64 as `have`'s bitfield. */
  toBase64(contentId: string, count: number): string {
    return (this.#contents.get(contentId) ?? new Bitfield(count)).toBase64();
  }
}
