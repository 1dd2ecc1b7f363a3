import { delay } from "../async/delay.ts";
import { BufferPool } from "../protocol/buffer_pool.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { type Manifest, PEER_METHODS, type Source } from "../protocol/messages.ts";
import { Bitfield } from "./bitfield.ts";
import { bytesHeld, pieceLength, sha256Hex } from "./manifest.ts";
import { type PickSource, PiecePicker } from "./piece_picker.ts";
import {
  askQueuePlace,
  connectSource,
  notWaiting,
  queueReport,
  type QueueWait,
  startWaiting,
} from "./source_connection.ts";

/** What one source contributed to a download. */
export interface SourceReport {
  owner: string;
  address: string;
  partial: boolean;
  /** Verified pieces taken from this source. */
  pieces: number;
  bytes: number;
  /**
   * Set when its upload slots were all taken: the first place in its queue
   * this download was told (1 is next) and how long it waited in all.
   */
  queued: { place: number; seconds: number } | null;
}

/** A source that was dropped from the download, and why. */
export interface DroppedSource {
  owner: string;
  address: string;
  reason: string;
}

/** The outcome of a swarm download. */
export interface SwarmReport {
  /** Bytes received over the network, duplicates and rejected pieces included. */
  transferred: number;
  sources: SourceReport[];
  dropped: DroppedSource[];
}

/** Progress after each verified piece. */
export interface SwarmProgress {
  verifiedBytes: number;
  totalBytes: number;
  /** Sources connected right now. */
  activeSources: number;
  /** Sources whose upload slots are all taken, with this download's place in their queue. */
  queued: QueuedAt[];
}

/** A place in a source's queue for an upload slot (1 is next). */
export interface QueuedAt {
  owner: string;
  place: number;
}

/** Sources of a content, and a ticket they accept, as the tracker lists them. */
export interface SourceList {
  sources: Source[];
  /** A download ticket for the content, signed by the tracker. */
  ticket: string;
}

/**
 * Bounds that keep hostile (or merely slow) sources from holding a download
 * or bloating its memory; each has a default, tests use small values.
 */
export interface SwarmLimits {
  /** Requests kept in flight per source. @default {8} */
  pipelineDepth?: number;
  /** A source silent this long with requests outstanding is dropped. @default {15000} */
  requestTimeoutMs?: number;
  /**
   * A piece must arrive within `pieceGraceMs` plus its length at
   * `minPieceBytesPerSecond` from the piece before it on the same connection
   * (a source dripping bytes is never silent), or its source is dropped and
   * the piece goes elsewhere. `have` gets the grace alone.
   * @default {10000}
   */
  pieceGraceMs?: number;
  /** The slowest rate a piece may arrive at, after the grace. @default {65536} (64 KiB/s) */
  minPieceBytesPerSecond?: number;
  /**
   * A source whose next piece is this many times later than the fastest
   * source's usual time per piece (and at least `lagFloorMs` late) is lagging:
   * in the endgame, its pieces count as unrequested, so others take them, and
   * while lagging sources fill `maxInFlightBytes` and another source has
   * nothing to do, the one late longest is dropped.
   * @default {4}
   */
  lagFactor?: number;
  /** However fast the fastest source, a source is lagging only this late. @default {2000} */
  lagFloorMs?: number;
  /**
   * Bytes of pieces requested and not yet verified and written, across all
   * sources; more waits. At least one piece is always allowed, and pieces are
   * at most 64 MiB, so memory stays bounded whatever sources claim.
   * @default {67108864} (64 MiB)
   */
  maxInFlightBytes?: number;
}

/** Options of a {@link Swarm}. */
export interface SwarmOptions extends SwarmLimits {
  contentId: string;
  manifest: Manifest;
  /** Pieces already verified (e.g. from an earlier run); updated as pieces arrive. */
  have: Bitfield;
  /** Writes a verified piece into place; a failure (say, a full disk) stops the download. */
  store: (index: number, bytes: Uint8Array) => Promise<void>;
  /** Asks the tracker for the current sources of this content (and a fresh ticket). */
  findSources: () => Promise<SourceList>;
  /** True with --insecure-plaintext; otherwise only TLS sources the tracker vouched for. */
  plaintext: boolean;
  onProgress?: (progress: SwarmProgress) => void;
  /** How often to look for new sources (e.g. peers that started downloading). @default {3000} */
  refreshSourcesMs?: number;
  /** Stops the download (with CANCELLED), keeping what has been stored. */
  signal?: AbortSignal;
  /** Paces the reading of piece bodies from every source (a download rate limit). */
  pace?: (bytes: number) => Promise<void>;
}

/** The first look for more sources after a download starts; then twice as long each time. */
const FIRST_LOOK_MS = 500;
/** How soon a partial source with nothing more for us is asked again what it has. */
const PARTIAL_REFRESH_MS = 250;
/** Pieces received and not yet written; more waits before requesting further. */
const MAX_STORING = 8;
/** How long to keep looking for sources when none is left, before giving up. */
const NO_SOURCE_RETRIES = 5;
/** How often sources are checked for lagging (their pieces then go to others in the endgame). */
const LAG_CHECK_MS = 250;
/** Weight of the newest piece in a source's usual time per piece. */
const PIECE_TIME_WEIGHT = 0.25;

/** A link as the picker sees it. */
interface PickLink extends PickSource {
  link: Link;
}

/** A source of this download, and its waits in the source's queue for an upload slot. */
interface Link extends QueueWait {
  source: Source;
  client: ProtocolClient<typeof PEER_METHODS> | null;
  have: Bitfield | null;
  /** Pieces requested, in the order they were (and will be answered). */
  inFlight: Set<number>;
  /** The source's usual time per piece, from its reply before to its reply (ms); NaN until known. */
  pieceMs: number;
  /** When its last piece arrived, or its pipeline last started from empty. */
  lastReplyAt: number;
  pieces: number;
  bytes: number;
  dropped: string | null;
  /** Sent a piece that failed its hash: its owner is not asked again. */
  corrupt: boolean;
  refreshing: boolean;
  refreshSoon: boolean;
  /** The pieces the source says it has sent to anyone (a seed's hint), as of its last `have`. */
  sent: Bitfield | null;
}

/**
 * Downloads the missing pieces of one content from every source at once, the
 * way BitTorrent does: rarest pieces first, several requests in flight per
 * source (so faster sources get more work), every piece verified before it is
 * stored, a source that lies, stalls or sends a piece slower than the minimum
 * rate dropped and its pieces given to others, the last pieces requested from
 * a second source so one slow peer does not hold up the end (and from others
 * again while their sources lag far behind the fastest), the bytes of pieces
 * held at once capped whatever sources claim, and partial sources asked again
 * for what they have. A seed that says what it has sent is also offered,
 * with each request, the other pieces this download would take instead
 * (`alternatives`): the seed alone knows what it is sending the rest of a
 * crowd, so it sends each piece once before any twice, and the crowd trades
 * the rest.
 *
 * @example
 * ```ts
 * const swarm = new Swarm({ contentId, manifest, have, store, findSources });
 * const report = await swarm.run(await findSources());
 * ```
 */
export class Swarm {
  readonly #options: SwarmOptions;
  readonly #have: Bitfield;
  readonly #links: Link[] = [];
  /** Which piece to ask each source for; knows who holds and who was asked for each piece. */
  readonly #picker: PiecePicker;
  readonly #storing = new Set<number>();
  /** Piece bodies arrive in these buffers, and return once verified and stored (or rejected). */
  readonly #buffers = new BufferPool(64);
  readonly #done = Promise.withResolvers<SwarmReport>();
  #transferred = 0;
  #finished = false;
  #noSourceRetries = 0;
  #looking = false;
  #ticket = "";
  #heldBytes = 0;
  #peakHeldBytes = 0;
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  /** Aborted when the swarm stops: its one-off timers are cleared with it. */
  readonly #stopped = new AbortController();
  /** The caller's stop signal's listener, removed when the swarm stops. */
  readonly #onAbort = () => this.#fail(new ShoalError("CANCELLED", "stopped"));
  /** Sources lagging as of the last check, whose requests do not count in the endgame. */
  #lagging = new Set<Link>();

  constructor(options: SwarmOptions) {
    this.#options = options;
    this.#have = options.have;
    this.#picker = new PiecePicker(options.manifest.pieces.length);
  }

  /** Downloads until every piece is verified, or fails when no source is left. */
  run(initial: SourceList): Promise<SwarmReport> {
    if (this.#have.complete) return Promise.resolve(this.#report());
    // An abort before the run (say, Ctrl-C while the manifest came) fires no event later.
    if (this.#options.signal?.aborted) {
      return Promise.reject(new ShoalError("CANCELLED", "stopped"));
    }
    this.#ticket = initial.ticket;
    this.#options.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#addSources(initial.sources);
    this.#lookAgainAfter(Math.min(FIRST_LOOK_MS, this.#options.refreshSourcesMs ?? 3000));
    this.#lagTimer = setInterval(() => this.#checkLagging(), LAG_CHECK_MS);
    if (this.#liveLinks().length === 0) this.#background(this.#lookForSources());
    return this.#done.promise;
  }

  /**
   * Asks the tracker for sources after `ms`, then again and again, twice as
   * long each time up to `refreshSourcesMs`: in a flash crowd the fellow
   * downloaders that started a moment later are sources within a second.
   */
  #lookAgainAfter(ms: number): void {
    this.#after(ms, () => {
      this.#background(this.#lookForSources());
      this.#lookAgainAfter(Math.min(ms * 2, this.#options.refreshSourcesMs ?? 3000));
    });
  }

  /**
   * Lets `task` run on without waiting for it. Each task handles the
   * failures it expects; anything else it throws (a bug) fails the download
   * instead of going unhandled.
   */
  #background(task: Promise<void>): void {
    task.catch((error) => this.#fail(toShoalError(error)));
  }

  /** Runs `task` after `ms`, unless the swarm stops first: its timer goes with the swarm. */
  #after(ms: number, task: () => void): void {
    delay(ms, { signal: this.#stopped.signal }).then(task, () => {
      // Stopped: nothing left to do.
    });
  }

  #report(): SwarmReport {
    return {
      transferred: this.#transferred,
      sources: this.#links.filter((l) => l.pieces > 0 || !l.dropped).map((l) => ({
        owner: l.source.owner,
        address: l.source.address,
        partial: l.source.partial,
        pieces: l.pieces,
        bytes: l.bytes,
        queued: queueReport(l),
      })),
      dropped: this.#links.filter((l) => l.dropped).map((l) => ({
        owner: l.source.owner,
        address: l.source.address,
        reason: l.dropped!,
      })),
    };
  }

  #liveLinks(): Link[] {
    return this.#links.filter((link) => !link.dropped);
  }

  /** Adds sources not seen before; a source dropped once is not tried again in this download. */
  #addSources(sources: Source[]): void {
    for (const source of sources) {
      const seen = this.#links.some((link) =>
        link.source.address === source.address ||
        (link.corrupt && link.source.owner === source.owner)
      );
      if (seen) continue;
      const link: Link = {
        source,
        client: null,
        have: null,
        inFlight: new Set(),
        pieceMs: NaN,
        lastReplyAt: 0,
        pieces: 0,
        bytes: 0,
        dropped: null,
        corrupt: false,
        refreshing: false,
        refreshSoon: false,
        sent: null,
        ...notWaiting(),
      };
      this.#links.push(link);
      this.#background(this.#connect(link));
    }
  }

  async #connect(link: Link): Promise<void> {
    try {
      link.client = await connectSource(link.source, {
        plaintext: this.#options.plaintext,
        bodyPool: this.#buffers,
        pace: this.#options.pace,
        timeoutMs: this.#options.requestTimeoutMs ?? 15_000,
      });
    } catch (error) {
      return this.#drop(link, toShoalError(error).message);
    }
    if (this.#finished) return link.client.close();
    try {
      await this.#refreshHave(link);
    } catch (error) {
      this.#drop(link, `unreachable: ${toShoalError(error).message}`);
    }
  }

  /** Learns (again) which pieces a source holds; partial sources gain pieces over time. */
  async #refreshHave(link: Link): Promise<void> {
    if (!link.client || link.dropped || link.refreshing) return;
    link.refreshing = true;
    try {
      const reply = await link.client.call("have", {
        contentId: this.#options.contentId,
        ticket: this.#ticket,
      }, { deadlineMs: this.#options.pieceGraceMs ?? 10_000 });
      const have = Bitfield.fromBase64(reply.bitfield, this.#have.size);
      if (link.dropped) return;
      link.sent = reply.sent === undefined
        ? null
        : Bitfield.fromBase64(reply.sent, this.#have.size);
      for (let i = 0; i < have.size; i++) {
        if (have.has(i) && !link.have?.has(i)) this.#picker.gained(i, link.source.partial);
      }
      link.have = have;
    } catch (error) {
      this.#drop(link, toShoalError(error).message);
    } finally {
      link.refreshing = false;
    }
    this.#pump();
  }

  /**
   * Gives every source with room in its pipeline more pieces to fetch, one
   * piece a source a round, so that when the byte cap is what limits, the
   * sources share it.
   */
  #pump(): void {
    // A disk slower than the network would otherwise pile received pieces up in memory.
    if (this.#finished || this.#storing.size >= MAX_STORING) return;
    const depth = this.#options.pipelineDepth ?? 8;
    const ready = this.#liveLinks().filter((link) =>
      link.client && link.have && link.queuedPlace === null
    );
    let wanting = ready;
    fill: while (wanting.length > 0) {
      const again: Link[] = [];
      for (const link of wanting) {
        if (link.inFlight.size >= depth) continue;
        if (this.#capFull()) break fill;
        const index = this.#pick(link);
        if (index === null) continue;
        this.#request(link, index);
        again.push(link);
      }
      wanting = again;
    }
    for (const link of ready) {
      // A partial source with room left in its pipeline has nothing more for us that we know
      // of: ask it again shortly what it has (it gains pieces all the time). A complete source
      // that says what it has sent others is asked again too, so its pieces are chosen with that
      // known.
      const stale = link.source.partial ? link.inFlight.size < depth : link.sent !== null;
      if (stale && !link.refreshSoon) {
        link.refreshSoon = true;
        this.#after(PARTIAL_REFRESH_MS, () => {
          link.refreshSoon = false;
          this.#background(this.#refreshHave(link));
        });
      }
    }
  }

  /** The next piece to ask `link` for (see {@link PiecePicker}). */
  #pick(link: Link): number | null {
    const unwanted = (i: number) => this.#have.has(i) || this.#storing.has(i);
    return this.#picker.pick(this.#pickSource(link), unwanted, {
      lagging: (source) => this.#lagging.has((source as PickLink).link),
      sources: () => [...this.#lagging].map((l) => this.#pickSource(l)),
    });
  }

  #pickSource(link: Link): PickLink {
    return {
      link,
      has: (i) => link.have!.has(i),
      inFlight: link.inFlight,
      complete: !link.source.partial,
      sentElsewhere: link.sent ? (i) => link.sent!.has(i) : undefined,
    };
  }

  /**
   * Marks the sources whose next piece is late against the fastest source,
   * and lets the others take their pieces if that frees any.
   */
  #checkLagging(): void {
    if (this.#finished) return;
    const { lagFactor = 4, lagFloorMs = 2_000 } = this.#options;
    const live = this.#liveLinks();
    // Before any piece has arrived there is nothing to compare with: the floor alone counts.
    const fastest = Math.min(...live.filter((l) => l.pieceMs >= 0).map((l) => l.pieceMs));
    const lateAfter = Math.max(lagFloorMs, Number.isFinite(fastest) ? lagFactor * fastest : 0);
    const now = performance.now();
    const lagging = new Set(
      live.filter((link) => link.inFlight.size > 0 && now - link.lastReplyAt > lateAfter),
    );
    const newlyLagging = [...lagging].some((link) => !this.#lagging.has(link));
    this.#lagging = lagging;
    if (lagging.size > 0 && this.#capFull() && this.#someoneWaits()) {
      // Lagging sources fill the byte cap while a faster one has nothing to do: the one late
      // longest loses its pieces (its bytes go back once its requests fail), else hostile
      // sources could hold a download by filling the cap until their deadlines.
      const worst = [...lagging].reduce((a, b) => (b.lastReplyAt < a.lastReplyAt ? b : a));
      const seconds = ((now - worst.lastReplyAt) / 1000).toFixed(1);
      return this.#drop(
        worst,
        `too slow: held ${worst.inFlight.size} pieces, the next for ${seconds} s, while faster sources waited`,
      );
    }
    if (newlyLagging) this.#pump();
  }

  /** Whether requesting one more piece could take the bytes held over the cap. */
  #capFull(): boolean {
    const cap = this.#options.maxInFlightBytes ?? 64 * 1024 * 1024;
    // The cap counts whole pieces, the longest one, so it is never overshot.
    return this.#heldBytes > 0 && this.#heldBytes + this.#options.manifest.pieceSize > cap;
  }

  /** Whether a source that is not lagging has room in its pipeline and a piece to ask for. */
  #someoneWaits(): boolean {
    const depth = this.#options.pipelineDepth ?? 8;
    return this.#liveLinks().some((link) =>
      link.client && link.have && link.queuedPlace === null && !this.#lagging.has(link) &&
      link.inFlight.size < depth && this.#pick(link) !== null
    );
  }

  #request(link: Link, index: number): void {
    const { manifest, pieceGraceMs = 10_000, minPieceBytesPerSecond = 64 * 1024 } = this.#options;
    if (link.inFlight.size === 0) link.lastReplyAt = performance.now();
    link.inFlight.add(index);
    this.#picker.requested(index, 1);
    const length = pieceLength(manifest, index);
    this.#hold(length);
    const alternatives = this.#alternatives(link, index);
    const params = {
      contentId: this.#options.contentId,
      index,
      ticket: this.#ticket,
      alternatives: alternatives?.toBase64(),
    };
    const deadlineMs = pieceGraceMs + Math.ceil(length / minPieceBytesPerSecond * 1000);
    this.#background(
      link.client!.callWithBody("piece", params, length, { deadlineMs }).then(
        ({ result, body }) => {
          if (result.index === index || alternatives?.has(result.index)) {
            return this.#onPiece(link, index, result.index, body);
          }
          this.#settle(link, index);
          this.#releasePiece(index, body);
          this.#drop(link, `sent piece ${result.index} when asked for ${index}`);
        },
        (error) => this.#onRequestFailed(link, index, toShoalError(error)),
      ),
    );
  }

  /**
   * The pieces a seed may send instead of `index` (see {@link SentPieces}):
   * for a complete source that says what it has sent, every piece of the
   * same length that it holds, that this download needs and has asked nobody
   * for. The seed alone knows what it is sending the rest of a crowd, so it
   * chooses; null for other sources, and when there is no other piece.
   */
  #alternatives(link: Link, index: number): Bitfield | null {
    const { have } = link;
    if (link.source.partial || !link.sent || !have) return null;
    const { manifest } = this.#options;
    // Every piece but the last has the same length; the last may be shorter.
    const last = manifest.pieces.length - 1;
    const alike = pieceLength(manifest, last) === manifest.pieceSize;
    if (index === last && !alike) return null;
    const field = new Bitfield(this.#have.size);
    const end = alike ? last + 1 : last;
    for (let i = 0; i < end; i++) {
      if (
        this.#picker.requestsOf(i) === 0 && !this.#have.has(i) && have.has(i) &&
        !this.#storing.has(i) && i !== index
      ) {
        field.set(i);
      }
    }
    return field.count > 0 ? field : null;
  }

  /** Counts bytes of a requested piece until its buffer is given back (or the request fails). */
  #hold(bytes: number): void {
    this.#heldBytes += bytes;
    this.#peakHeldBytes = Math.max(this.#peakHeldBytes, this.#heldBytes);
  }

  #settle(link: Link, index: number): void {
    link.inFlight.delete(index);
    this.#picker.requested(index, -1);
  }

  /** Gives a piece's buffer back to the pool, and its bytes back to the cap. */
  #releasePiece(index: number, body: Uint8Array): void {
    this.#buffers.release(body);
    this.#heldBytes -= pieceLength(this.#options.manifest, index);
  }

  /**
   * Verifies piece `index`, sent for a request of `asked` (the same but when
   * a seed chose an alternative), and stores it; its buffer goes back to the
   * pool whatever happens.
   */
  async #onPiece(link: Link, asked: number, index: number, body: Uint8Array): Promise<void> {
    this.#settle(link, asked);
    this.#transferred += body.length;
    const now = performance.now();
    const took = now - link.lastReplyAt;
    link.pieceMs = Number.isNaN(link.pieceMs)
      ? took
      : link.pieceMs + PIECE_TIME_WEIGHT * (took - link.pieceMs);
    link.lastReplyAt = now;
    if (this.#finished || link.dropped || this.#have.has(index) || this.#storing.has(index)) {
      this.#releasePiece(index, body);
      // A dropped source's piece frees its bytes for the others too.
      if (!this.#finished) this.#pump();
      return;
    }
    const { manifest } = this.#options;
    this.#storing.add(index);
    // Keep the source busy while this piece is written.
    this.#pump();
    let verified = false;
    try {
      verified = body.length === pieceLength(manifest, index) &&
        sha256Hex(body) === manifest.pieces[index];
      if (verified) await this.#options.store(index, body);
    } catch (error) {
      return this.#fail(toShoalError(error));
    } finally {
      this.#storing.delete(index);
      this.#releasePiece(index, body);
    }
    if (this.#finished) return;
    if (!verified) {
      link.corrupt = true;
      this.#drop(link, `sent a corrupt piece (${index})`);
      return;
    }
    this.#have.set(index);
    link.pieces++;
    link.bytes += body.length;
    this.#progress();
    if (this.#have.complete) return this.#finish();
    this.#pump();
  }

  #onRequestFailed(link: Link, index: number, error: ShoalError): void {
    this.#settle(link, index);
    this.#heldBytes -= pieceLength(this.#options.manifest, index);
    link.lastReplyAt = performance.now();
    if (this.#finished) return;
    // The requests of a dropped source fail one by one: each frees bytes for the others.
    if (link.dropped) return this.#pump();
    if (error.code === "QUEUED") return this.#queued(link);
    if (error.code === "NOT_FOUND" && link.have) {
      // The source no longer has this piece (e.g. it restarted): forget it and go on.
      if (link.have.has(index)) this.#picker.lost(index, link.source.partial);
      link.have.clear(index);
      this.#pump();
      return;
    }
    this.#drop(link, error.code === "TIMEOUT" ? `too slow: ${error.message}` : error.message);
  }

  #drop(link: Link, reason: string): void {
    if (link.dropped || this.#finished) return;
    link.dropped = reason;
    this.#lagging.delete(link);
    if (link.have) {
      for (let i = 0; i < link.have.size; i++) {
        if (link.have.has(i)) this.#picker.lost(i, link.source.partial);
      }
    }
    // Its requests in flight fail now and return to the pool.
    link.client?.close();
    this.#pump();
    if (this.#liveLinks().length === 0) this.#background(this.#lookForSources());
  }

  /**
   * The source has no upload slot for us: its pieces go to others while we
   * wait our turn, asking it our place (which keeps us in its queue) until
   * it serves us.
   */
  #queued(link: Link): void {
    this.#pump();
    if (startWaiting(link)) this.#background(this.#askPlace(link));
  }

  async #askPlace(link: Link): Promise<void> {
    if (this.#finished || link.dropped || !link.client) return;
    let retryMs: number;
    try {
      retryMs = await askQueuePlace(
        link.client,
        link,
        { contentId: this.#options.contentId, ticket: this.#ticket },
        this.#options.pieceGraceMs ?? 10_000,
      );
    } catch (error) {
      // BUSY: its queue is full. Either way this source is of no use to this download now.
      return this.#drop(link, toShoalError(error).message);
    }
    if (this.#finished || link.dropped) return;
    this.#progress();
    if (link.queuedPlace === null) return this.#pump();
    this.#after(retryMs, () => this.#background(this.#askPlace(link)));
  }

  /** Asks the tracker for sources not yet known; gives up after a while with none. */
  async #lookForSources(): Promise<void> {
    if (this.#finished || this.#looking) return;
    this.#looking = true;
    try {
      const found = await this.#options.findSources();
      this.#ticket = found.ticket;
      this.#addSources(found.sources);
    } catch {
      // The tracker may be down; the sources we have carry on.
    } finally {
      this.#looking = false;
    }
    if (this.#finished || this.#liveLinks().length > 0) {
      this.#noSourceRetries = 0;
      return;
    }
    if (++this.#noSourceRetries > NO_SOURCE_RETRIES) {
      const reasons = [...new Set(this.#links.map((l) => `${l.source.owner}: ${l.dropped}`))];
      return this.#fail(
        new ShoalError(
          "UNREACHABLE",
          `no source left${reasons.length ? ` (${reasons.join("; ")})` : ""}`,
        ),
      );
    }
    this.#after(1000, () => this.#background(this.#lookForSources()));
  }

  #progress(): void {
    const live = this.#liveLinks();
    this.#options.onProgress?.({
      verifiedBytes: bytesHeld(this.#options.manifest, this.#have),
      totalBytes: this.#options.manifest.size,
      activeSources: live.length,
      queued: live.filter((l) => l.queuedPlace !== null && Number.isFinite(l.queuedPlace)).map((
        l,
      ) => ({ owner: l.source.owner, place: l.queuedPlace! })),
    });
  }

  #finish(): void {
    this.#stop();
    this.#done.resolve(this.#report());
  }

  #fail(error: ShoalError): void {
    if (this.#finished) return;
    this.#stop();
    this.#done.reject(error);
  }

  #stop(): void {
    this.#finished = true;
    clearInterval(this.#lagTimer);
    this.#stopped.abort();
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    for (const link of this.#links) link.client?.close();
  }

  /**
   * The most bytes of pieces requested and not yet verified and written (or
   * given up) at once: what the pieces of this download held in memory at
   * most; never over `maxInFlightBytes` (or one piece).
   */
  get peakHeldBytes(): number {
    return this.#peakHeldBytes;
  }

  /** Dropped sources and per-source counts so far (also after a failure). */
  get report(): SwarmReport {
    return this.#report();
  }
}
