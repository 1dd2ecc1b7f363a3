import { Buffer } from "node:buffer";
import { ShoalError } from "../protocol/errors.ts";

/**
 * Which pieces of a file are held, one bit each (piece 0 is the high bit of
 * byte 0, as in BitTorrent), with a running count.
 *
 * @example
 * ```ts
 * const have = new Bitfield(10);
 * have.set(3);
 * have.has(3); // true
 * Bitfield.fromBase64(have.toBase64(), 10).count; // 1
 * ```
 */
export class Bitfield {
  readonly size: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(size: number, bytes?: Uint8Array) {
    this.size = size;
    this.bytes = bytes ?? new Uint8Array(Math.ceil(size / 8));
    if (bytes) {
      for (let i = 0; i < size; i++) if (this.has(i)) this.#count++;
    }
  }

  /** A bitfield with every piece held. */
  static full(size: number): Bitfield {
    const field = new Bitfield(size);
    for (let i = 0; i < size; i++) field.set(i);
    return field;
  }

  /** Decodes a peer's bitfield, refusing one of the wrong length or with bits past the end. */
  static fromBase64(text: string, size: number): Bitfield {
    const bytes = new Uint8Array(Buffer.from(text, "base64"));
    const spare = bytes.length * 8 - size;
    if (
      bytes.length !== Math.ceil(size / 8) || (spare > 0 && (bytes.at(-1)! & ((1 << spare) - 1)))
    ) {
      throw new ShoalError("BAD_MESSAGE", `a bitfield for ${size} pieces has the wrong length`);
    }
    return new Bitfield(size, bytes);
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.size;
  }

  has(index: number): boolean {
    return (this.bytes[index >> 3] & (0x80 >> (index & 7))) !== 0;
  }

  set(index: number): void {
    if (index < 0 || index >= this.size || this.has(index)) return;
    this.bytes[index >> 3] |= 0x80 >> (index & 7);
    this.#count++;
  }

  clear(index: number): void {
    if (!this.has(index)) return;
    this.bytes[index >> 3] &= ~(0x80 >> (index & 7));
    this.#count--;
  }

  toBase64(): string {
    return Buffer.from(this.bytes).toString("base64");
  }
}
