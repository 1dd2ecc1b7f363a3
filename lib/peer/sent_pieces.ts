/**
 * How many times a piece server has sent (or is sending) each piece of each
 * content, to anyone. Downloaders are told in `have` (`sent`) which pieces
 * it has sent more often than its least-sent ones, so that a crowd sharing
 * one seed asks it for those and takes the others from each other; and when
 * a request names pieces it would take instead (`piece`'s `alternatives`),
 * the seed sends its least-sent one, so that each piece leaves the seed once
 * before any leaves it twice (BitTorrent's super-seeding, decided by the
 * seed, which alone knows what it is sending the rest of the crowd). Counts,
 * not a mark: a seed that has already sent a file whole to someone is fresh
 * again for the next crowd.
 */
import { Bitfield } from "./bitfield.ts";

/** Contents remembered at once; the one marked longest ago is forgotten first. */
const MAX_CONTENTS = 64;

/**
 * @example
 * ```ts
 * const sent = new SentPieces();
 * const index = sent.choose(contentId, asked, alternatives, (i) => have.has(i));
 * sent.mark(contentId, index, manifest.pieces.length);
 * sent.toBase64(contentId, manifest.pieces.length); // for the `have` reply
 * ```
 */
export class SentPieces {
  /** Times each piece was sent; in order of last use (a Map keeps insertion order, a use re-inserts). */
  readonly #contents = new Map<string, Uint32Array>();

  /** Counts piece `index` of a content of `count` pieces as sent once more. */
  mark(contentId: string, index: number, count: number): void {
    let sent = this.#contents.get(contentId);
    if (sent) {
      this.#contents.delete(contentId);
    } else {
      sent = new Uint32Array(count);
      if (this.#contents.size >= MAX_CONTENTS) {
        this.#contents.delete(this.#contents.keys().next().value!);
      }
    }
    this.#contents.set(contentId, sent);
    if (index < sent.length) sent[index]++;
  }

  /** Takes back a {@link mark} of a piece that did not go out after all (it could not be read). */
  unmark(contentId: string, index: number): void {
    const sent = this.#contents.get(contentId);
    if (sent && sent[index] > 0) sent[index]--;
  }

  /**
   * The piece to send for a request of `index` that would take any of
   * `alternatives` instead: `index` itself unless an alternative that
   * `sendable` allows was sent fewer times, then the least sent of those (the
   * first from a random place, so requests spread over them). Does not count it.
   */
  choose(
    contentId: string,
    index: number,
    alternatives: Bitfield | null,
    sendable: (index: number) => boolean,
    random: () => number = Math.random,
  ): number {
    const sent = this.#contents.get(contentId);
    if (!alternatives || !sent || sent[index] === 0) return index;
    const count = Math.min(alternatives.size, sent.length);
    const start = Math.floor(random() * count);
    let [best, fewest] = [index, sent[index]];
    for (let k = 0; k < count && fewest > 0; k++) {
      const i = (start + k) % count;
      if (sent[i] < fewest && alternatives.has(i) && sendable(i)) [best, fewest] = [i, sent[i]];
    }
    return best;
  }

  /**
   * The pieces of a content of `count` pieces sent more times than its least
   * sent piece (before anything is sent again, every piece sent so far),
   * base64 as `have`'s bitfield.
   */
  toBase64(contentId: string, count: number): string {
    const field = new Bitfield(count);
    const sent = this.#contents.get(contentId);
    if (sent) {
      const least = sent.reduce((a, b) => Math.min(a, b), Infinity);
      for (let i = 0; i < count && i < sent.length; i++) if (sent[i] > least) field.set(i);
    }
    return field.toBase64();
  }
}
