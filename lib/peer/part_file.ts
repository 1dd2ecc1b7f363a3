import { constants, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Manifest } from "../protocol/messages.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import { pieceLength, readFullyAt, sha256Hex } from "./manifest.ts";

/**
 * How many bytes may be written before a flush to disk starts in the
 * background. Without it every byte of a large download waits for the final
 * fsync (a third of a second per 512 MiB here); with it the disk writes
 * while the network transfers.
 */
const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;
/**
 * A write on the event loop slower than this means the disk is pushing
 * back: the kernel holds writers up once too much waits to reach the disk.
 */
const SLOW_WRITE_MS = 50;
/** After such a write, writes go to the runtime's I/O threads for at least this long. */
const OFFLOAD_MS = 10_000;
/** Pieces written at once on the I/O threads, each on its own handle. */
const WRITERS = 4;

/** Options of {@link PartFile.open}. */
export interface PartFileOptions {
  /**
   * A write on the event loop taking longer (in ms) moves writes to the I/O
   * threads for a while (tests force that with -1).
   * @default {50}
   */
  slowWriteMs?: number;
}

function replacedError(path: string): ShoalError {
  return new ShoalError("IO", `${path} was replaced while it was being opened; fetch again`);
}

/**
 * Opens a part file for reading and writing without ever writing through a
 * link someone planted at its path: created with `O_CREAT | O_EXCL |
 * O_NOFOLLOW` when absent; when present (a download to resume), `lstat`ed to
 * be a regular file with no other hard links, opened with `O_NOFOLLOW`, and
 * checked to be the file `lstat` saw and ours (changing its mode, to what
 * it is, works only for its owner; this needs no permission to ask for our
 * user id).
 */
async function openExclusively(path: string): Promise<FileHandle> {
  const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  try {
    return await open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw toShoalError(error);
  }
  const refuse = (what: string) =>
    new ShoalError(
      "IO",
      `${path} ${what}, not a partial download of ours; remove it or fetch with another --output`,
    );
  const info = await Deno.lstat(path).catch((error) => {
    throw toShoalError(error);
  });
  if (info.isSymlink) throw refuse("is a symbolic link");
  if (!info.isFile) throw refuse("is not a regular file");
  if ((info.nlink ?? 1) > 1) throw refuse("has other hard links");
  let file: FileHandle;
  try {
    file = await open(path, O_RDWR | O_NOFOLLOW);
  } catch (error) {
    if ((error as { code?: string }).code === "ELOOP") throw refuse("is a symbolic link");
    throw toShoalError(error);
  }
  try {
    const opened = await file.stat();
    if (opened.dev !== info.dev || opened.ino !== info.ino) throw replacedError(path);
    await file.chmod(opened.mode & 0o7777).catch(() => {
      throw refuse("belongs to another user");
    });
    return file;
  } catch (error) {
    await file.close();
    throw error;
  }
}

/**
 * A download in progress on disk: the `.shoal-part` file, written piece by
 * piece at each piece's offset (so pieces from several sources land in any
 * order), and read back to serve verified pieces.
 *
 * A piece is written with one positional write (`pwrite`) on the event
 * loop: into the page cache that takes tens of microseconds. A
 * `Deno.FsFile` write is a seek and a write, each handed to an I/O thread,
 * and on a busy machine every hand-off cost the event loop its core for a
 * while: a quarter of the downloader's time in the 8-source swarm
 * benchmark. Once the disk pushes back, though, a write on the event loop
 * would stall every connection of the download, so after a slow write the
 * pieces go through `WRITERS` `Deno.FsFile` handles on the I/O threads,
 * until they have been fast again for a while. Reads are positional
 * `node:fs` reads.
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
  /** For positional reads, and writes on the event loop. */
  readonly #file: FileHandle;
  /** A handle of its own for flushes, which run on an I/O thread. */
  readonly #syncer: Deno.FsFile;
  readonly #slowWriteMs: number;
  #offloadUntil = 0;
  /** Handles for writes on the I/O threads: such a write is a seek then a write, so each needs its own. */
  readonly #writers: Deno.FsFile[];
  readonly #idleWriters: Deno.FsFile[];
  readonly #waiting: ((writer: Deno.FsFile) => void)[] = [];
  readonly #writing = new Set<Promise<void>>();
  #unflushed = 0;
  #flushing: Promise<void> | null = null;
  #flushError: unknown = null;

  private constructor(
    path: string,
    manifest: Manifest,
    file: FileHandle,
    [syncer, ...writers]: Deno.FsFile[],
    options: PartFileOptions,
  ) {
    this.path = path;
    this.#manifest = manifest;
    this.#file = file;
    this.#syncer = syncer;
    this.#writers = writers;
    this.#idleWriters = [...writers];
    this.#slowWriteMs = options.slowWriteMs ?? SLOW_WRITE_MS;
  }

  /**
   * Opens a part file: a new one is created exclusively, never through a
   * symbolic link; an existing one keeps its bytes for resuming, but only if
   * it is a regular file of ours ({@link openExclusively}). Every further
   * handle is checked to be the same file.
   */
  static async open(
    path: string,
    manifest: Manifest,
    options: PartFileOptions = {},
  ): Promise<PartFile> {
    const file = await openExclusively(path);
    const handles: Deno.FsFile[] = [];
    try {
      const { dev, ino } = await file.stat();
      for (let i = 0; i <= WRITERS; i++) {
        const handle = await Deno.open(path, { read: true, write: true });
        handles.push(handle);
        const info = await handle.stat();
        if (info.dev !== dev || info.ino !== ino) throw replacedError(path);
      }
      return new PartFile(path, manifest, file, handles, options);
    } catch (error) {
      for (const handle of handles) handle.close();
      await file.close();
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
    if (performance.now() < this.#offloadUntil) await this.#writeOffloaded(position, bytes);
    else this.#writeHere(position, bytes);
    this.#unflushed += bytes.length;
    if (this.#unflushed >= FLUSH_EVERY_BYTES && !this.#flushing) this.#flush();
  }

  /** A slow write, here or on an I/O thread, keeps the writes off the event loop for a while. */
  #timed(started: number): void {
    const now = performance.now();
    if (now - started > this.#slowWriteMs) this.#offloadUntil = now + OFFLOAD_MS;
  }

  /** Positional writes on the event loop. */
  #writeHere(position: number, bytes: Uint8Array): void {
    const started = performance.now();
    let written = 0;
    while (written < bytes.length) {
      const count = writeSync(
        this.#file.fd,
        bytes,
        written,
        bytes.length - written,
        position + written,
      );
      if (count === 0) throw new ShoalError("IO", `no progress writing ${this.path}`);
      written += count;
    }
    this.#timed(started);
  }

  async #writeOffloaded(position: number, bytes: Uint8Array): Promise<void> {
    const writer = this.#idleWriters.pop() ??
      await new Promise<Deno.FsFile>((resolve) => this.#waiting.push(resolve));
    const started = performance.now();
    try {
      await writer.seek(position, Deno.SeekMode.Start);
      let written = 0;
      while (written < bytes.length) written += await writer.write(bytes.subarray(written));
      this.#timed(started);
    } finally {
      const next = this.#waiting.shift();
      if (next) next(writer);
      else this.#idleWriters.push(writer);
    }
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
    return readFullyAt(this.#file, index * this.#manifest.pieceSize, into);
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
    await this.#file.close().catch(() => {});
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
