/**
 * Verifying and putting in place the small files of `pieces` batches on a
 * worker thread, while the main thread reads the next batches off the
 * sockets. Per file of 16 KiB this is about 50 µs (SHA-256, the kernel's
 * create, write and rename); on the main thread it bounded a folder fetch,
 * which spent the rest of its time reading. The worker gets the batch's
 * buffer (transferred, not copied) and gives it back with its answer.
 *
 * One worker: a second one, on two cores with the source on the same
 * machine, took CPU from the others and made fetches slower and noisier.
 */
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { sha256Hex } from "./content_id.ts";
import { type FileIdentity, identityOf } from "./file_identity.ts";
import { placeWholeSync } from "./whole_file.ts";
import { isLoadFailure, startWorker } from "./quiet_worker.ts";

/** One file of a batch to verify and put in place: its bytes are `length` at `at` of the buffer. */
export interface PlaceJob {
  at: number;
  length: number;
  /** The SHA-256 its bytes must have (its one piece's hash). */
  sha256: string;
  /** Where it is written first (`path` itself when it needs no rename: see FolderDownload's `direct`). */
  partPath: string;
  path: string;
}

/**
 * What became of a job: the file in place and what it is on disk,
 * `"corrupt"` (its bytes do not match), or the error that stopped the batch
 * there (the jobs after it have no outcome).
 */
export type PlaceOutcome =
  | FileIdentity
  | "corrupt"
  | { error: { code: string; message: string } };

/** What became of a batch's jobs, in order, and the milliseconds their files took to write. */
export interface PlacedBatch {
  outcomes: PlaceOutcome[];
  placingMs: number;
}

/** A batch as posted to the worker: the buffer is transferred, and comes back. */
export interface PlaceBatch {
  id: number;
  buffer: ArrayBuffer;
  jobs: PlaceJob[];
}

/**
 * Verifies each job's bytes and puts the file in place (placeWholeSync of
 * whole_file.ts: created exclusively, whatever was there removed first,
 * renamed over `path`), and reads its identity. Stops at the first failure
 * to write.
 */
export function placeBatchSync(buffer: Uint8Array, jobs: PlaceJob[]): PlacedBatch {
  const outcomes: PlaceOutcome[] = [];
  let placingMs = 0;
  for (const job of jobs) {
    const bytes = buffer.subarray(job.at, job.at + job.length);
    if (sha256Hex(bytes) !== job.sha256) {
      outcomes.push("corrupt");
      continue;
    }
    const started = performance.now();
    try {
      outcomes.push(placeIdentifiedSync(job.partPath, job.path, bytes));
    } catch (error) {
      const { code, message } = toShoalError(error);
      outcomes.push({ error: { code, message } });
      break;
    } finally {
      placingMs += performance.now() - started;
    }
  }
  return { outcomes, placingMs };
}

/** {@link placeWholeSync}, and the identity of what it wrote. */
function placeIdentifiedSync(partPath: string, path: string, bytes: Uint8Array): FileIdentity {
  placeWholeSync(partPath, path, bytes);
  // One lstat (its name's entry is in the cache): cheaper than four calls on an opened file.
  return identityOf(Deno.lstatSync(path));
}

/**
 * The worker that verifies and places batches ({@link placeBatchSync}).
 * Batches go to it once it said it started (until then, and where it cannot
 * start, the caller places them itself); should it fail, the batches it held
 * fail, and their files are asked again.
 *
 * @example
 * ```ts
 * using placer = new BatchPlacer();
 * // once placer.ready:
 * const { outcomes, buffer } = await placer.place(body.buffer, jobs);
 * ```
 */
export class BatchPlacer {
  #worker: Worker | null = null;
  #ready = false;
  readonly #waiting = new Map<
    number,
    PromiseWithResolvers<PlacedBatch & { buffer: ArrayBuffer }>
  >();
  #nextId = 0;

  /** Starts the worker (`workerModule`: tests only). */
  constructor(workerModule = new URL("./batch_placer_worker.ts", import.meta.url).href) {
    try {
      const worker = startWorker(workerModule);
      worker.onmessage = (event: MessageEvent) => {
        if (isLoadFailure(event.data)) {
          return this.#failed(
            `the worker that writes small files did not start: ${event.data.workerLoadFailed}`,
          );
        }
        this.#answered(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        this.#failed(`the worker that writes small files stopped: ${event.message}`);
      };
      worker.postMessage("ready?");
      this.#worker = worker;
    } catch {
      // No worker here: the caller places every batch itself.
    }
  }

  /** Whether batches may go to the worker now. */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Verifies and places `jobs`, whose bytes are in `buffer` (transferred to
   * the worker: the caller no longer has it); resolves to their outcomes and
   * the buffer back.
   */
  place(buffer: ArrayBuffer, jobs: PlaceJob[]): Promise<PlacedBatch & { buffer: ArrayBuffer }> {
    if (!this.#worker || !this.#ready) {
      return Promise.reject(
        new ShoalError("IO", "the worker that writes small files is not running"),
      );
    }
    const id = this.#nextId++;
    const waiting = Promise.withResolvers<PlacedBatch & { buffer: ArrayBuffer }>();
    this.#waiting.set(id, waiting);
    this.#worker.postMessage({ id, buffer, jobs } satisfies PlaceBatch, [buffer]);
    return waiting.promise;
  }

  #answered(reply: "ready" | (PlacedBatch & { id: number; buffer: ArrayBuffer })): void {
    if (reply === "ready") {
      this.#ready = this.#worker !== null;
      return;
    }
    const waiting = this.#waiting.get(reply.id);
    this.#waiting.delete(reply.id);
    waiting?.resolve(reply);
  }

  #failed(message: string): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#ready = false;
    for (const waiting of this.#waiting.values()) waiting.reject(new ShoalError("IO", message));
    this.#waiting.clear();
  }

  /** Ends the worker; batches it still holds fail. */
  close(): void {
    this.#failed("stopped");
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
