import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Manifest } from "../protocol/messages.ts";
import { toShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import { pieceLength, sha256Hex } from "./manifest.ts";

/**
 * How many bytes may be written before a flush to disk starts in the
 * background. Without it every byte of a large download waits for the final
 * fsync (a third of a second per 512 MiB here); with it the disk writes
 * while the network transfers.
 */
const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;

/**
 * A download in progress on disk: the `.shoal-part` file, written piece by
 * piece at each piece's offset (positional writes, so pieces from several
 * sources land in any order), and read back to serve verified pieces.
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
  readonly #handle: FileHandle;
  #unflushed = 0;
  #flushing: Promise<void> | null = null;
  #flushError: unknown = null;

  private constructor(path: string, manifest: Manifest, handle: FileHandle) {
    this.path = path;
    this.#manifest = manifest;
    this.#handle = handle;
  }

  /** Opens (creating if needed) a part file; an existing one keeps its bytes for resuming. */
  static async open(path: string, manifest: Manifest): Promise<PartFile> {
    try {
      const handle = await open(path, "a+").then(async (probe) => {
        // "a+" creates without truncating; reopen read-write for positional writes.
        await probe.close();
        return await open(path, "r+");
      });
      return new PartFile(path, manifest, handle);
    } catch (error) {
      throw toShoalError(error);
    }
  }

  async write(index: number, bytes: Uint8Array): Promise<void> {
    const position = index * this.#manifest.pieceSize;
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await this.#handle.write(
        bytes,
        written,
        bytes.length - written,
        position + written,
      );
      written += bytesWritten;
    }
    this.#unflushed += bytes.length;
    if (this.#unflushed >= FLUSH_EVERY_BYTES && !this.#flushing) this.#flush();
  }

  /** Starts writing what is written so far to disk, without waiting for it. */
  #flush(): void {
    this.#unflushed = 0;
    this.#flushing = this.#handle.datasync().catch((error) => {
      this.#flushError ??= error;
    }).finally(() => this.#flushing = null);
  }

  /**
   * Reads a piece back into `into` (the piece's length); false where the
   * file is too short (never written).
   */
  async read(index: number, into: Uint8Array): Promise<boolean> {
    let filled = 0;
    while (filled < into.length) {
      const { bytesRead } = await this.#handle.read(
        into,
        filled,
        into.length - filled,
        index * this.#manifest.pieceSize + filled,
      );
      if (bytesRead === 0) return false;
      filled += bytesRead;
    }
    return true;
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
    await this.#flushing;
    if (this.#flushError) throw toShoalError(this.#flushError);
    await this.#handle.truncate(this.#manifest.size);
    await this.#handle.sync();
  }

  async close(): Promise<void> {
    await this.#flushing;
    await this.#handle.close().catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
