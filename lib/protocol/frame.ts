import type { BufferPool } from "./buffer_pool.ts";
import { ShoalError } from "./errors.ts";

/** Largest control frame accepted by default: 1 MiB of JSON. */
export const MAX_FRAME_BYTES = 1024 * 1024;

const HEADER_BYTES = 4;
/** A frame header that reads "HTTP": the first bytes of a web server's answer. */
const HTTP_HEADER = 0x48545450;
/** The message of the BAD_MESSAGE a web server's answer gets, in place of a frame. */
export const HTTP_ANSWER = "the other side answers in HTTP, not in Shoal frames";
/**
 * The size of a read while frames are small. Every idle connection keeps
 * such a read pending, so this is per-connection memory on a busy tracker.
 */
const MIN_READ_BYTES = 1024;
/** The most one read asks for; piece bodies are read straight into their own buffer instead. */
const MAX_READ_BYTES = 64 * 1024;
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

/** From this size on, a write goes through the connection's writable stream. */
const STREAM_WRITE_BYTES = 64 * 1024;

/**
 * Writes all of `bytes`. Small frames go through `conn.write`, so a
 * connection that only ever sends them never builds its writable stream;
 * piece bodies go through the stream, whose sink loops over partial writes
 * inside the runtime: a TLS connection takes at most 64 KiB per
 * `conn.write`, and looping in JavaScript cost a TLS transfer half its speed.
 * Callers never write to one connection concurrently.
 */
export async function writeAll(conn: ByteSink, bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength >= STREAM_WRITE_BYTES && conn.writable) {
    const writer = conn.writable.getWriter();
    try {
      await writer.write(bytes);
      // The sink reports a failed write by erroring the stream, not by rejecting the write.
      await writer.ready;
    } finally {
      writer.releaseLock();
    }
    return;
  }
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

/**
 * Anything bytes can be written to as to a `Deno.Conn`: `write` takes some
 * of them; `writable`, when there is one, takes large writes whole.
 */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
  readonly writable?: WritableStream<Uint8Array>;
}

/**
 * Anything bytes can be read from into the caller's buffer, as a `Deno.Conn`
 * can: the number of bytes read, or null at the end.
 */
export interface ByteSource {
  read(into: Uint8Array): Promise<number | null>;
}

/** Options of a {@link FrameReader}. */
export interface FrameReaderOptions {
  /**
   * Largest frame body accepted; a larger announced length fails before
   * anything is allocated.
   * @default {MAX_FRAME_BYTES}
   */
  maxFrameBytes?: number;
  /** Called whenever bytes arrive, e.g. to note activity for an inactivity timer. */
  onChunk?: () => void;
  /**
   * Paces the reading of raw byte runs (piece bodies): awaited after each
   * read, of at most {@link PACED_READ_BYTES}, with its size, e.g. a rate
   * limiter's `take`. The sender then slows down to match, through TCP.
   */
  pace?: (bytes: number) => Promise<void>;
}

/** Largest read of a paced body, so a rate limit is smooth. */
export const PACED_READ_BYTES = 64 * 1024;

/**
 * Reads frames and raw byte runs from a connection (or a stream), however
 * it happens to split or merge them into chunks.
 *
 * It reads the connection directly rather than through its web streams:
 * the streams' state alone cost a tracker about 9 KiB per connected peer,
 * and a body read straight into its final buffer needs no stream transfer.
 *
 * @example
 * ```ts
 * const frames = new FrameReader(conn);
 * const hello = await frames.readFrame(); // null at a clean end of stream
 * const piece = await frames.readBytes(header.length);
 * ```
 */
export class FrameReader {
  readonly #source: ByteSource & { cancel?: () => Promise<void> };
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #readBytes = MIN_READ_BYTES;
  #spare: Uint8Array | null = null;
  readonly #maxFrameBytes: number;
  readonly #onChunk: (() => void) | undefined;
  readonly #pace: ((bytes: number) => Promise<void>) | undefined;

  constructor(source: ByteSource | ReadableStream<Uint8Array>, options: FrameReaderOptions = {}) {
    this.#source = source instanceof ReadableStream ? streamSource(source) : source;
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#onChunk = options.onChunk;
    this.#pace = options.pace;
  }

  /**
   * Reads the next frame and parses its JSON. Returns null when the stream
   * ends cleanly between frames; throws BAD_MESSAGE when it ends inside one
   * or the body is not UTF-8 JSON, FRAME_TOO_LARGE when the length is over
   * the limit.
   */
  async readFrame(): Promise<unknown | null> {
    // One loop reading the source itself: an idle connection waits in this one call, not in a
    // chain of them (each suspended call is memory a tracker holds per connected peer).
    let length: number | null = null;
    while (length === null || this.#buffered < length) {
      if (length === null && this.#buffered >= HEADER_BYTES) {
        const header = this.#take(HEADER_BYTES);
        length = new DataView(header.buffer, header.byteOffset).getUint32(0);
        // A web server (say, a tracker's dashboard port) answers "HTTP/1.1 400 ...": said so.
        if (length === HTTP_HEADER) throw new ShoalError("BAD_MESSAGE", HTTP_ANSWER);
        if (length > this.#maxFrameBytes) {
          throw new ShoalError(
            "FRAME_TOO_LARGE",
            `frame of ${length} bytes exceeds the ${this.#maxFrameBytes}-byte limit`,
          );
        }
        continue;
      }
      if (this.#ended) {
        if (length === null && this.#buffered === 0) return null;
        throw new ShoalError(
          "BAD_MESSAGE",
          length === null ? "stream ended inside a frame header" : "stream ended inside a frame",
        );
      }
      const buffer = this.#readBuffer();
      this.#received(buffer, await this.#source.read(buffer));
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
    // A copy: the read buffer it lies in is reused once its bytes are consumed.
    if (this.#buffered >= length) return this.#take(length).slice();
    const buffer = pool?.take(length) ?? new Uint8Array(length);
    let filled = 0;
    for (const chunk of this.#chunks.splice(0)) {
      buffer.set(chunk, filled);
      filled += chunk.byteLength;
    }
    this.#buffered = 0;
    // The rest goes straight from the socket into its place.
    while (filled < length && !this.#ended) {
      let read: number | null;
      try {
        const end = this.#pace ? Math.min(length, filled + PACED_READ_BYTES) : length;
        read = await this.#source.read(buffer.subarray(filled, end));
        if (read) await this.#pace?.(read);
      } catch (error) {
        pool?.release(buffer);
        throw error;
      }
      if (read === null) {
        this.#ended = true;
        break;
      }
      if (read === 0) continue;
      this.#onChunk?.();
      filled += read;
    }
    if (filled < length) {
      pool?.release(buffer);
      throw new ShoalError("UNREACHABLE", `connection closed after ${filled} of ${length} bytes`);
    }
    return buffer;
  }

  /** Stops reading: later reads end at once. A stream source is cancelled; a connection is its owner's to close. */
  async cancel(): Promise<void> {
    this.#ended = true;
    await this.#source.cancel?.().catch(() => {});
  }

  /**
   * The buffer for the next read, of the current read size. An idle
   * connection keeps one such read pending, so it starts small; a read that
   * fills its buffer suggests more is waiting, and the next one is larger.
   * Frames are parsed (copied out) as soon as they are complete, so once
   * every chunk is consumed the last read's buffer is free again and reused.
   */
  #readBuffer(): Uint8Array {
    const reuse = this.#chunks.length === 0 && this.#spare?.length === this.#readBytes;
    const buffer = reuse ? this.#spare! : new Uint8Array(this.#readBytes);
    this.#spare = buffer;
    return buffer;
  }

  /** Keeps what a read brought, or notes the end of the stream. */
  #received(buffer: Uint8Array, read: number | null): void {
    if (read === null) {
      this.#ended = true;
      return;
    }
    if (read === 0) return;
    this.#onChunk?.();
    this.#readBytes = read === buffer.length
      ? Math.min(this.#readBytes * 2, MAX_READ_BYTES)
      : MIN_READ_BYTES;
    this.#chunks.push(buffer.subarray(0, read));
    this.#buffered += read;
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

/** Reads a web stream as a {@link ByteSource}, keeping what a chunk has beyond the caller's buffer. */
function streamSource(
  stream: ReadableStream<Uint8Array>,
): ByteSource & { cancel: () => Promise<void> } {
  const reader = stream.getReader();
  let rest: Uint8Array = new Uint8Array(0);
  return {
    async read(into) {
      if (rest.byteLength === 0) {
        const { value, done } = await reader.read();
        if (done) return null;
        rest = value;
      }
      const count = Math.min(into.byteLength, rest.byteLength);
      into.set(rest.subarray(0, count));
      rest = rest.subarray(count);
      return count;
    },
    cancel: () => reader.cancel(),
  };
}
