import assert from "node:assert/strict";
import { encodeFrame, FrameReader, MAX_FRAME_BYTES } from "../../lib/protocol/frame.ts";
import { concat } from "../helpers/bytes.ts";
import { shoalError } from "../helpers/errors.ts";

const encoder = new TextEncoder();

/** Every byte of `bytes` as its own chunk. */
function oneByteChunks(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (byte) => Uint8Array.of(byte));
}

/** A 4-byte big-endian length header, as a frame starts. */
function header(length: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

/** A frame whose body is `body` as it is, valid JSON or not. */
function rawFrame(body: Uint8Array): Uint8Array {
  return concat(header(body.byteLength), body);
}

function readerOf(chunks: Uint8Array[]): FrameReader {
  return new FrameReader(ReadableStream.from(chunks));
}

/**
 * A stream that delivers `chunks`, then never delivers anything else nor
 * ends, and counts how often it was asked for more.
 */
function hangingStream(chunks: Uint8Array[]): {
  stream: ReadableStream<Uint8Array>;
  pulls: () => number;
} {
  let pulls = 0;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
    },
    pull() {
      pulls++;
      return new Promise<void>(() => {});
    },
  });
  return { stream, pulls: () => pulls };
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const MESSAGES = [
  { id: 1, type: "hello", params: { protocol: 1, agent: "test" } },
  { id: 2, ok: true, result: { files: [] } },
  { id: 3, type: "search", params: { text: "été 🐟 naïve" } },
  [],
  "a bare string",
  null,
];

Deno.test("encodeFrame - writes a 4-byte big-endian length then the UTF-8 JSON body", () => {
  const message = { name: "é" };
  const body = encoder.encode(JSON.stringify(message));
  const frame = encodeFrame(message);
  assert.deepEqual(frame, concat(header(body.byteLength), body));
  assert.deepEqual(Array.from(frame.subarray(0, 4)), [0, 0, 0, body.byteLength]);
});

Deno.test("FrameReader - several frames, one chunk each, read back in order", async () => {
  const frames = readerOf(MESSAGES.map((message) => encodeFrame(message)));
  for (const message of MESSAGES) {
    assert.deepEqual(await frames.readFrame(), message);
  }
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - a frame split into one-byte chunks reads whole", async () => {
  const frames = readerOf(oneByteChunks(concat(...MESSAGES.map((m) => encodeFrame(m)))));
  for (const message of MESSAGES) {
    assert.deepEqual(await frames.readFrame(), message);
  }
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - several frames merged into one chunk read one at a time", async () => {
  const frames = readerOf([concat(...MESSAGES.map((m) => encodeFrame(m)))]);
  for (const message of MESSAGES) {
    assert.deepEqual(await frames.readFrame(), message);
  }
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - frames split at arbitrary points across chunks read whole", async () => {
  const all = concat(...MESSAGES.map((m) => encodeFrame(m)));
  for (const step of [2, 3, 5, 7, 64]) {
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < all.byteLength; offset += step) {
      chunks.push(all.slice(offset, offset + step));
    }
    const frames = readerOf(chunks);
    for (const message of MESSAGES) {
      assert.deepEqual(await frames.readFrame(), message, `chunks of ${step} bytes`);
    }
    assert.equal(await frames.readFrame(), null);
  }
});

Deno.test("FrameReader - empty chunks are skipped", async () => {
  const frame = encodeFrame({ id: 7 });
  const frames = readerOf([
    new Uint8Array(0),
    frame.subarray(0, 2),
    new Uint8Array(0),
    frame.subarray(2),
    new Uint8Array(0),
  ]);
  assert.deepEqual(await frames.readFrame(), { id: 7 });
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - raw bytes after a frame, split across chunks, read exactly", async () => {
  const piece = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7 + 3) & 0xff);
  const stream = concat(
    encodeFrame({ id: 1, ok: true, result: { index: 0, length: piece.byteLength } }),
    piece,
    encodeFrame({ id: 2, type: "ping" }),
  );
  // Cut points that fall inside the header, the body, the raw bytes, and the next frame.
  const cuts = [0, 2, 9, 40, 300, 301, 900, stream.byteLength - 3, stream.byteLength];
  const chunks = cuts.slice(1).map((end, i) => stream.slice(cuts[i], end));

  const frames = readerOf(chunks);
  assert.deepEqual(await frames.readFrame(), {
    id: 1,
    ok: true,
    result: { index: 0, length: 1000 },
  });
  assert.deepEqual(await frames.readBytes(400), piece.subarray(0, 400));
  assert.deepEqual(await frames.readBytes(600), piece.subarray(400));
  assert.deepEqual(await frames.readFrame(), { id: 2, type: "ping" });
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - raw bytes delivered one byte per chunk read exactly", async () => {
  const piece = Uint8Array.from({ length: 50 }, (_, i) => 255 - i);
  const frames = readerOf(oneByteChunks(concat(encodeFrame({ length: 50 }), piece)));
  assert.deepEqual(await frames.readFrame(), { length: 50 });
  assert.deepEqual(await frames.readBytes(50), piece);
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - readBytes(0) returns no bytes without reading", async () => {
  const frames = readerOf([]);
  assert.deepEqual(await frames.readBytes(0), new Uint8Array(0));
});

Deno.test("FrameReader - readBytes throws UNREACHABLE when the stream ends first", async () => {
  const frames = readerOf([new Uint8Array(10)]);
  await assert.rejects(frames.readBytes(11), shoalError("UNREACHABLE"));
});

Deno.test("FrameReader - a stream with no bytes ends cleanly with null", async () => {
  const frames = readerOf([]);
  assert.equal(await frames.readFrame(), null);
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - a clean end between frames returns null", async () => {
  const frames = readerOf([encodeFrame({ a: 1 }), encodeFrame({ b: 2 })]);
  assert.deepEqual(await frames.readFrame(), { a: 1 });
  assert.deepEqual(await frames.readFrame(), { b: 2 });
  assert.equal(await frames.readFrame(), null);
  assert.equal(await frames.readFrame(), null);
});

Deno.test("FrameReader - an end inside a frame header throws BAD_MESSAGE", async () => {
  for (const length of [1, 2, 3]) {
    const frames = readerOf([encodeFrame({ a: 1 }), encodeFrame({ b: 2 }).subarray(0, length)]);
    assert.deepEqual(await frames.readFrame(), { a: 1 });
    await assert.rejects(frames.readFrame(), shoalError("BAD_MESSAGE"), `${length} header bytes`);
  }
});

Deno.test("FrameReader - an end inside a frame body throws BAD_MESSAGE", async () => {
  const frame = encodeFrame({ text: "cut short" });
  for (const length of [4, 5, frame.byteLength - 1]) {
    const frames = readerOf(oneByteChunks(frame.subarray(0, length)));
    await assert.rejects(frames.readFrame(), shoalError("BAD_MESSAGE"), `${length} frame bytes`);
  }
});

Deno.test("FrameReader - a length over the limit throws FRAME_TOO_LARGE without waiting for the body", async () => {
  const { stream, pulls } = hangingStream([header(MAX_FRAME_BYTES + 1)]);
  const frames = new FrameReader(stream);
  // The stream never delivers the body nor ends: a reader that waited for it would hang.
  await assert.rejects(
    settlesWithin(frames.readFrame(), 2000, "readFrame"),
    shoalError("FRAME_TOO_LARGE"),
  );
  assert.ok(pulls() <= 1, `the reader asked for more ${pulls()} times`);
  await frames.cancel();
});

Deno.test("FrameReader - a length over the limit throws FRAME_TOO_LARGE, not BAD_MESSAGE, when the stream then ends", async () => {
  const frames = readerOf([header(0xffffffff)]);
  await assert.rejects(frames.readFrame(), shoalError("FRAME_TOO_LARGE"));
});

Deno.test("FrameReader - maxFrameBytes sets the limit and a body of exactly the limit is accepted", async () => {
  const frame = encodeFrame({ k: "v" });
  const bodyLength = frame.byteLength - 4;

  const exact = new FrameReader(ReadableStream.from([frame]), { maxFrameBytes: bodyLength });
  assert.deepEqual(await exact.readFrame(), { k: "v" });

  const { stream } = hangingStream([frame.subarray(0, 4)]);
  const under = new FrameReader(stream, { maxFrameBytes: bodyLength - 1 });
  await assert.rejects(
    settlesWithin(under.readFrame(), 2000, "readFrame"),
    shoalError("FRAME_TOO_LARGE"),
  );
  await under.cancel();
});

Deno.test("FrameReader - a body that is not UTF-8 throws BAD_MESSAGE", async () => {
  const frames = readerOf([rawFrame(Uint8Array.of(0x22, 0xff, 0xfe, 0x22))]);
  await assert.rejects(frames.readFrame(), shoalError("BAD_MESSAGE"));
});

Deno.test("FrameReader - a body that is not JSON throws BAD_MESSAGE", async () => {
  for (const body of ["{oops", "", '{"a":1} trailing', "undefined"]) {
    const frames = readerOf([rawFrame(encoder.encode(body))]);
    await assert.rejects(frames.readFrame(), shoalError("BAD_MESSAGE"), JSON.stringify(body));
  }
});

Deno.test("FrameReader - cancel ends a read pending on a silent stream with null", async () => {
  const { stream } = hangingStream([]);
  const frames = new FrameReader(stream);
  const pending = frames.readFrame();
  await frames.cancel();
  assert.equal(await pending, null);
  assert.equal(await frames.readFrame(), null);
});

Deno.test("encodeFrame - a message over the limit throws FRAME_TOO_LARGE", () => {
  assert.throws(
    () => encodeFrame({ text: "x".repeat(MAX_FRAME_BYTES) }),
    shoalError("FRAME_TOO_LARGE"),
  );
});

Deno.test("encodeFrame - maxBytes sets the limit and a body of exactly the limit is accepted", () => {
  const bodyLength = encoder.encode(JSON.stringify({ k: "v" })).byteLength;
  assert.equal(encodeFrame({ k: "v" }, bodyLength).byteLength, 4 + bodyLength);
  assert.throws(() => encodeFrame({ k: "v" }, bodyLength - 1), shoalError("FRAME_TOO_LARGE"));
});

Deno.test("encodeFrame - the limit counts UTF-8 bytes, not characters", () => {
  // "🐟" is 2 UTF-16 code units but 4 UTF-8 bytes; the JSON adds 2 quotes.
  const message = "🐟".repeat(10);
  assert.equal(encodeFrame(message, 42).byteLength, 46);
  assert.throws(() => encodeFrame(message, 41), shoalError("FRAME_TOO_LARGE"));
});

Deno.test("FrameReader - reads a connection-like source; a small body stays intact while later frames reuse the read buffer", async () => {
  const body = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
  const deliveries = [
    concat(encodeFrame({ length: 100 }), body),
    encodeFrame({ n: 1, pad: "x".repeat(300) }),
    encodeFrame({ n: 2, pad: "y".repeat(300) }),
  ];
  // Hands over one delivery per read, into the caller's buffer, as Deno.Conn does.
  const source = {
    read(into: Uint8Array): Promise<number | null> {
      const next = deliveries.shift();
      if (!next) return Promise.resolve(null);
      into.set(next);
      return Promise.resolve(next.length);
    },
  };
  const frames = new FrameReader(source);
  assert.deepEqual(await frames.readFrame(), { length: 100 });
  const received = await frames.readBytes(100);
  assert.equal((await frames.readFrame() as { n: number }).n, 1);
  assert.equal((await frames.readFrame() as { n: number }).n, 2);
  assert.deepEqual(received, body);
  assert.equal(await frames.readFrame(), null);
});
