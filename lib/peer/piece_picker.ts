/**
 * Which piece a download asks a source for next: the policy of the swarm,
 * apart from its connections, so it can be tested (and changed) on its own.
 */

/** What a picker needs to know of a source. */
export interface PickSource {
  /** The pieces it holds. */
  has(index: number): boolean;
  /** Pieces asked of it and not yet answered. */
  inFlight: ReadonlySet<number>;
  /**
   * True for a source that holds every piece (an owner, not a fellow
   * downloader): in a flash crowd it is the one many downloaders share.
   */
  complete: boolean;
  /**
   * The pieces the source says it has sent (or is sending) to anyone, when
   * it says: they are on their way to fellow downloaders, who can pass them on.
   */
  sentElsewhere?: (index: number) => boolean;
}

/** Options of {@link PiecePicker}. */
export interface PiecePickerOptions {
  /** How many sources may be asked for the same piece in the endgame. @default {2} */
  endgameCopies?: number;
  /** A number in [0, 1), as `Math.random` (tests inject one). @default {Math.random} */
  random?: () => number;
}

/** What the endgame needs to know of every source of the download. */
export interface EndgameView {
  /** Whether a source's requests do not count in the endgame (they may lie with a slow one). */
  lagging: (source: PickSource) => boolean;
  /** Every source of the download. */
  sources: () => Iterable<PickSource>;
}

/**
 * Rarest first, per source: of the pieces a source holds that this download
 * still needs and has asked nobody for, one of those the fewest known
 * sources hold, drawn at random among equals, so a crowd of downloaders
 * fetches different pieces from one seed and trades them (each sees the
 * others' progress late, and a crowd fed in a shared order took longer).
 * A complete source is asked first for what no partial source has yet and
 * what it says it has sent nobody (its upload is what a crowd waits on: a
 * piece a fellow downloader holds, or is being sent, comes from that
 * downloader instead). Once nothing is left unrequested,
 * the endgame: a piece already asked of another source, the one with the
 * fewest copies asked of sources that are not lagging, up to a cap.
 *
 * @example
 * ```ts
 * const picker = new PiecePicker(manifest.pieces.length);
 * for (const index of sourceHave) picker.gained(index, !source.complete);
 * const index = picker.pick(source, (i) => have.has(i), {
 *   lagging: (other) => other.slow,
 *   sources: () => sources.values(),
 * });
 * if (index !== null) picker.requested(index, 1);
 * ```
 */
export class PiecePicker {
  /** Sources known to hold each piece. */
  readonly #availability: Uint16Array;
  /** Held by a partial source (a fellow downloader), for each piece. */
  readonly #partialCopies: Uint16Array;
  /** Requests in flight for each piece. */
  readonly #requested: Uint8Array;
  readonly #endgameCopies: number;
  readonly #random: () => number;

  constructor(count: number, options: PiecePickerOptions = {}) {
    this.#availability = new Uint16Array(count);
    this.#partialCopies = new Uint16Array(count);
    this.#requested = new Uint8Array(count);
    this.#endgameCopies = options.endgameCopies ?? 2;
    this.#random = options.random ?? Math.random;
  }

  /** A source gained piece `index` (it is counted once per source: call it for new pieces only). */
  gained(index: number, partial: boolean): void {
    this.#availability[index]++;
    if (partial) this.#partialCopies[index]++;
  }

  /** A source no longer holds piece `index` (it went away, or said it lost it). */
  lost(index: number, partial: boolean): void {
    this.#availability[index]--;
    if (partial) this.#partialCopies[index]--;
  }

  /** Counts a request of `index` made (+1) or settled (-1). */
  requested(index: number, change: 1 | -1): void {
    this.#requested[index] += change;
  }

  /** Requests of `index` in flight. */
  requestsOf(index: number): number {
    return this.#requested[index];
  }

  /** Sources known to hold `index`. */
  availabilityOf(index: number): number {
    return this.#availability[index];
  }

  /**
   * The next piece to ask `source` for, or null. `unwanted` marks pieces
   * this download holds or is storing; `endgame` is read only once nothing
   * is left unrequested.
   */
  pick(
    source: PickSource,
    unwanted: (index: number) => boolean,
    endgame: EndgameView,
  ): number | null {
    const size = this.#availability.length;
    // Lower is better: for a complete source, pieces no fellow downloader holds, and that it has
    // sent nobody, come first.
    const { sentElsewhere } = source;
    const rank = (i: number) =>
      !source.complete
        ? this.#availability[i]
        : (this.#partialCopies[i] > 0 || sentElsewhere?.(i) ? 1 << 16 : 0) +
          this.#availability[i];
    let best = Infinity;
    let ties = 0;
    let unrequestedLeft = false;
    // One pass finds the best rank and how many pieces share it, a second draws one of them:
    // cheaper than a random number for every candidate.
    for (let i = 0; i < size; i++) {
      if (this.#requested[i] > 0 || unwanted(i)) continue;
      unrequestedLeft = true;
      if (!source.has(i)) continue;
      const r = rank(i);
      if (r < best) [best, ties] = [r, 1];
      else if (r === best) ties++;
    }
    let draw = Math.floor(this.#random() * ties);
    for (let i = 0; i < size && ties > 0; i++) {
      if (this.#requested[i] > 0 || unwanted(i) || !source.has(i)) continue;
      if (rank(i) === best && draw-- === 0) return i;
    }
    // The endgame is looked for only once nothing is left unrequested, not on every pick.
    if (unrequestedLeft || endgame.lagging(source)) return null;
    return this.#pickEndgame(source, unwanted, endgame);
  }

  /**
   * In the endgame, a piece `source` has that is already asked of another
   * source: the one with the fewest copies asked of sources that are not
   * lagging (first one only lagging sources hold), under the cap of copies.
   */
  #pickEndgame(
    source: PickSource,
    unwanted: (index: number) => boolean,
    { lagging, sources }: EndgameView,
  ): number | null {
    const slow = [...sources()].filter(lagging);
    let chosen: number | null = null;
    let fewest = this.#endgameCopies;
    for (let i = 0; i < this.#availability.length && fewest > 0; i++) {
      if (
        this.#requested[i] > 0 && !unwanted(i) && source.has(i) && !source.inFlight.has(i)
      ) {
        let copies = this.#requested[i];
        for (const other of slow) if (other.inFlight.has(i)) copies--;
        if (copies < fewest) [chosen, fewest] = [i, copies];
      }
    }
    return chosen;
  }
}
