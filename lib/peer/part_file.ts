import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Manifest } from "../protocol/messages.ts";
import { toShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import { pieceLength, readFullyAt, sha256Hex } from "./manifest.ts";

/**
 * How many bytes may be written before a flush to disk starts in the
 * background. Without it every byte of a large download waits for the final
 * fsync (a third of a second per 512 MiB here); with it the disk writes
 * while the network transfers.
 */
const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;
/** Pieces written at once, each on its own handle. */
const WRITERS = 4;

/**
 * A download in progress on disk: the `.shoal-part` file, written piece by
 * piece at each piece's offset (so pieces from several sources land in any
 * order), and read back to serve verified pieces.
 *
 * Writes go through a `Deno.FsFile`, whose operations run on the runtime's
 * I/O threads: a `node:fs` write runs on the event loop itself, so a disk
 * throttling its writers stalled every connection of the download. Reads
 * are positional `node:fs` reads on a second handle, safe to run at once.
 *
 * @example
 * ```ts
 * await using part = await PartFile.open("plan.pdf.shoal-part", manifest);
 * await part.write(3, bytes);
 * ```
 */
export class PartFile implements AsyncDisposable {
  readonly path: string;
  readonly #manifest: Manifest;
  readonly #reader: FileHandle;
  /** Handles for writing: a write is a seek then a write, so each needs its own while it runs. */
  readonly #writers: Deno.FsFile[];
  readonly #idleWriters: Deno.FsFile[];
  /** A handle of its own for flushes, which would otherwise hold up a writer's next piece. */
  readonly #syncer: Deno.FsFile;
  readonly #waiting: ((writer: Deno.FsFile) => void)[] = [];
  readonly #writing = new Set<Promise<void>>();
  #unflushed = 0;
  #flushing: Promise<void> | null = null;
  #flushError: unknown = null;

  private constructor(
    path: string,
    manifest: Manifest,
    reader: FileHandle,
    [syncer, ...writers]: Deno.FsFile[],
  ) {
    this.path = path;
    this.#manifest = manifest;
    this.#reader = reader;
    this.#syncer = syncer;
    this.#writers = writers;
    this.#idleWriters = [...writers];
  }

  /** Opens (creating if needed) a part file; an existing one keeps its bytes for resuming. */
  static async open(path: string, manifest: Manifest): Promise<PartFile> {
    const writers: Deno.FsFile[] = [];
    try {
      for (let i = 0; i <= WRITERS; i++) {
        writers.push(await Deno.open(path, { read: true, write: true, create: true }));
      }
      return new PartFile(path, manifest, await open(path, "r"), writers);
    } catch (error) {
      for (const writer of writers) writer.close();
      throw toShoalError(error);
    }
  }

  /** Writes a piece at its offset. */
  write(index: number, bytes: Uint8Array): Promise<void> {
    const done = this.#writeAt(index * this.#manifest.pieceSize, bytes);
    const tracked = done.catch(() => {}).finally(() => this.#writing.delete(tracked));
    this.#writing.add(tracked);
    return done;
  }

  async #writeAt(position: number, bytes: Uint8Array): Promise<void> {
    const writer = this.#idleWriters.pop() ??
      await new Promise<Deno.FsFile>((resolve) => this.#waiting.push(resolve));
    try {
      await writer.seek(position, Deno.SeekMode.Start);
      let written = 0;
      while (written < bytes.length) written += await writer.write(bytes.subarray(written));
    } finally {
      const next = this.#waiting.shift();
      if (next) next(writer);
      else this.#idleWriters.push(writer);
    }
    this.#unflushed += bytes.length;
    if (this.#unflushed >= FLUSH_EVERY_BYTES && !this.#flushing) this.#flush();
  }

  /** Starts writing what is written so far to disk, without waiting for it. */
  #flush(): void {
    this.#unflushed = 0;
    this.#flushing = this.#syncer.syncData().catch((error) => {
      this.#flushError ??= error;
    }).finally(() => this.#flushing = null);
  }

  /**
   * Reads a piece back into `into` (the piece's length); false where the
   * file is too short (never written).
   */
  read(index: number, into: Uint8Array): Promise<boolean> {
    return readFullyAt(this.#reader, index * this.#manifest.pieceSize, into);
  }

  /**
   * Re-hashes the pieces a record says were verified, keeping only those that
   * still match: after a crash or power loss the record may be ahead of the disk.
   */
  async verify(claimed: Bitfield): Promise<Bitfield> {
    const have = new Bitfield(claimed.size);
    const buffer = new Uint8Array(this.#manifest.pieceSize);
    for (let index = 0; index < claimed.size; index++) {
      if (!claimed.has(index)) continue;
      const bytes = buffer.subarray(0, pieceLength(this.#manifest, index));
      if (await this.read(index, bytes) && sha256Hex(bytes) === this.#manifest.pieces[index]) {
        have.set(index);
      }
    }
    return have;
  }

  /** Trims or extends to the final size, and flushes to disk. */
  async finish(): Promise<void> {
    await Promise.all(this.#writing);
    await this.#flushing;
    if (this.#flushError) throw toShoalError(this.#flushError);
    try {
      await this.#syncer.truncate(this.#manifest.size);
      await this.#syncer.sync();
    } catch (error) {
      throw toShoalError(error);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#writing);
    await this.#flushing;
    await this.#reader.close().catch(() => {});
    for (const writer of [this.#syncer, ...this.#writers]) {
      try {
        writer.close();
      } catch {
        // Already closed.
      }
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
