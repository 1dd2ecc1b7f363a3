import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Manifest } from "../protocol/messages.ts";
import { toShoalError } from "../protocol/errors.ts";
import { Bitfield } from "./bitfield.ts";
import { pieceLength, sha256Hex } from "./manifest.ts";

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
  }

  /** Reads a piece back; returns null where the file is too short (never written). */
  async read(index: number): Promise<Uint8Array | null> {
    const length = pieceLength(this.#manifest, index);
    const buffer = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.#handle.read(
        buffer,
        filled,
        length - filled,
        index * this.#manifest.pieceSize + filled,
      );
      if (bytesRead === 0) return null;
      filled += bytesRead;
    }
    return buffer;
  }

  /**
   * Re-hashes the pieces a record says were verified, keeping only those that
   * still match: after a crash or power loss the record may be ahead of the disk.
   */
  async verify(claimed: Bitfield): Promise<Bitfield> {
    const have = new Bitfield(claimed.size);
    for (let index = 0; index < claimed.size; index++) {
      if (!claimed.has(index)) continue;
      const bytes = await this.read(index);
      if (bytes && sha256Hex(bytes) === this.#manifest.pieces[index]) have.set(index);
    }
    return have;
  }

  /** Trims or extends to the final size, and flushes to disk. */
  async finish(): Promise<void> {
    await this.#handle.truncate(this.#manifest.size);
    await this.#handle.sync();
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
