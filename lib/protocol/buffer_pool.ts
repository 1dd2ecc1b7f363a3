/**
 * Reuses the large buffers that piece bodies pass through. A fresh 512 KiB
 * buffer per piece costs its page faults, zeroing and garbage collection
 * every time; at hundreds of MB/s that was a large share of a transfer's CPU
 * on both sides. Buffers come in power-of-two capacities, so the pieces of a
 * file (all one size but the last) share one free list.
 *
 * Releasing is a promise by the caller that nothing reads or writes the
 * bytes any more; a buffer that is never released is simply collected.
 *
 * @example
 * ```ts
 * const pool = new BufferPool();
 * const piece = pool.take(256 * 1024);
 * try {
 *   await file.read(piece, 0, piece.length, position);
 *   await socket.write(piece);
 * } finally {
 *   pool.release(piece);
 * }
 * ```
 */
export class BufferPool {
  /** Free buffers by capacity. */
  readonly #free = new Map<number, ArrayBuffer[]>();
  /** Every buffer this pool made: only those are taken back. */
  readonly #own = new WeakSet<ArrayBuffer>();
  readonly #maxFreePerSize: number;

  /** Keeps at most `maxFreePerSize` idle buffers of each capacity. */
  constructor(maxFreePerSize = 16) {
    this.#maxFreePerSize = maxFreePerSize;
  }

  /** A buffer of exactly `length` bytes; its contents are whatever was there before. */
  take(length: number): Uint8Array {
    const capacity = capacityFor(length);
    let buffer = this.#free.get(capacity)?.pop();
    if (!buffer) this.#own.add(buffer = new ArrayBuffer(capacity));
    return new Uint8Array(buffer, 0, length);
  }

  /** Gives a buffer from {@link take} back; anything else is ignored. */
  release(bytes: Uint8Array): void {
    const buffer = bytes.buffer as ArrayBuffer;
    if (!this.#own.has(buffer)) return;
    const capacity = buffer.byteLength;
    let free = this.#free.get(capacity);
    if (!free) this.#free.set(capacity, free = []);
    if (free.length < this.#maxFreePerSize && !free.includes(buffer)) free.push(buffer);
  }

  /**
   * Takes back a buffer of this pool that a worker returned: transferred
   * there and back, it is a new object, which {@link release} would ignore.
   */
  adopt(buffer: ArrayBuffer): void {
    if (buffer.byteLength !== capacityFor(buffer.byteLength)) return;
    this.#own.add(buffer);
    this.release(new Uint8Array(buffer));
  }
}

/** The smallest power of two of at least `length` (and at least 4 KiB). */
function capacityFor(length: number): number {
  let capacity = 4096;
  while (capacity < length) capacity *= 2;
  return capacity;
}
