/**
 * Hashing small files on every core: a pool of workers (lib/peer/hash_worker.ts),
 * one a core, each given whole batches of paths, so a folder of thousands of
 * small files costs one message a batch, not an async operation a file.
 * Where a worker cannot start (a runtime without workers, a compiled binary
 * without the module), its batches are hashed on the calling thread instead.
 */
import { nextTurn } from "../async/next_turn.ts";
import { isLoadFailure, startWorker, type WorkerLoadFailure } from "./quiet_worker.ts";
import { type ErrorCode, ShoalError } from "../protocol/errors.ts";
import {
  hashSmallFile,
  type SeenFile,
  SMALL_FILE_BYTES,
  type SmallFileHash,
} from "./small_file_hash.ts";

/** One file to hash: what the walk saw, and what it was when last published (or null). */
export interface HashJob {
  path: string;
  seen: SeenFile;
  before: SeenFile | null;
}

/** A file's outcome: hashed, unchanged since `before` (null), or the error that stops the publish. */
export type HashOutcome = SmallFileHash | null | {
  error: { code: ErrorCode; message: string; hint?: string };
};

/**
 * A batch sent to a worker, flat: arrays of strings and numbers, not an
 * object a file (the structured clone of one costs more than opening the
 * file). Job `i` is `paths[i]`, seen as `fileIds[i]`, `numbers[2i]` bytes and
 * time `numbers[2i + 1]`; `befores[i]` is its earlier `[fileId, size,
 * mtimeMs]`, or null.
 */
export interface HashBatch {
  id: number;
  paths: string[];
  fileIds: (string | null)[];
  numbers: number[];
  befores: ([string | null, number, number] | null)[];
}

/**
 * A worker's answer, flat as {@link HashBatch}: file `i`'s piece hash is
 * `pieces[i]` ("" for an empty file, null when unchanged since `before`), its
 * content id `contentIds[i]`; `identities[i]` is null where the file is as the
 * walk saw it, else `[fileId, size, mtimeMs]` as read. Fewer files than jobs
 * when one failed: `error` is its failure.
 */
export interface HashReply {
  id: number;
  pieces: (string | null)[];
  contentIds: string[];
  identities: ([string | null, number, number] | null)[];
  error?: { code: ErrorCode; message: string; hint?: string };
}

/** `jobs` as a {@link HashBatch}. */
export function encodeBatch(id: number, jobs: HashJob[]): HashBatch {
  const paths: string[] = [];
  const fileIds: (string | null)[] = [];
  const numbers: number[] = [];
  const befores: ([string | null, number, number] | null)[] = [];
  for (const { path, seen, before } of jobs) {
    paths.push(path);
    fileIds.push(seen.fileId);
    numbers.push(seen.size, seen.mtimeMs);
    befores.push(before && [before.fileId, before.size, before.mtimeMs]);
  }
  return { id, paths, fileIds, numbers, befores };
}

/** The jobs of a {@link HashBatch}. */
export function decodeBatch({ paths, fileIds, numbers, befores }: HashBatch): HashJob[] {
  return paths.map((path, i) => {
    const before = befores[i];
    return {
      path,
      seen: { fileId: fileIds[i], size: numbers[2 * i], mtimeMs: numbers[2 * i + 1] },
      before: before && { fileId: before[0], size: before[1], mtimeMs: before[2] },
    };
  });
}

/** The outcomes of a batch's jobs as a {@link HashReply}. */
export function encodeReply(id: number, jobs: HashJob[], outcomes: HashOutcome[]): HashReply {
  const reply: HashReply = { id, pieces: [], contentIds: [], identities: [] };
  outcomes.forEach((outcome, i) => {
    if (outcome && "error" in outcome) {
      reply.error = outcome.error;
      return;
    }
    reply.pieces.push(outcome ? outcome.manifest.pieces[0] ?? "" : null);
    reply.contentIds.push(outcome?.contentId ?? "");
    const identity = outcome?.identity;
    reply.identities.push(
      !identity || identity === jobs[i].seen
        ? null
        : [identity.fileId, identity.size, identity.mtimeMs],
    );
  });
  return reply;
}

/** The outcomes a {@link HashReply} carries for `jobs`. */
function decodeReply(jobs: HashJob[], reply: HashReply): HashOutcome[] {
  const outcomes: HashOutcome[] = reply.pieces.map((piece, i) => {
    if (piece === null) return null;
    const seen = reply.identities[i];
    const identity = seen ? { fileId: seen[0], size: seen[1], mtimeMs: seen[2] } : jobs[i].seen;
    return {
      manifest: {
        version: 1,
        size: identity.size,
        pieceSize: SMALL_FILE_BYTES,
        pieces: piece === "" ? [] : [piece],
      },
      contentId: reply.contentIds[i],
      identity,
    };
  });
  if (reply.error) outcomes.push({ error: reply.error });
  return outcomes;
}

/** Workers at most, whatever the core count: past this, the disk is the limit. */
const MAX_WORKERS = 8;

/** The hashes of a batch's files, in order; throws the first failure as a ShoalError. */
function settle(jobs: HashJob[], outcomes: HashOutcome[]): (SmallFileHash | null)[] {
  const last = outcomes[outcomes.length - 1];
  if (last && "error" in last) {
    throw new ShoalError(last.error.code, last.error.message, { hint: last.error.hint });
  }
  if (outcomes.length !== jobs.length) {
    throw new ShoalError(
      "INTERNAL",
      `a hashing worker answered ${outcomes.length} of ${jobs.length} files`,
    );
  }
  return outcomes as (SmallFileHash | null)[];
}

/** Hashes a batch on this thread, with a turn of the event loop now and then (Ctrl-C, progress). */
async function hashHere(jobs: HashJob[], signal?: AbortSignal): Promise<(SmallFileHash | null)[]> {
  const outcomes: (SmallFileHash | null)[] = [];
  for (const { path, seen, before } of jobs) {
    if (signal?.aborted) throw new ShoalError("CANCELLED", "stopped hashing");
    outcomes.push(hashSmallFile(path, seen, before));
    if (outcomes.length % 64 === 0) await nextTurn();
  }
  return outcomes;
}

interface Waiting {
  jobs: HashJob[];
  resolve: (hashes: (SmallFileHash | null)[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Batches a worker holds at once (some 100 ms of work): a calling thread
 * busy walking hands out the workers' answers only now and then (a
 * `setImmediate` turn does not always deliver a worker's message), and a
 * worker must not idle until then; the batches are alike, so workers that
 * take them in turn finish together.
 */
const IN_FLIGHT = 32;

/**
 * Hashes batches of small files on workers, one a core (at most 8), started
 * once a folder has {@link START_AT} small files (fewer are hashed on the
 * calling thread sooner than a worker starts), each given whole batches from
 * one queue. The calling thread hashes only where no worker runs, in
 * {@link help}: busy with its own hashing, it would hand the workers their
 * answers (and new batches) too late, and they would idle. {@link close}
 * (which a `using` declaration calls) ends the workers: every batch not yet
 * hashed then fails with CANCELLED.
 *
 * @example
 * ```ts
 * using pool = new HashPool();
 * const hashed = pool.hash([{ path: "/tmp/a.txt", seen, before: null }]);
 * await pool.help();
 * const [hash] = await hashed;
 * ```
 */
export class HashPool implements Disposable {
  /**
   * Small files queued before workers start: below this (some 25 ms of
   * hashing), starting a worker (some 35 ms of CPU) costs more than it saves.
   */
  static readonly START_AT = 1024;
  readonly #size: number;
  readonly #signal: AbortSignal | undefined;
  /** The workers' module: hash_worker.ts (another only in tests, to see a worker fail). */
  readonly #workerModule: string;
  readonly #queue: Waiting[] = [];
  #queuedFiles = 0;
  #workers: { worker: Worker; busy: number }[] | null = null;
  /** Batches sent and not yet answered, by id, with the worker each went to. */
  readonly #waiting = new Map<number, Waiting & { worker: Worker }>();
  #nextId = 0;
  /** Set once a worker failed to start or run: every batch from then on is hashed here. */
  #broken = false;
  #closed = false;

  /**
   * `size` workers (by default one a core, at most 8, and none on one core:
   * 0 hashes all on the calling thread); aborting `signal` closes the pool;
   * `workerModule` replaces hash_worker.ts (tests only).
   */
  constructor(options: { size?: number; signal?: AbortSignal; workerModule?: string } = {}) {
    const cores = navigator.hardwareConcurrency || 1;
    this.#size = Math.max(0, Math.min(options.size ?? (cores > 1 ? cores : 0), MAX_WORKERS));
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#workerModule = options.workerModule ??
      new URL("./hash_worker.ts", import.meta.url).href;
  }

  readonly #onAbort = () => this.close();

  /** Workers running now (0 before the first start, after {@link close}, or where none can start). */
  get workers(): number {
    return this.#broken ? 0 : this.#workers?.length ?? 0;
  }

  /**
   * Queues `jobs` for hashing (by a worker, or by {@link help}); resolves to
   * their hashes in order, null for a file unchanged since `before`.
   */
  hash(jobs: HashJob[]): Promise<(SmallFileHash | null)[]> {
    if (this.#closed || this.#signal?.aborted) {
      return Promise.reject(new ShoalError("CANCELLED", "stopped hashing"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<(SmallFileHash | null)[]>();
    this.#queue.push({ jobs, resolve, reject });
    this.#queuedFiles += jobs.length;
    this.#pump();
    return promise;
  }

  /**
   * Where no worker runs (too few files, one core, or workers that could not
   * start), hashes the queued batches on this thread, with a turn of the
   * event loop between batches for Ctrl-C and a progress bar; where workers
   * run, leaves the queue to them.
   */
  async help(): Promise<void> {
    while (!this.#closed && (this.#broken || !this.#workers)) {
      const next = this.#queue.shift();
      if (!next) return;
      try {
        next.resolve(await hashHere(next.jobs, this.#signal));
      } catch (error) {
        next.reject(error);
      }
      await nextTurn();
    }
  }

  /** Sends queued batches to workers with room for them (starting the workers when worth it). */
  #pump(): void {
    if (this.#broken || this.#closed || this.#size === 0) return;
    if (!this.#workers && this.#queuedFiles < HashPool.START_AT) return;
    const workers = this.#start();
    if (!workers) return;
    for (const slot of workers) {
      while (slot.busy < IN_FLIGHT && this.#queue.length > 0) {
        const next = this.#queue.shift()!;
        const id = this.#nextId++;
        this.#waiting.set(id, { ...next, worker: slot.worker });
        slot.busy++;
        slot.worker.postMessage(encodeBatch(id, next.jobs));
      }
    }
  }

  #start(): { worker: Worker; busy: number }[] | null {
    if (this.#workers) return this.#workers;
    const workers: { worker: Worker; busy: number }[] = [];
    try {
      for (let i = 0; i < this.#size; i++) {
        const worker = startWorker(this.#workerModule);
        const slot = { worker, busy: 0 };
        worker.onmessage = (event: MessageEvent<HashReply | WorkerLoadFailure>) => {
          if (isLoadFailure(event.data)) return this.#failed(worker);
          slot.busy--;
          this.#answered(event.data);
          this.#pump();
        };
        worker.onerror = (event) => {
          event.preventDefault();
          this.#failed(worker);
        };
        workers.push(slot);
      }
    } catch {
      for (const { worker } of workers) worker.terminate();
      this.#broken = true;
      return null;
    }
    this.#workers = workers;
    return workers;
  }

  #answered(reply: HashReply): void {
    const waiting = this.#waiting.get(reply.id);
    if (!waiting) return;
    this.#waiting.delete(reply.id);
    try {
      waiting.resolve(settle(waiting.jobs, decodeReply(waiting.jobs, reply)));
    } catch (error) {
      waiting.reject(error);
    }
  }

  /**
   * A worker that could not start (or died): its batches go back to the
   * queue, and every later one is hashed on this thread ({@link help}).
   */
  #failed(worker: Worker): void {
    this.#broken = true;
    worker.terminate();
    for (const [id, waiting] of this.#waiting) {
      if (waiting.worker !== worker) continue;
      this.#waiting.delete(id);
      this.#queue.unshift({ jobs: waiting.jobs, resolve: waiting.resolve, reject: waiting.reject });
    }
    // Hashed here, whether or not this thread is helping already.
    void this.help();
  }

  /** Ends the workers; batches not yet hashed fail with CANCELLED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    for (const { worker } of this.#workers ?? []) worker.terminate();
    this.#workers = null;
    const cancelled = () => new ShoalError("CANCELLED", "stopped hashing");
    for (const waiting of [...this.#waiting.values(), ...this.#queue]) waiting.reject(cancelled());
    this.#waiting.clear();
    this.#queue.length = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
