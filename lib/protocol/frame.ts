import type { BufferPool } from "./buffer_pool.ts";
import { ShoalError } from "./errors.ts";

/** Largest control frame accepted by default: 1 MiB of JSON. */
export const MAX_FRAME_BYTES = 1024 * 1024;

const HEADER_BYTES = 4;
/**
 * How much one read of control frames asks for. Every idle connection keeps
 * such a read pending, so this is per-connection memory on a busy tracker;
 * piece bodies are read straight into their own buffer instead.
 */
const CHUNK_BYTES = 4 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes one control message as a frame: a 4-byte big-endian length, then
 * the message as UTF-8 JSON.
 *
 * @example
 * ```ts
 * await writer.write(encodeFrame({ id: 1, type: "ping" }));
 * ```
 */
export function encodeFrame(
  message: unknown,
  maxBytes = MAX_FRAME_BYTES,
): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.byteLength > maxBytes) {
    throw new ShoalError(
      "FRAME_TOO_LARGE",
      `message of ${body.byteLength} bytes exceeds the ${maxBytes}-byte frame limit`,
    );
  }
  const frame = new Uint8Array(HEADER_BYTES + body.byteLength);
  new DataView(frame.buffer).setUint32(0, body.byteLength);
  frame.set(body, HEADER_BYTES);
  return frame;
}

/** Options of a {@link FrameReader}. */
export interface FrameReaderOptions {
  /**
   * Largest frame body accepted; a larger announced length fails before
   * anything is allocated.
   * @default {MAX_FRAME_BYTES}
   */
  maxFrameBytes?: number;
  /** Called whenever bytes arrive, e.g. to reset an inactivity timer. */
  onChunk?: () => void;
}

/**
 * Reads frames and raw byte runs from a byte stream, however the stream
 * happens to split or merge them into chunks.
 *
 * @example
 * ```ts
 * const frames = new FrameReader(conn.readable);
 * const hello = await frames.readFrame(); // null at a clean end of stream
 * const piece = await frames.readBytes(header.length);
 * ```
 */
export class FrameReader {
  #reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader;
  /** Set when the stream is a byte stream: bodies are then read straight into place. */
  #byob: boolean;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #maxFrameBytes: number;
  #onChunk: (() => void) | undefined;

  constructor(stream: ReadableStream<Uint8Array>, options: FrameReaderOptions = {}) {
    try {
      // Sockets are byte streams; reading into our own buffers saves a copy and the garbage.
      this.#reader = stream.getReader({ mode: "byob" });
      this.#byob = true;
    } catch {
      this.#reader = stream.getReader();
      this.#byob = false;
    }
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#onChunk = options.onChunk;
  }

  /**
   * Reads the next frame and parses its JSON. Returns null when the stream
   * ends cleanly between frames; throws BAD_MESSAGE when it ends inside one
   * or the body is not UTF-8 JSON, FRAME_TOO_LARGE when the length is over
   * the limit.
   */
  async readFrame(): Promise<unknown | null> {
    if (!await this.#fill(1)) return null;
    if (!await this.#fill(HEADER_BYTES)) {
      throw new ShoalError("BAD_MESSAGE", "stream ended inside a frame header");
    }
    const header = this.#take(HEADER_BYTES);
    const length = new DataView(header.buffer, header.byteOffset).getUint32(0);
    if (length > this.#maxFrameBytes) {
      throw new ShoalError(
        "FRAME_TOO_LARGE",
        `frame of ${length} bytes exceeds the ${this.#maxFrameBytes}-byte limit`,
      );
    }
    if (!await this.#fill(length)) {
      throw new ShoalError("BAD_MESSAGE", "stream ended inside a frame");
    }
    const body = this.#take(length);
    try {
      return JSON.parse(decoder.decode(body));
    } catch {
      throw new ShoalError("BAD_MESSAGE", "frame is not valid UTF-8 JSON");
    }
  }

  /**
   * Reads exactly `length` raw bytes, such as a piece that follows its
   * header frame, into a buffer from `pool` when given. Throws UNREACHABLE if
   * the stream ends first.
   */
  async readBytes(length: number, pool?: BufferPool): Promise<Uint8Array> {
    if (this.#byob && this.#buffered < length) {
      const taken = pool?.take(length) ?? new Uint8Array(length);
      const body = await this.#readInto(taken);
      pool?.moved(taken, body);
      return body;
    }
    if (!await this.#fill(length)) {
      throw new ShoalError(
        "UNREACHABLE",
        `connection closed after ${this.#buffered} of ${length} bytes`,
      );
    }
    return this.#take(length);
  }

  /** Reads a body straight into `buffer` (offset 0), after whatever is buffered. */
  async #readInto(buffer: Uint8Array): Promise<Uint8Array> {
    const length = buffer.length;
    let filled = 0;
    for (const chunk of this.#chunks.splice(0)) {
      buffer.set(chunk, filled);
      filled += chunk.byteLength;
    }
    this.#buffered = 0;
    const reader = this.#reader as ReadableStreamBYOBReader;
    while (filled < length) {
      if (this.#ended) break;
      // A BYOB read takes the buffer over and hands back a view of it.
      const { value, done } = await reader.read(
        new Uint8Array(buffer.buffer, filled, length - filled),
      );
      if (value) buffer = new Uint8Array(value.buffer, 0, length);
      if (done) {
        this.#ended = true;
        break;
      }
      if (value.byteLength === 0) continue;
      this.#onChunk?.();
      filled += value.byteLength;
    }
    if (filled < length) {
      throw new ShoalError("UNREACHABLE", `connection closed after ${filled} of ${length} bytes`);
    }
    return buffer;
  }

  async #readChunk(): Promise<ReadableStreamReadResult<Uint8Array>> {
    if (!this.#byob) return await (this.#reader as ReadableStreamDefaultReader<Uint8Array>).read();
    return await (this.#reader as ReadableStreamBYOBReader).read(new Uint8Array(CHUNK_BYTES));
  }

  /** Stops reading; pending reads end and the underlying stream is cancelled. */
  async cancel(): Promise<void> {
    this.#ended = true;
    await this.#reader.cancel().catch(() => {});
  }

  async #fill(length: number): Promise<boolean> {
    while (this.#buffered < length) {
      if (this.#ended) return false;
      const { value, done } = await this.#readChunk();
      if (done) {
        this.#ended = true;
        return false;
      }
      if (value.byteLength === 0) continue;
      this.#onChunk?.();
      this.#chunks.push(value);
      this.#buffered += value.byteLength;
    }
    return true;
  }

  #take(length: number): Uint8Array {
    const first = this.#chunks[0];
    if (first !== undefined && first.byteLength >= length) {
      // The common case for small frames and for large chunks: no copy.
      const taken = first.subarray(0, length);
      if (first.byteLength === length) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(length);
      this.#buffered -= length;
      return taken;
    }
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0];
      const needed = length - filled;
      if (chunk.byteLength <= needed) {
        out.set(chunk, filled);
        filled += chunk.byteLength;
        this.#chunks.shift();
      } else {
        out.set(chunk.subarray(0, needed), filled);
        this.#chunks[0] = chunk.subarray(needed);
        filled = length;
      }
    }
    this.#buffered -= length;
    return out;
  }
}
