/**
 * Peers still downloading a content, who serve the pieces they have verified:
 * kept in memory only, for as long as their control connection stays open,
 * and bounded so no client can grow the tracker without limit.
 */
import { ShoalError } from "../protocol/errors.ts";
import type { Source } from "../protocol/messages.ts";
import type { CertificateOwners } from "./certificate_owners.ts";

/** Most contents one connection may list itself as a partial source of at once. */
export const MAX_DOWNLOADING_PER_CONNECTION = 32;
/**
 * Most partial sources the tracker keeps in all; past it, `downloading` still
 * answers, but the peer is not offered as a source.
 */
export const MAX_PARTIAL_SOURCES = 20_000;

/**
 * The partial sources of every content, by the connection (`H`) that
 * registered them. Each certificate they carry is claimed in `certificates`
 * while listed, so one account cannot pass for another.
 *
 * @example
 * ```ts
 * const partial = new PartialSources<Connection>(new CertificateOwners());
 * partial.add(connection, contentId, { owner, address, partial: true, certificate: null });
 * partial.forget(connection); // when it closes
 * ```
 */
export class PartialSources<H> {
  readonly #byContent = new Map<string, Map<H, Source>>();
  readonly #byHolder = new Map<H, Set<string>>();
  readonly #certificates: CertificateOwners;
  readonly #max: number;
  #size = 0;

  constructor(certificates: CertificateOwners, max = MAX_PARTIAL_SOURCES) {
    this.#certificates = certificates;
    this.#max = max;
  }

  /** How many (connection, content) entries are held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Lists `holder` as a partial source of `contentId`, replacing its earlier
   * entry for it. Throws BUSY past the per-connection bound, INVALID_INPUT for
   * a certificate another account holds; returns false (listing nothing) when
   * the tracker holds as many as it may.
   */
  add(holder: H, contentId: string, source: Source): boolean {
    const held = this.#byHolder.get(holder);
    const holders = this.#byContent.get(contentId);
    const existing = holders?.get(holder);
    if (!existing) {
      if ((held?.size ?? 0) >= MAX_DOWNLOADING_PER_CONNECTION) {
        throw new ShoalError(
          "BUSY",
          `this connection already downloads ${MAX_DOWNLOADING_PER_CONNECTION} contents; ` +
            "finish one first",
        );
      }
      if (this.#size >= this.#max) return false;
    }
    if (source.certificate !== null) this.#certificates.claim(source.certificate, source.owner);
    if (existing?.certificate) this.#certificates.release(existing.certificate);
    if (!existing) this.#size++;
    this.#byContent.set(contentId, (holders ?? new Map()).set(holder, source));
    this.#byHolder.set(holder, (held ?? new Set()).add(contentId));
    return true;
  }

  /** Forgets everything `holder` registered. */
  forget(holder: H): void {
    for (const contentId of this.#byHolder.get(holder) ?? []) {
      const holders = this.#byContent.get(contentId);
      const source = holders?.get(holder);
      if (!holders || !source) continue;
      holders.delete(holder);
      this.#size--;
      if (source.certificate !== null) this.#certificates.release(source.certificate);
      if (holders.size === 0) this.#byContent.delete(contentId);
    }
    this.#byHolder.delete(holder);
  }

  /**
   * The partial sources of a content, one per account, leaving out the
   * accounts in `skip` (lowercase) and keeping only `owner` if given: at most
   * `room` of them, and how many there are in all.
   */
  of(
    contentId: string,
    options: { owner?: string; skip: Set<string>; room: number },
  ): { sources: Source[]; total: number } {
    const seen = new Set(options.skip);
    const only = options.owner?.toLowerCase();
    const sources: Source[] = [];
    for (const source of this.#byContent.get(contentId)?.values() ?? []) {
      const account = source.owner.toLowerCase();
      if (seen.has(account) || (only !== undefined && account !== only)) continue;
      seen.add(account);
      sources.push(source);
    }
    return { sources: sources.slice(0, Math.max(0, options.room)), total: sources.length };
  }
}
