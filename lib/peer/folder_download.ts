/**
 * Downloading many files at once, each by its own content id, from every
 * source that holds it: the plan behind a folder fetch. One connection per
 * source carries every file (requests pipelined, so a folder of small files
 * costs no round trip per file), pieces are verified before they are
 * written, and each file is renamed into place only once all its pieces
 * have verified. Memory holds the pieces in flight and a few numbers per
 * file, never a file's data.
 */
import { delay } from "../async/delay.ts";
import { BufferPool } from "../protocol/buffer_pool.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import {
  BATCHED_BELOW_BYTES,
  type BatchItem,
  checkBatchReply,
  MAX_BATCH_BYTES,
  MAX_BATCH_ITEMS,
  PEER_METHODS,
  type Source,
} from "../protocol/messages.ts";
import { Bitfield } from "./bitfield.ts";
import { PART_SUFFIX } from "./downloader.ts";
import { contentIdCache, fileManifestOf } from "./folder_manifest.ts";
import { pieceLength, sha256Hex } from "./manifest.ts";
import { PartFile } from "./part_file.ts";
import {
  askQueuePlace,
  connectSource,
  notWaiting,
  queueReport,
  type QueueWait,
  startWaiting,
} from "./source_connection.ts";
import type { QueuedAt, SourceReport } from "./swarm.ts";
import { BatchPlacer, type PlaceJob } from "./batch_placer.ts";
import { WholeFiles } from "./whole_file.ts";
import type { FileIdentity } from "./manifest.ts";

/**
 * One file to fetch: a folder manifest's entry itself (no copy per file), its
 * content id following from it (`fileContentId`).
 */
export interface PlannedFile {
  /** Relative to the folder; {@link FolderDownloadOptions.place} says where it goes. */
  path: string;
  size: number;
  pieces: string[];
}

/** A source and which of the planned files it holds (null: all of them). */
export interface PlannedSource {
  source: Source;
  holds: Set<number> | null;
}

/** Sources (again) and a ticket they accept, as the tracker lists them. */
export interface PlannedSources {
  sources: PlannedSource[];
  ticket: string;
}

/** Progress after each verified piece. */
export interface FolderProgress {
  verifiedBytes: number;
  totalBytes: number;
  filesDone: number;
  totalFiles: number;
  activeSources: number;
  /** Sources whose upload slots are all taken, with this download's place in their queue. */
  queued: QueuedAt[];
}

/** Options of {@link FolderDownload}. */
export interface FolderDownloadOptions {
  files: PlannedFile[];
  /**
   * Each file's content id (the caller's cache, when it worked them out
   * already). @default {a cache of fileContentId}
   */
  contentIdOf?: (file: PlannedFile) => string;
  /** Where a file goes once verified: an absolute path whose folder exists and was checked. */
  place: (relative: string) => string;
  /** Asks the tracker for the sources of the files not yet done (and a fresh ticket). */
  findSources: (remaining: number[]) => Promise<PlannedSources>;
  plaintext: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: FolderProgress) => void;
  /**
   * Told when a file is renamed into place, with what it is on disk where
   * that was read as it was written.
   */
  onFileDone?: (index: number, identity?: FileIdentity) => void;
  /** Requests in flight per source. @default {32} */
  pipelineDepth?: number;
  /** Bytes of pieces requested and not yet stored, across sources. @default {64 MiB} */
  maxInFlightBytes?: number;
  /**
   * Bytes requested from one source and not yet arrived (but always one
   * piece): a big file's pieces, as a file's swarm asks them, 8 or so at a
   * time, while small files fill the pipeline. @default {4 MiB}
   */
  maxSourceBytes?: number;
  /** Time a piece has before its source is dropped, plus its length at 64 KiB/s. @default {10000} */
  pieceGraceMs?: number;
  /** Waits until `bytes` more may be read (`fetch --max-download-rate`). @default {no limit} */
  pace?: (bytes: number) => Promise<void>;
  /**
   * Most small files (under BATCHED_BELOW_BYTES, one piece) asked for in
   * one `pieces` request; 1 asks for each with `piece`. A source's first
   * batches are smaller, doubling up to this, so the first files land soon.
   * @default {128}
   */
  batchItems?: number;
  /** Most bytes of one `pieces` request. @default {1 MiB} */
  batchBytes?: number;
  /**
   * Verifies and places the files of `pieces` batches on another core while
   * this thread reads the next ones; the caller starts it (early: a worker
   * takes a few tens of milliseconds to start) and closes it. @default {this thread}
   */
  placer?: BatchPlacer;
  /**
   * Files of one piece (and empty ones) are written straight under their
   * own names, not through a `.shoal-part` renamed over them: for a folder
   * built where nobody looks until it is whole (fetchFolder's staging
   * folder), which saves the rename of each file. @default {false}
   */
  direct?: boolean;
}

/** A source of this download, and its waits in the source's queue for an upload slot. */
interface Link extends QueueWait {
  source: Source;
  holds: Set<number> | null;
  /** Files it turned out not to have. */
  lacks: Set<number>;
  client: ProtocolClient<typeof PEER_METHODS> | null;
  inFlight: number;
  /** Bytes of the requests in flight. */
  inFlightBytes: number;
  /** Next file to look at for this source. */
  cursor: number;
  pieces: number;
  bytes: number;
  dropped: string | null;
  /** Most files of the next batch to it: small at first, doubling up to `batchItems`. */
  batchItems: number;
  /**
   * It refused a batch with BUSY (its bound on what one account's batches
   * hold there until sent, met by several fetches at once): its small files
   * are asked for with `piece` from then on, which that bound does not cover.
   */
  noBatches: boolean;
}

/** A file being written: its part file (several pieces) and what it still needs. */
interface Open {
  /** Opened once, by the first piece to arrive (pieces of one file arrive together). */
  part: Promise<PartFile>;
  have: Bitfield;
}

const NO_SOURCE_RETRIES = 5;
/** A piece's key among the requests out: its file's index times this, plus its own. */
const PIECES_PER_KEY = 2 ** 32;
/**
 * Sources asked for one piece at most: the one first asked, and one idle
 * source in the endgame.
 */
const ENDGAME_COPIES = 2;
/** Files in a source's first batch; each next batch may hold twice as many. */
const FIRST_BATCH_ITEMS = 4;
const DEFAULT_BATCH_ITEMS = 128;
/**
 * Pieces being written at once, at most. Creating a small file can take this
 * disk a millisecond of kernel time; a few at a time keep both cores busy
 * without a backlog of pieces (and I/O threads) piling up behind the disk.
 */
const MAX_STORING = 16;
/**
 * Batches at the placing worker, at most (a few keep it busy):
 * where it is the slower end, more would only hold their buffers (1 MiB
 * each) in memory.
 */
const MAX_PLACING = 4;

/**
 * Fetches the planned files; each lands under its final name only when
 * complete and verified.
 *
 * @example
 * ```ts
 * const report = await new FolderDownload({ files, findSources, plaintext: false }).run(first);
 * ```
 */
export class FolderDownload {
  readonly #options: FolderDownloadOptions;
  readonly #files: PlannedFile[];
  /** Next piece to request, per file; pieces.length once all are requested. */
  readonly #nextPiece: Int32Array;
  /** Pieces still to verify, per file; 0 once done. */
  readonly #remaining: Int32Array;
  readonly #open = new Map<number, Open>();
  /** Each file's content id, worked out once. */
  readonly #idOf: (file: PlannedFile) => string;
  /** Pieces to ask again (their request failed), as [file, piece]. */
  readonly #retry: [number, number][] = [];
  /**
   * Requests out for each file of one piece: 1, or 2 in the endgame (once
   * every piece has been asked for, a source with nothing left to do is
   * asked too for pieces another has not sent yet: a slow source then holds
   * up nobody). Numbers, not records: a folder of small files costs no
   * allocation a file for it.
   */
  readonly #copies: Uint8Array;
  /** Whether a copy of each file of one piece has arrived: the first is used, a later one dropped unread. */
  readonly #arrived: Uint8Array;
  /** The same two for the pieces of files of several pieces, by key (file × PIECES_PER_KEY + piece). */
  readonly #pieceCopies = new Map<number, number>();
  readonly #piecesArrived = new Set<number>();
  /** Every file before this one has had each of its pieces asked for (see {@link #allAsked}). */
  #firstUnasked = 0;
  /** Every file before this one is done (where the endgame starts looking). */
  #firstOpen = 0;
  readonly #links: Link[] = [];
  readonly #buffers = new BufferPool(64);
  readonly #done = Promise.withResolvers<SourceReport[]>();
  #ticket = "";
  #heldBytes = 0;
  #verifiedBytes = 0;
  #totalBytes = 0;
  #filesLeft: number;
  #finished = false;
  #looking = false;
  /** Looks for sources since the last piece arrived. */
  #fruitlessLooks = 0;
  /** Pieces verified and being written. */
  #storing = 0;
  /** Puts the files of one piece (and empty ones) in place. */
  readonly #whole = new WholeFiles();
  /** Verifies and places batches of small files on another core (the caller's). */
  readonly #placer: BatchPlacer | null;
  /** Batches at the placing worker. */
  #placing = 0;
  readonly #stopped = new AbortController();
  readonly #onAbort = () => this.#fail(new ShoalError("CANCELLED", "stopped"));

  constructor(options: FolderDownloadOptions) {
    this.#options = options;
    this.#files = options.files;
    this.#placer = options.placer ?? null;
    this.#idOf = options.contentIdOf ?? contentIdCache();
    this.#nextPiece = new Int32Array(this.#files.length);
    this.#copies = new Uint8Array(this.#files.length);
    this.#arrived = new Uint8Array(this.#files.length);
    this.#remaining = new Int32Array(this.#files.length);
    for (let i = 0; i < this.#files.length; i++) {
      this.#remaining[i] = this.#files[i].pieces.length;
      this.#totalBytes += this.#files[i].size;
    }
    this.#filesLeft = this.#files.length;
  }

  /**
   * Resumes a file from its `.shoal-part` left by an earlier run: the pieces
   * that still verify are kept. Call before {@link run}.
   */
  async resumeFrom(index: number): Promise<void> {
    const file = this.#files[index];
    if (file.pieces.length < 2) return;
    const partPath = this.#options.place(file.path) + PART_SUFFIX;
    if (!await Deno.lstat(partPath).then((info) => info.isFile, () => false)) return;
    const part = await PartFile.open(partPath, fileManifestOf(file));
    const have = await part.verify(Bitfield.full(file.pieces.length));
    this.#open.set(index, { part: Promise.resolve(part), have });
    this.#remaining[index] -= have.count;
    const manifest = fileManifestOf(file);
    for (let p = 0; p < file.pieces.length; p++) {
      if (have.has(p)) this.#verifiedBytes += pieceLength(manifest, p);
    }
  }

  /** Bytes verified so far, resumed pieces included. */
  get verifiedBytes(): number {
    return this.#verifiedBytes;
  }

  /** Downloads until every file is in place; fails when no source is left. */
  async run(initial: PlannedSources): Promise<SourceReport[]> {
    // Files with nothing left to fetch (empty ones, or resumed whole) are finished first.
    for (let i = 0; i < this.#files.length; i++) {
      if (this.#remaining[i] === 0) await this.#complete(i);
    }
    if (this.#filesLeft === 0) return this.#report();
    if (this.#options.signal?.aborted) throw new ShoalError("CANCELLED", "stopped");
    this.#options.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#ticket = initial.ticket;
    this.#addSources(initial.sources);
    if (this.#live().length === 0) this.#background(this.#lookForSources());
    try {
      return await this.#done.promise;
    } finally {
      for (const { part } of this.#open.values()) await (await part.catch(() => null))?.close();
      this.#open.clear();
    }
  }

  /**
   * More sources (of files of the download) found while it runs, and a
   * ticket they accept; nothing once it is over.
   */
  addSources(found: PlannedSources): void {
    if (this.#finished) return;
    if (found.ticket) this.#ticket = found.ticket;
    this.#addSources(found.sources);
    this.#pump();
  }

  #report(): SourceReport[] {
    return this.#links.filter((link) => link.pieces > 0).map((link) => {
      const queued = queueReport(link);
      return {
        owner: link.source.owner,
        address: link.source.address,
        partial: false,
        pieces: link.pieces,
        bytes: link.bytes,
        // A folder's report gives the seconds queued to a tenth.
        queued: queued && { ...queued, seconds: Math.round(queued.seconds * 10) / 10 },
      };
    });
  }

  /** Sources dropped, and why. */
  get dropped(): { owner: string; address: string; reason: string }[] {
    return this.#links.filter((link) => link.dropped).map((link) => ({
      owner: link.source.owner,
      address: link.source.address,
      reason: link.dropped!,
    }));
  }

  #background(task: Promise<void>): void {
    task.catch((error) => this.#fail(toShoalError(error)));
  }

  #live(): Link[] {
    return this.#links.filter((link) => !link.dropped);
  }

  #addSources(sources: PlannedSource[]): void {
    for (const { source, holds } of sources) {
      const known = this.#links.find((link) => link.source.address === source.address);
      if (known) {
        if (!known.dropped && known.holds && holds) { for (const i of holds) known.holds.add(i); }
        if (!known.dropped && holds === null) known.holds = null;
        if (!known.dropped) known.cursor = 0;
        continue;
      }
      const link: Link = {
        source,
        holds,
        lacks: new Set(),
        client: null,
        inFlight: 0,
        inFlightBytes: 0,
        cursor: 0,
        pieces: 0,
        bytes: 0,
        dropped: null,
        batchItems: FIRST_BATCH_ITEMS,
        noBatches: false,
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
      });
    } catch (error) {
      return this.#drop(link, toShoalError(error).message);
    }
    if (this.#finished) return link.client.close();
    this.#pump();
  }

  #holds(link: Link, index: number): boolean {
    return (link.holds === null || link.holds.has(index)) && !link.lacks.has(index);
  }

  /** The next piece `link` should fetch, or null. */
  #pick(link: Link): [number, number] | null {
    for (let r = 0; r < this.#retry.length; r++) {
      const [file] = this.#retry[r];
      if (this.#holds(link, file)) return this.#retry.splice(r, 1)[0];
    }
    const files = this.#files;
    while (link.cursor < files.length) {
      const i = link.cursor;
      const pieces = files[i].pieces.length;
      if (this.#remaining[i] > 0 && this.#holds(link, i)) {
        const have = this.#open.get(i)?.have;
        while (this.#nextPiece[i] < pieces && have?.has(this.#nextPiece[i])) this.#nextPiece[i]++;
        if (this.#nextPiece[i] < pieces) return [i, this.#nextPiece[i]++];
      }
      link.cursor++;
    }
    return null;
  }

  #pump(): void {
    if (this.#finished) return;
    const depth = this.#options.pipelineDepth ?? 32;
    const cap = this.#options.maxInFlightBytes ?? 64 * 1024 * 1024;
    // A source's pipeline is topped up once a quarter of it came back, not after each piece:
    // the requests of one top-up leave in one write (`ProtocolClient` joins them).
    const refill = depth - Math.max(1, depth >> 2);
    const ready = this.#live().filter((link) => link.inFlight <= refill);
    const perSource = this.#options.maxSourceBytes ?? 4 * 1024 * 1024;
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const link of ready) {
        if (link.dropped || !link.client || link.inFlight >= depth) continue;
        if (link.inFlight > 0 && link.inFlightBytes >= perSource) continue;
        if (link.queuedPlace !== null) continue;
        if (this.#heldBytes > 0 && this.#heldBytes >= cap) return;
        // Writes queued on I/O threads hold their pieces (and a thread each): a few at a time.
        if (this.#storing >= MAX_STORING) return;
        // So do batches waiting for the placing worker: a few keep it busy.
        if (this.#placing >= MAX_PLACING) return;
        const unit = this.#pick(link);
        if (!unit) {
          // Nothing new for it: once nothing is left unasked, it helps with what others owe.
          if (link.inFlight === 0 && this.#allAsked() && this.#endgame(link)) progressed = true;
          continue;
        }
        if (!link.noBatches && this.#batchable(unit[0])) this.#requestBatch(link, unit[0]);
        else this.#request(link, unit[0], unit[1]);
        progressed = true;
      }
    }
    // Nobody has anything left to do: what remains, no live source holds.
    if (this.#filesLeft > 0 && !this.#busy()) this.#background(this.#lookForSources());
  }

  /** Records that a source was asked for a piece. */
  #ask(file: number, piece: number): void {
    if (this.#files[file].pieces.length === 1) {
      this.#copies[file]++;
      return;
    }
    const key = file * PIECES_PER_KEY + piece;
    this.#pieceCopies.set(key, (this.#pieceCopies.get(key) ?? 0) + 1);
  }

  /**
   * A copy of a piece arrived: whether it is the first (then it is this
   * one's to verify and store) or another source's came first.
   */
  #claim(file: number, piece: number): boolean {
    if (this.#files[file].pieces.length === 1) {
      this.#copies[file]--;
      if (this.#arrived[file]) return false;
      this.#arrived[file] = 1;
      return true;
    }
    const key = file * PIECES_PER_KEY + piece;
    this.#lessCopies(key);
    if (this.#piecesArrived.has(key)) return false;
    this.#piecesArrived.add(key);
    return true;
  }

  /**
   * A request for a piece failed: asked again unless another source still
   * owes it or sent it already.
   */
  #release(file: number, piece: number): void {
    if (this.#files[file].pieces.length === 1) {
      this.#copies[file]--;
      if (this.#copies[file] === 0 && !this.#arrived[file]) this.#retry.push([file, piece]);
      return;
    }
    const key = file * PIECES_PER_KEY + piece;
    if (this.#lessCopies(key) === 0 && !this.#piecesArrived.has(key)) {
      this.#retry.push([file, piece]);
    }
  }

  /**
   * The copy of a piece that arrived first is of no use (corrupt, or its
   * writer failed): asked again unless another source still owes it.
   */
  #lost(file: number, piece: number): void {
    if (this.#files[file].pieces.length === 1) {
      this.#arrived[file] = 0;
      if (this.#copies[file] === 0) this.#retry.push([file, piece]);
      return;
    }
    const key = file * PIECES_PER_KEY + piece;
    this.#piecesArrived.delete(key);
    if (!this.#pieceCopies.has(key)) this.#retry.push([file, piece]);
  }

  /** One request fewer for the piece `key` of a file of several pieces: how many are left. */
  #lessCopies(key: number): number {
    const left = (this.#pieceCopies.get(key) ?? 1) - 1;
    if (left > 0) this.#pieceCopies.set(key, left);
    else this.#pieceCopies.delete(key);
    return left;
  }

  /** Whether every piece still needed has been asked for (none waits to be asked again). */
  #allAsked(): boolean {
    if (this.#retry.length > 0) return false;
    const files = this.#files;
    while (
      this.#firstUnasked < files.length &&
      (this.#remaining[this.#firstUnasked] === 0 ||
        this.#nextPiece[this.#firstUnasked] >= files[this.#firstUnasked].pieces.length)
    ) this.#firstUnasked++;
    return this.#firstUnasked === files.length;
  }

  /**
   * The endgame: asks idle `link` (nothing of its own in flight) for pieces
   * one other source was asked for and has not sent: a piece of a file of
   * several, else small files in file order, together in one batch. Whether
   * it asked for any.
   */
  #endgame(link: Link): boolean {
    for (const [key, copies] of this.#pieceCopies) {
      const file = Math.floor(key / PIECES_PER_KEY);
      if (copies >= ENDGAME_COPIES || this.#piecesArrived.has(key) || !this.#holds(link, file)) {
        continue;
      }
      this.#request(link, file, key - file * PIECES_PER_KEY);
      return true;
    }
    const files = this.#files;
    while (this.#firstOpen < files.length && this.#remaining[this.#firstOpen] === 0) {
      this.#firstOpen++;
    }
    const most = link.noBatches
      ? 1
      : Math.min(this.#options.batchItems ?? DEFAULT_BATCH_ITEMS, MAX_BATCH_ITEMS);
    const batch: number[] = [];
    let bytes = 0;
    for (let file = this.#firstOpen; file < files.length && batch.length < most; file++) {
      if (
        files[file].pieces.length !== 1 || this.#arrived[file] ||
        this.#copies[file] === 0 || this.#copies[file] >= ENDGAME_COPIES ||
        !this.#holds(link, file)
      ) continue;
      if (link.noBatches || !this.#batchable(file)) {
        if (batch.length > 0) continue;
        this.#request(link, file, 0);
        return true;
      }
      if (batch.length > 0 && bytes + files[file].size > this.#batchBytes()) break;
      batch.push(file);
      bytes += files[file].size;
    }
    if (batch.length === 0) return false;
    this.#sendBatch(link, batch, bytes);
    return true;
  }

  /** Whether anything is under way: a source connecting, a request out, a piece being stored. */
  #busy(): boolean {
    return this.#storing > 0 || this.#placing > 0 ||
      this.#live().some((link) => link.inFlight > 0 || !link.client || link.queuedPlace !== null);
  }

  #request(link: Link, file: number, piece: number): void {
    const planned = this.#files[file];
    const length = pieceLength(fileManifestOf(planned), piece);
    this.#ask(file, piece);
    link.inFlight++;
    link.inFlightBytes += length;
    this.#heldBytes += length;
    const deadlineMs = (this.#options.pieceGraceMs ?? 10_000) + Math.ceil(length / 65536 * 1000);
    const params = { contentId: this.#contentId(file), index: piece, ticket: this.#ticket };
    this.#background(
      link.client!.callWithBody("piece", params, length, { deadlineMs }).then(
        ({ body }) => this.#onPiece(link, file, piece, body),
        (error) => this.#onFailed(link, file, piece, length, toShoalError(error)),
      ),
    );
  }

  /** The content id of the planned file at `file`. */
  #contentId(file: number): string {
    return this.#idOf(this.#files[file]);
  }

  async #onPiece(link: Link, file: number, piece: number, body: Uint8Array): Promise<void> {
    link.inFlight--;
    link.inFlightBytes -= body.length;
    const planned = this.#files[file];
    const length = body.length;
    try {
      if (this.#finished) return;
      // Another source sent it first (the endgame asked both): this copy goes unread.
      if (!this.#claim(file, piece)) return this.#pump();
      if (sha256Hex(body) !== planned.pieces[piece]) {
        this.#lost(file, piece);
        this.#drop(link, `sent a corrupt piece (of ${planned.path})`);
        return;
      }
      this.#storing++;
      // Keep the source busy while this piece is written (as a file's swarm does).
      this.#pump();
      await this.#store(file, piece, body).finally(() => this.#storing--);
    } catch (error) {
      return this.#fail(toShoalError(error));
    } finally {
      this.#heldBytes -= length;
      this.#buffers.release(body);
    }
    await this.#verified(link, file, length);
    if (this.#finished) return;
    this.#tellProgress();
    if (this.#filesLeft === 0) return this.#finish();
    this.#pump();
  }

  /** Counts a piece verified and written; a file whose last piece it was goes into place. */
  async #verified(
    link: Link,
    file: number,
    length: number,
    identity?: FileIdentity,
  ): Promise<void> {
    link.pieces++;
    link.bytes += length;
    this.#fruitlessLooks = 0;
    this.#verifiedBytes += length;
    if (--this.#remaining[file] === 0) await this.#complete(file, identity);
  }

  /** Whether a file is asked for in a `pieces` batch: one piece, under BATCHED_BELOW_BYTES. */
  #batchable(file: number): boolean {
    const planned = this.#files[file];
    return planned.pieces.length === 1 && planned.size < BATCHED_BELOW_BYTES &&
      (this.#options.batchItems ?? DEFAULT_BATCH_ITEMS) > 1;
  }

  /**
   * Asks `link` for `first` and the next small files it should fetch, in one
   * `pieces` request (a file of several pieces met on the way is left for
   * the next request). One request, one reply frame and one body for many
   * files: no round of protocol per file on either side.
   */
  #requestBatch(link: Link, first: number): void {
    const most = Math.min(link.batchItems, this.#options.batchItems ?? DEFAULT_BATCH_ITEMS);
    link.batchItems = Math.min(MAX_BATCH_ITEMS, most * 2);
    const maxBytes = this.#batchBytes();
    const files = [first];
    let bytes = this.#files[first].size;
    while (files.length < most) {
      const unit = this.#pick(link);
      if (!unit) break;
      const size = this.#files[unit[0]].size;
      if (!this.#batchable(unit[0]) || bytes + size > maxBytes) {
        // First in line for the next request to this source.
        this.#retry.unshift(unit);
        break;
      }
      files.push(unit[0]);
      bytes += size;
    }
    this.#sendBatch(link, files, bytes);
  }

  /** Most bytes of one `pieces` request. */
  #batchBytes(): number {
    return Math.min(this.#options.batchBytes ?? 1024 * 1024, MAX_BATCH_BYTES);
  }

  /** Asks `link` for `files` (small files of one piece, `bytes` in all) in one `pieces` request. */
  #sendBatch(link: Link, files: number[], bytes: number): void {
    for (const file of files) this.#ask(file, 0);
    link.inFlight++;
    link.inFlightBytes += bytes;
    this.#heldBytes += bytes;
    const lengths = files.map((file) => this.#files[file].size);
    const items = files.map((file) => ({ contentId: this.#contentId(file), index: 0 }));
    const deadlineMs = (this.#options.pieceGraceMs ?? 10_000) + Math.ceil(bytes / 65536 * 1000);
    this.#background(
      link.client!.callWithBody("pieces", { items, ticket: this.#ticket }, undefined, {
        deadlineMs,
        // Checked before the body is read: a reply that does not answer this very batch fails.
        checkResult: (result) => checkBatchReply(lengths, result),
      }).then(
        ({ result, body }) => this.#onBatch(link, files, bytes, result.items, body),
        (error) => this.#onBatchFailed(link, files, bytes, toShoalError(error)),
      ),
    );
  }

  /**
   * A batch arrived: each file sent is verified and written as a piece is;
   * each file refused (its own error) goes back to be asked again, of
   * another source if this one lacks it. A corrupt file drops the source;
   * the files of the batch that verified are kept.
   */
  async #onBatch(
    link: Link,
    files: number[],
    asked: number,
    items: BatchItem[],
    body: Uint8Array,
  ): Promise<void> {
    link.inFlight--;
    link.inFlightBytes -= asked;
    let lent = false;
    try {
      if (this.#finished) return;
      if (this.#placer?.ready && !this.#whole.slow) {
        lent = true;
        await this.#placeOnWorker(link, files, items, body);
      } else await this.#placeHere(link, files, items, body);
    } catch (error) {
      return this.#fail(toShoalError(error));
    } finally {
      this.#heldBytes -= asked;
      if (!lent) this.#buffers.release(body);
    }
    if (this.#finished) return;
    if (this.#filesLeft === 0) return this.#finish();
    this.#pump();
  }

  /** Verifies a batch's files and puts them in place on this thread, a few at once. */
  async #placeHere(
    link: Link,
    files: number[],
    items: BatchItem[],
    body: Uint8Array,
  ): Promise<void> {
    const good: [number, Uint8Array][] = [];
    for (const [file, at, length] of this.#sentItems(link, files, items)) {
      const bytes = body.subarray(at, at + length);
      if (sha256Hex(bytes) !== this.#files[file].pieces[0]) {
        this.#corrupt(link, file);
        continue;
      }
      good.push([file, bytes]);
    }
    // Keep the source busy while these are written (as for a piece).
    this.#pump();
    // A few written at once, as pieces are; every lane ends before the body's buffer goes back
    // to the pool (a write in flight still reads it), even when one of them fails.
    let next = 0;
    let failed: unknown = null;
    const lane = async () => {
      while (next < good.length && !this.#finished && failed === null) {
        const [file, bytes] = good[next++];
        this.#storing++;
        try {
          await this.#store(file, 0, bytes);
        } catch (error) {
          failed ??= error;
          return;
        } finally {
          this.#storing--;
        }
        await this.#verified(link, file, bytes.length);
        if (this.#finished) return;
        this.#tellProgress();
      }
    };
    // Lanes share MAX_STORING with the other batches' writes under way (each batch one at least).
    const lanes = Math.max(1, Math.min(MAX_STORING - this.#storing, good.length));
    await Promise.all(Array.from({ length: lanes }, lane));
    if (failed !== null) throw failed;
  }

  /**
   * The files a batch sent, each with where its bytes start in the body and
   * their length; a file it did not send (its own error) is asked again.
   */
  *#sentItems(
    link: Link,
    files: number[],
    items: BatchItem[],
  ): Generator<[file: number, at: number, length: number]> {
    let at = 0;
    for (let i = 0; i < files.length; i++) {
      const item = items[i];
      if ("error" in item) {
        this.#refusedItem(link, files[i], item.error);
        continue;
      }
      const start = at;
      at += item.length;
      // Another source sent it first (the endgame asked both): this copy goes unread.
      if (this.#claim(files[i], 0)) yield [files[i], start, item.length];
    }
  }

  /** A file a batch did not send (its own error): asked again, of another source if this lacks it. */
  #refusedItem(link: Link, file: number, error: { code: string; message: string }): void {
    this.#release(file, 0);
    // As a failed piece request: it lacks that file after all, or it is of no use now.
    if (error.code === "NOT_FOUND" || error.code === "CONTENT_CHANGED") link.lacks.add(file);
    else this.#drop(link, error.message);
  }

  /** A file whose bytes did not match: asked again, and its source dropped. */
  #corrupt(link: Link, file: number): void {
    this.#lost(file, 0);
    this.#drop(link, `sent a corrupt piece (of ${this.#files[file].path})`);
  }

  /**
   * Hands a batch's files to the placing worker (its body's buffer with
   * them, which comes back to the pool) and counts each as the worker says.
   * Should the worker fail, the files it held are asked again.
   */
  async #placeOnWorker(
    link: Link,
    files: number[],
    items: BatchItem[],
    body: Uint8Array,
  ): Promise<void> {
    const jobs: PlaceJob[] = [];
    const jobFiles: number[] = [];
    for (const [file, at, length] of this.#sentItems(link, files, items)) {
      const planned = this.#files[file];
      const path = this.#options.place(planned.path);
      jobs.push({
        at: body.byteOffset + at,
        length,
        sha256: planned.pieces[0],
        partPath: this.#wholePart(path),
        path,
      });
      jobFiles.push(file);
    }
    this.#placing++;
    let placed;
    try {
      const promise = this.#placer!.place(body.buffer as ArrayBuffer, jobs);
      // Keep the source busy while these are written (as for a piece).
      this.#pump();
      placed = await promise;
    } catch {
      if (this.#finished) return;
      for (const file of jobFiles) this.#lost(file, 0);
      return;
    } finally {
      this.#placing--;
    }
    this.#buffers.adopt(placed.buffer);
    if (this.#finished) return;
    const { outcomes, placingMs } = placed;
    // Timed as files written here are: a disk slow to create files sends batches back here.
    const written = outcomes.filter((outcome) => typeof outcome === "object" && "size" in outcome)
      .length;
    for (let i = 0; i < written; i++) this.#whole.observe(placingMs / written);
    for (let i = 0; i < jobFiles.length; i++) {
      const file = jobFiles[i];
      const outcome = outcomes[i];
      if (outcome === undefined) break;
      if (outcome === "corrupt") {
        this.#corrupt(link, file);
        continue;
      }
      if ("error" in outcome) {
        throw new ShoalError(outcome.error.code as ShoalError["code"], outcome.error.message);
      }
      await this.#verified(link, file, jobs[i].length, outcome);
      if (this.#finished) return;
    }
    this.#tellProgress();
  }

  /** A whole batch failed: its files are asked again, as a failed piece is. */
  #onBatchFailed(link: Link, files: number[], asked: number, error: ShoalError): void {
    link.inFlight--;
    link.inFlightBytes -= asked;
    this.#heldBytes -= asked;
    if (this.#finished) return;
    for (const file of files) this.#release(file, 0);
    if (error.code === "BUSY" && !link.dropped) {
      // Its account's batches fill what the source holds for it (other fetches at once): not a
      // reason to drop it, as a piece's BUSY (a full queue) is.
      link.noBatches = true;
      return this.#pump();
    }
    this.#refusedBy(link, files, error);
  }

  /** Tells `onProgress` where the download stands: after each piece, and as queue places change. */
  #tellProgress(): void {
    this.#options.onProgress?.({
      verifiedBytes: this.#verifiedBytes,
      totalBytes: this.#totalBytes,
      filesDone: this.#files.length - this.#filesLeft,
      totalFiles: this.#files.length,
      activeSources: this.#live().length,
      queued: this.queuedAt,
    });
  }

  #onFailed(link: Link, file: number, piece: number, length: number, error: ShoalError): void {
    link.inFlight--;
    link.inFlightBytes -= length;
    this.#heldBytes -= length;
    if (this.#finished) return;
    this.#release(file, piece);
    this.#refusedBy(link, [file], error);
  }

  /** What a failed request says of its source, whose `files` were put back to ask again. */
  #refusedBy(link: Link, files: number[], error: ShoalError): void {
    if (link.dropped) return this.#pump();
    if (error.code === "QUEUED") return this.#queued(link, this.#contentId(files[0]));
    if (error.code === "NOT_FOUND" || error.code === "CONTENT_CHANGED") {
      // It does not have that file after all (say, its owner changed it): others may.
      for (const file of files) link.lacks.add(file);
      return this.#pump();
    }
    this.#drop(link, error.code === "TIMEOUT" ? `too slow: ${error.message}` : error.message);
  }

  /**
   * Writes a verified piece: a file of one piece whole and into place at
   * once (whole_file.ts), else into its part file.
   */
  async #store(file: number, piece: number, bytes: Uint8Array): Promise<void> {
    const planned = this.#files[file];
    const path = this.#options.place(planned.path);
    if (planned.pieces.length === 1) {
      return await this.#whole.place(this.#wholePart(path), path, bytes);
    }
    let entry = this.#open.get(file);
    if (!entry) {
      entry = {
        part: PartFile.open(path + PART_SUFFIX, fileManifestOf(planned)),
        have: new Bitfield(planned.pieces.length),
      };
      this.#open.set(file, entry);
    }
    await (await entry.part).write(piece, bytes);
    entry.have.set(piece);
  }

  /** Where a whole file is written before it is renamed to `path` (itself, with `direct`). */
  #wholePart(path: string): string {
    return this.#options.direct ? path : path + PART_SUFFIX;
  }

  /**
   * Renames a file whose every piece verified into place (a file of one
   * piece is there already: {@link #store} put it in place whole).
   */
  async #complete(file: number, identity?: FileIdentity): Promise<void> {
    const planned = this.#files[file];
    if (planned.pieces.length === 1) return this.#placed(file, identity);
    const path = this.#options.place(planned.path);
    const partPath = path + PART_SUFFIX;
    const entry = this.#open.get(file);
    this.#open.delete(file);
    // Counted as storing: renames wait on the disk as writes do.
    this.#storing++;
    try {
      if (planned.pieces.length === 0) {
        await this.#whole.place(this.#wholePart(path), path, new Uint8Array());
      } else {
        if (entry) {
          const part = await entry.part;
          await part.finish();
          await part.close();
        }
        await Deno.rename(partPath, path);
      }
    } catch (error) {
      return this.#fail(toShoalError(error));
    } finally {
      this.#storing--;
    }
    this.#placed(file);
  }

  /** A file is under its final name. */
  #placed(file: number, identity?: FileIdentity): void {
    this.#filesLeft--;
    this.#options.onFileDone?.(file, identity);
  }

  /** Where this download waits in sources' queues for an upload slot. */
  get queuedAt(): QueuedAt[] {
    return this.#live().filter((link) => link.queuedPlace !== null && link.queuedPlace !== Infinity)
      .map((link) => ({ owner: link.source.owner, place: link.queuedPlace! }));
  }

  /**
   * The source has no upload slot for us (as in a file's swarm): its files go
   * to other sources while we wait our turn, asking our place (which keeps us
   * in its queue) until it serves us.
   */
  #queued(link: Link, contentId: string): void {
    if (startWaiting(link)) this.#background(this.#askPlace(link, contentId));
    this.#pump();
  }

  async #askPlace(link: Link, contentId: string): Promise<void> {
    // Bounded: each turn waits the source's retryMs, and ends with the download or the source.
    while (!this.#finished && !link.dropped && link.client) {
      let retryMs: number;
      try {
        retryMs = await askQueuePlace(
          link.client,
          link,
          { contentId, ticket: this.#ticket },
          this.#options.pieceGraceMs ?? 10_000,
        );
      } catch (error) {
        // BUSY: its queue is full. Either way this source is of no use to this download now.
        return this.#drop(link, toShoalError(error).message);
      }
      if (this.#finished) return;
      // A place in line is news to the user even while no piece arrives (say, the only source).
      this.#tellProgress();
      if (link.queuedPlace === null) return this.#pump();
      await delay(Math.max(100, retryMs), { signal: this.#stopped.signal }).catch(() => {});
    }
  }

  #drop(link: Link, reason: string): void {
    if (link.dropped || this.#finished) return;
    link.dropped = reason;
    link.client?.close();
    this.#pump();
  }

  /**
   * Asks the tracker again for the sources of what is left, while nothing is
   * under way; gives up after a while with none that has it.
   */
  async #lookForSources(): Promise<void> {
    if (this.#finished || this.#looking) return;
    this.#looking = true;
    try {
      // Counted across calls until a piece arrives: a source that answers at once that it
      // lacks a file ends each look busy, and must not make the looking start over for ever.
      for (; this.#fruitlessLooks <= NO_SOURCE_RETRIES; this.#fruitlessLooks++) {
        if (this.#fruitlessLooks > 0) {
          await delay(1000, { signal: this.#stopped.signal }).catch(() => {});
          if (this.#finished) return;
        }
        try {
          const remaining: number[] = [];
          for (let i = 0; i < this.#files.length; i++) {
            if (this.#remaining[i] > 0) remaining.push(i);
          }
          const found = await this.#options.findSources(remaining);
          this.#ticket = found.ticket;
          // A source that lacked a file may have it now; the ones dropped stay dropped.
          for (const link of this.#live()) {
            link.lacks.clear();
            link.cursor = 0;
          }
          this.#addSources(found.sources);
        } catch {
          // The tracker may be down; the sources we have carry on.
        }
        if (this.#finished) return;
        this.#pump();
        if (this.#filesLeft === 0) return;
        if (this.#busy()) {
          this.#fruitlessLooks++;
          return;
        }
      }
    } finally {
      this.#looking = false;
    }
    const reasons = [...new Set(this.dropped.map((d) => `${d.owner}: ${d.reason}`))];
    // The files left, by name when a few: an owner may have removed or changed them.
    const left: string[] = [];
    for (let i = 0; i < this.#files.length && left.length < 4; i++) {
      if (this.#remaining[i] > 0) left.push(this.#files[i].path);
    }
    const named = this.#filesLeft <= 3
      ? `: ${left.join(", ")}`
      : `: ${left.slice(0, 3).join(", ")}, ...`;
    const lacks = this.#live().some((link) => link.lacks.size > 0);
    const lacking = lacks ? "; their online owners no longer have them as they published them" : "";
    this.#fail(
      new ShoalError(
        "UNREACHABLE",
        `no source left for ${this.#filesLeft} ${
          this.#filesLeft === 1 ? "file" : "files"
        }${named}${lacking}${reasons.length ? ` (${reasons.join("; ")})` : ""}`,
        // Running it again meets the same owners: what they have changed must be published first.
        lacks ? { hint: "ask the owner to publish the folder again (it changed since)" } : {},
      ),
    );
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
    this.#stopped.abort();
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    for (const link of this.#links) link.client?.close();
  }
}
