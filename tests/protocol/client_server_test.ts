import assert from "node:assert/strict";
import { z } from "zod";
import type { Address } from "../../lib/protocol/address.ts";
import { BufferPool } from "../../lib/protocol/buffer_pool.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { encodeFrame, FrameReader } from "../../lib/protocol/frame.ts";
import { concat } from "../helpers/bytes.ts";
import { createIdentity } from "../../lib/identity/certificate.ts";
import { TLS_SERVER_NAME, type TlsIdentity } from "../../lib/protocol/tls.ts";
import { type MethodTable, PEER_METHODS, PROTOCOL_VERSION } from "../../lib/protocol/messages.ts";
import {
  type Connection,
  type Handlers,
  MAX_WRITE_BYTES,
  ProtocolServer,
  type ProtocolServerOptions,
  WithBody,
} from "../../lib/protocol/server.ts";
import { shoalError } from "../helpers/errors.ts";
import { eventually } from "../helpers/eventually.ts";

/**
 * A small method table for these tests. Its body method must be called
 * `piece`: that is the name `METHODS_WITH_BODY` knows.
 */
const TEST_METHODS = {
  hello: PEER_METHODS.hello,
  echo: {
    params: z.object({ n: z.number().int().min(0), delayMs: z.number().int().min(0).optional() }),
    result: z.object({ n: z.number().int() }),
  },
  find: {
    params: z.object({ name: z.string() }),
    result: z.object({ name: z.string() }),
  },
  piece: PEER_METHODS.piece,
} satisfies MethodTable;
type TestMethods = typeof TEST_METHODS;

const AGENT = "shoal-test/0";
const CONTENT_ID = "ab".repeat(32);
const LOCALHOST: Address = { host: "127.0.0.1", port: 0 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Deterministic bytes, different for each piece index. */
function pieceBytes(index: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + index * 31) & 0xff);
}

/**
 * The handlers of the test table: `echo` answers its number after an
 * optional delay, `find` knows only "here", and `piece` answers piece
 * `index` of `index * 1000 + 1` bytes, in chunks of 333 bytes written
 * 5 ms apart so the body crosses several TCP segments.
 */
const HANDLERS: Handlers<TestMethods, null> = {
  echo: async ({ n, delayMs }) => {
    if (delayMs) await sleep(delayMs);
    return { n };
  },
  find: ({ name }) => {
    if (name !== "here") throw new ShoalError("NOT_FOUND", `nothing named "${name}"`);
    return Promise.resolve({ name });
  },
  piece: ({ index }) => {
    const bytes = pieceBytes(index, index * 1000 + 1);
    async function* chunks() {
      for (let offset = 0; offset < bytes.length; offset += 333) {
        yield bytes.slice(offset, offset + 333);
        await sleep(5);
      }
    }
    return Promise.resolve(new WithBody({ index, length: bytes.length }, chunks()));
  },
};

/** A real ProtocolServer on 127.0.0.1 port 0, whose warnings are kept in `warnings`. */
async function startServer(
  options: Partial<ProtocolServerOptions<null>> = {},
  handlers: Handlers<TestMethods, null> = HANDLERS,
): Promise<{ server: ProtocolServer<TestMethods, null>; address: Address; warnings: string[] }> {
  const warnings: string[] = [];
  const server = new ProtocolServer(TEST_METHODS, handlers, {
    kind: "peer",
    initialState: () => null,
    warn: (line) => warnings.push(line),
    ...options,
  });
  return { server, address: await server.listen(LOCALHOST), warnings };
}

function connect(address: Address, timeoutMs?: number): Promise<ProtocolClient<TestMethods>> {
  return ProtocolClient.connect(address, TEST_METHODS, { agent: AGENT, timeoutMs });
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** One raw TCP connection speaking frames by hand, from either side. */
class RawPeer {
  readonly frames: FrameReader;

  constructor(readonly conn: Deno.Conn) {
    this.frames = new FrameReader(conn.readable);
  }

  async send(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.conn.write(bytes.subarray(offset));
    }
  }

  sendFrame(message: unknown): Promise<void> {
    return this.send(encodeFrame(message));
  }

  async readRequest(): Promise<{ id: number; type: string; params: unknown } | null> {
    return await this.frames.readFrame() as { id: number; type: string; params: unknown } | null;
  }

  /** Reads the client's hello and answers it with `protocol`. */
  async answerHello(protocol = PROTOCOL_VERSION): Promise<void> {
    const hello = await this.readRequest();
    assert.equal(hello?.type, "hello");
    await this.sendFrame({ id: hello.id, ok: true, result: { protocol, server: "peer" } });
  }

  /** Reads until the other side closes, answering nothing. */
  async drain(): Promise<void> {
    while (await this.readRequest() !== null);
  }

  async close(): Promise<void> {
    await this.frames.cancel();
    closeQuietly(this.conn);
  }
}

/** A hand-written server for misbehaviours the real one never shows. */
class FakeServer {
  readonly address: Address;
  readonly #listener: Deno.Listener;
  readonly #peers = new Set<RawPeer>();
  readonly #served = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  constructor(serve: (peer: RawPeer) => Promise<void>) {
    this.#listener = Deno.listen({ hostname: LOCALHOST.host, port: 0 });
    this.address = { host: LOCALHOST.host, port: (this.#listener.addr as Deno.NetAddr).port };
    this.#accepting = this.#accept(serve);
  }

  async #accept(serve: (peer: RawPeer) => Promise<void>): Promise<void> {
    for await (const conn of this.#listener) {
      const peer = new RawPeer(conn);
      this.#peers.add(peer);
      const served: Promise<void> = serve(peer)
        .catch(() => {})
        .finally(async () => {
          await peer.close();
          this.#peers.delete(peer);
          this.#served.delete(served);
        });
      this.#served.add(served);
    }
  }

  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#accepting.catch(() => {});
    for (const peer of this.#peers) await peer.close();
    await Promise.allSettled([...this.#served]);
  }
}

/** Pipelines echoes whose earlier requests take longer, so answering out of order would show. */
async function assertEchoesInOrder(client: ProtocolClient<TestMethods>): Promise<void> {
  const delays = [60, 40, 20, 0, 30, 10];
  const results = await Promise.all(
    delays.map((delayMs, n) => client.call("echo", { n, delayMs })),
  );
  assert.deepEqual(results, delays.map((_, n) => ({ n })));
}

Deno.test("ProtocolClient - pipelined requests are answered in order with their own results", async () => {
  const { server, address } = await startServer();
  const client = await connect(address);
  try {
    await assertEchoesInOrder(client);
    assert.deepEqual(await client.call("find", { name: "here" }), { name: "here" });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - with concurrency, handlers run together and replies keep request order", async () => {
  let running = 0;
  let mostAtOnce = 0;
  const handlers: Handlers<TestMethods, null> = {
    ...HANDLERS,
    echo: async ({ n, delayMs }) => {
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await sleep(delayMs ?? 0);
      running--;
      return { n };
    },
  };
  const { server, address } = await startServer({ concurrency: 3 }, handlers);
  const client = await connect(address);
  try {
    await assertEchoesInOrder(client);
    assert.equal(mostAtOnce, 3, "three handlers at once, never more");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - a body's written callback runs once the body is sent", async () => {
  const written: number[] = [];
  const handlers: Handlers<TestMethods, null> = {
    ...HANDLERS,
    piece: ({ index }) => {
      const bytes = pieceBytes(index, 100);
      return Promise.resolve(
        new WithBody({ index, length: bytes.length }, [bytes], () => written.push(index)),
      );
    },
  };
  const { server, address } = await startServer({ concurrency: 2 }, handlers);
  const client = await connect(address);
  try {
    await client.callWithBody("piece", { contentId: CONTENT_ID, index: 1 });
    assert.deepEqual(written, [1]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolClient - reply bodies are read into buffers from the pool it was given", async () => {
  const { server, address } = await startServer();
  const pool = new BufferPool();
  const recycled = pool.take(4001);
  pool.release(recycled);
  const client = await ProtocolClient.connect(address, TEST_METHODS, {
    agent: AGENT,
    bodyPool: pool,
  });
  try {
    const { body } = await client.callWithBody("piece", { contentId: CONTENT_ID, index: 4 });
    assert.deepEqual(body, pieceBytes(4, 4001));
    assert.equal(body.buffer, recycled.buffer, "the pool's free buffer held the body");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolClient - an error reply rejects only its request and the connection stays usable", async () => {
  const { server, address } = await startServer();
  const client = await connect(address);
  try {
    const [before, missing, after] = await Promise.allSettled([
      client.call("echo", { n: 1 }),
      client.call("find", { name: "missing" }),
      client.call("echo", { n: 2 }),
    ]);
    assert.deepEqual(before, { status: "fulfilled", value: { n: 1 } });
    assert.equal(missing.status, "rejected");
    shoalError("NOT_FOUND", /nothing named "missing"/)(missing.reason);
    assert.deepEqual(after, { status: "fulfilled", value: { n: 2 } });
    assert.equal(client.closed, false);
    assert.deepEqual(await client.call("echo", { n: 3 }), { n: 3 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - a request with invalid params gets BAD_MESSAGE naming the field, and the connection stays usable", async () => {
  const { server, address } = await startServer();
  const client = await connect(address);
  try {
    await assert.rejects(client.call("echo", { n: -1 }), shoalError("BAD_MESSAGE", /echo.*\(n\)/));
    assert.equal(client.closed, false);
    assert.deepEqual(await client.call("echo", { n: 4 }), { n: 4 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - a hello with another protocol version gets VERSION_MISMATCH naming both, then the connection closes", async () => {
  const { server, address } = await startServer();
  const raw = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  try {
    const other = PROTOCOL_VERSION + 1;
    await raw.sendFrame({ id: 1, type: "hello", params: { protocol: other, agent: AGENT } });
    const reply = await raw.frames.readFrame() as {
      id: number;
      ok: boolean;
      error: { code: string; message: string };
    };
    assert.equal(reply.id, 1);
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, "VERSION_MISMATCH");
    assert.match(reply.error.message, new RegExp(`protocol ${PROTOCOL_VERSION}\\b`));
    assert.match(reply.error.message, new RegExp(`\\b${other}\\b`));
    assert.equal(await raw.frames.readFrame(), null);
  } finally {
    await raw.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - a version 3 peer (before batches of pieces) is told VERSION_MISMATCH naming 3 and 4, not crashed", async () => {
  const { server, address } = await startServer();
  const raw = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  try {
    assert.equal(PROTOCOL_VERSION, 4);
    await raw.sendFrame({ id: 1, type: "hello", params: { protocol: 3, agent: "shoal-peer/0.9" } });
    const reply = await raw.frames.readFrame() as { error: { code: string; message: string } };
    assert.equal(reply.error.code, "VERSION_MISMATCH");
    assert.match(reply.error.message, /\b3\b/);
    assert.match(reply.error.message, /\b4\b/);
    assert.equal(await raw.frames.readFrame(), null);
  } finally {
    await raw.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - after a refused greeting nothing sent behind it runs, even with concurrency", async () => {
  let echoed = 0;
  const handlers: Handlers<TestMethods, null> = {
    ...HANDLERS,
    echo: ({ n }) => {
      echoed++;
      return Promise.resolve({ n });
    },
  };
  const { server, address } = await startServer({ concurrency: 4 }, handlers);
  const raw = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  try {
    // All three in one write: a refused first request, then a proper hello, then work.
    await raw.send(concat(
      encodeFrame({ id: 1, type: "echo", params: { n: 1 } }),
      encodeFrame({ id: 2, type: "hello", params: { protocol: PROTOCOL_VERSION, agent: AGENT } }),
      encodeFrame({ id: 3, type: "echo", params: { n: 3 } }),
    ));
    const reply = await raw.frames.readFrame() as { id: number; error: { code: string } };
    assert.equal(reply.id, 1);
    assert.equal(reply.error.code, "BAD_MESSAGE");
    assert.equal(await raw.frames.readFrame(), null, "the connection closes after the refusal");
    assert.equal(echoed, 0, "no handler ran");
  } finally {
    await raw.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - idleness counts from the last reply out, not only the last request in", async () => {
  const { server, address } = await startServer({ idleTimeoutMs: 300 });
  const client = await connect(address);
  try {
    // The reply takes longer than the idle timeout; the connection must survive its going out.
    assert.deepEqual(await client.call("echo", { n: 1, delayMs: 500 }), { n: 1 });
    await sleep(100);
    assert.deepEqual(await client.call("echo", { n: 2 }), { n: 2 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolClient - a server speaking another protocol version fails the connect with VERSION_MISMATCH", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello(PROTOCOL_VERSION + 1);
    await peer.drain();
  });
  try {
    await assert.rejects(
      connect(fake.address, 2_000),
      shoalError("VERSION_MISMATCH", new RegExp(`protocol ${PROTOCOL_VERSION + 1}\\b`)),
    );
  } finally {
    await fake.close();
  }
});

Deno.test("ProtocolClient - body replies arrive intact when pipelined and written in many chunks", async () => {
  const { server, address } = await startServer();
  const client = await connect(address);
  try {
    const indexes = [0, 3, 1, 7, 2];
    const replies = await Promise.all([
      ...indexes.map((index) =>
        client.callWithBody("piece", { contentId: CONTENT_ID, index }, index * 1000 + 1)
      ),
    ]);
    const echo = await client.call("echo", { n: 9 });
    for (const [i, index] of indexes.entries()) {
      assert.deepEqual(replies[i].result, { index, length: index * 1000 + 1 });
      assert.deepEqual(replies[i].body, pieceBytes(index, index * 1000 + 1));
    }
    // The framing is still aligned after the bodies.
    assert.deepEqual(echo, { n: 9 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolClient - a body split from its header and across writes arrives intact", async () => {
  const body = pieceBytes(5, 70_000);
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const request = await peer.readRequest();
    const frame = encodeFrame({
      id: request!.id,
      ok: true,
      result: { index: 5, length: body.length },
    });
    // Half the header, then the rest of it with the first body bytes, then the body in pieces.
    await peer.send(frame.subarray(0, 2));
    await sleep(20);
    await peer.send(Uint8Array.of(...frame.subarray(2), ...body.subarray(0, 3)));
    for (let offset = 3; offset < body.length; offset += 16_384) {
      await sleep(10);
      await peer.send(body.subarray(offset, offset + 16_384));
    }
    await peer.drain();
  });
  const client = await connect(fake.address);
  try {
    const reply = await client.callWithBody("piece", { contentId: CONTENT_ID, index: 5 });
    assert.deepEqual(reply.result, { index: 5, length: body.length });
    assert.deepEqual(reply.body, body);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - an announced length other than expectedLength fails with BAD_MESSAGE before the body", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const request = await peer.readRequest();
    // Announces the largest piece allowed and never sends it: waiting for it would hang.
    await peer.sendFrame({
      id: request!.id,
      ok: true,
      result: { index: 0, length: 64 * 1024 * 1024 },
    });
    await peer.drain();
  });
  const client = await connect(fake.address, 10_000);
  try {
    await assert.rejects(
      client.callWithBody("piece", { contentId: CONTENT_ID, index: 0 }, 1000),
      shoalError("BAD_MESSAGE", /announced 67108864 bytes where 1000 were expected/),
    );
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a server closing mid-body rejects the pending requests with UNREACHABLE", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const request = await peer.readRequest();
    await peer.sendFrame({ id: request!.id, ok: true, result: { index: 0, length: 1000 } });
    await peer.send(pieceBytes(0, 100));
    await sleep(20);
    // Returning closes the connection 100 bytes into a 1000-byte body.
  });
  const client = await connect(fake.address, 10_000);
  try {
    const first = client.callWithBody("piece", { contentId: CONTENT_ID, index: 0 });
    const second = client.call("echo", { n: 1 });
    await assert.rejects(first, shoalError("UNREACHABLE"));
    await assert.rejects(second, shoalError("UNREACHABLE"));
    assert.equal(client.closed, true);
    await assert.rejects(client.call("echo", { n: 2 }), shoalError("UNREACHABLE"));
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a server that goes silent with a request outstanding fails it with TIMEOUT", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    await peer.drain();
  });
  const client = await connect(fake.address, 300);
  try {
    await assert.rejects(client.call("echo", { n: 1 }), shoalError("TIMEOUT", /300 ms/));
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a connection idle with nothing outstanding does not time out", async () => {
  const { server, address } = await startServer();
  const client = await connect(address, 300);
  try {
    await sleep(600);
    assert.equal(client.closed, false);
    assert.deepEqual(await client.call("echo", { n: 1 }), { n: 1 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("ProtocolClient - a slow but steady server never times out: each reply resets the clock", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    // Collect all six pipelined requests first, then answer one every 200 ms.
    const requests = [];
    for (let i = 0; i < 6; i++) requests.push(await peer.readRequest());
    for (const request of requests) {
      await sleep(200);
      const { n } = request!.params as { n: number };
      await peer.sendFrame({ id: request!.id, ok: true, result: { n } });
    }
    await peer.drain();
  });
  const client = await connect(fake.address, 500);
  try {
    // 1.2 s in all, well over the 500 ms timeout, but never 500 ms of silence.
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, n) => client.call("echo", { n })),
    );
    assert.deepEqual(results, Array.from({ length: 6 }, (_, n) => ({ n })));
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolServer - a client stalled mid-frame holds up nobody else and is dropped when idle", async () => {
  const { server, address, warnings } = await startServer({ idleTimeoutMs: 500 });
  const stalled = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  try {
    await stalled.sendFrame({
      id: 1,
      type: "hello",
      params: { protocol: PROTOCOL_VERSION, agent: AGENT },
    });
    assert.equal((await stalled.frames.readFrame() as { ok: boolean }).ok, true);
    const half = encodeFrame({ id: 2, type: "echo", params: { n: 1 } });
    await stalled.send(half.subarray(0, half.length >> 1));

    const client = await connect(address);
    try {
      const results = await Promise.all([0, 1, 2].map((n) => client.call("echo", { n })));
      assert.deepEqual(results, [{ n: 0 }, { n: 1 }, { n: 2 }]);
    } finally {
      client.close();
    }

    // The stalled connection is closed by the server: its read ends, cleanly or by a reset.
    const ended = await stalled.frames.readFrame().then(
      (frame) => frame,
      (error: unknown) => error instanceof ShoalError ? null : Promise.reject(error),
    );
    assert.equal(ended, null);
    assert.ok(
      warnings.some((line) => /idle for 500 ms, dropped/.test(line)),
      warnings.join("\n"),
    );
  } finally {
    await stalled.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - close() ends open connections and resolves", async () => {
  const { server, address } = await startServer();
  const client = await connect(address);
  const idle = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  let closed = false;
  try {
    await idle.sendFrame({
      id: 1,
      type: "hello",
      params: { protocol: PROTOCOL_VERSION, agent: AGENT },
    });
    await idle.frames.readFrame();
    assert.deepEqual(await client.call("echo", { n: 1 }), { n: 1 });
    // A request still in its handler when the server closes.
    const inFlight = assert.rejects(
      client.call("echo", { n: 2, delayMs: 200 }),
      shoalError("UNREACHABLE"),
    );
    await sleep(50);
    await server.close();
    closed = true;
    await inFlight;
    const ended = await idle.frames.readFrame().catch(() => null);
    assert.equal(ended, null);
    await assert.rejects(
      Deno.connect({ hostname: address.host, port: address.port }),
      Deno.errors.ConnectionRefused,
    );
  } finally {
    client.close();
    await idle.close();
    if (!closed) await server.close();
  }
});

Deno.test("ProtocolServer - a client that stops reading replies is dropped, not served forever", async () => {
  const warnings: string[] = [];
  const big = new Uint8Array(32 * 1024 * 1024);
  const server = new ProtocolServer<TestMethods, null>(TEST_METHODS, {
    ...HANDLERS,
    piece: ({ index }) => Promise.resolve(new WithBody({ index, length: big.length }, [big])),
  }, { kind: "peer", initialState: () => null, idleTimeoutMs: 500, warn: (l) => warnings.push(l) });
  const address = await server.listen(LOCALHOST);
  const reader = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  try {
    await reader.sendFrame({
      id: 1,
      type: "hello",
      params: { protocol: PROTOCOL_VERSION, agent: AGENT },
    });
    for (let index = 0; index < 4; index++) {
      await reader.sendFrame({
        id: 2 + index,
        type: "piece",
        params: { contentId: CONTENT_ID, index },
      });
    }
    // Never read: far more than any socket buffer is waiting to be written.
    while (!warnings.some((line) => /not reading replies for 500 ms, dropped/.test(line))) {
      await sleep(50);
    }
  } finally {
    await reader.close();
    await server.close();
  }
});

/** Sends `bytes` one at a time, `everyMs` apart, until done or the other side goes. */
async function drip(peer: RawPeer, bytes: Uint8Array, everyMs: number): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    await sleep(everyMs);
    await peer.send(bytes.subarray(i, i + 1));
  }
}

Deno.test("ProtocolClient - a reply dripped a byte at a time fails at its deadline, though never silent", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const request = await peer.readRequest();
    await drip(peer, encodeFrame({ id: request!.id, ok: true, result: { n: 1 } }), 60);
    await peer.drain();
  });
  // Silence alone would never end it: a byte comes every 60 ms, the silence limit is 5 s.
  const client = await connect(fake.address, 5_000);
  try {
    await assert.rejects(
      client.call("echo", { n: 1 }, { deadlineMs: 1_000 }),
      shoalError("TIMEOUT", /took over 1000 ms to answer a echo request/),
    );
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a deadline counts from the reply before it, so a long pipeline of prompt replies is fine", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const requests = [];
    for (let i = 0; i < 10; i++) requests.push(await peer.readRequest());
    for (const request of requests) {
      await sleep(250);
      const { n } = request!.params as { n: number };
      await peer.sendFrame({ id: request!.id, ok: true, result: { n } });
    }
    await peer.drain();
  });
  const client = await connect(fake.address);
  try {
    // About 2.5 s for the last reply from its sending, but 250 ms from the reply before it.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, n) => client.call("echo", { n }, { deadlineMs: 1500 })),
    );
    assert.deepEqual(results, Array.from({ length: 10 }, (_, n) => ({ n })));
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a hello dripped a byte at a time fails the connect", async () => {
  const fake = new FakeServer(async (peer) => {
    const hello = await peer.readRequest();
    const reply = {
      id: hello!.id,
      ok: true,
      result: { protocol: PROTOCOL_VERSION, server: "peer" },
    };
    await drip(peer, encodeFrame(reply), 60);
    await peer.drain();
  });
  try {
    await assert.rejects(
      connect(fake.address, 1_000),
      shoalError("UNREACHABLE", /does not answer as a Shoal server \(.*took over 1000 ms/),
    );
  } finally {
    await fake.close();
  }
});

Deno.test("ProtocolClient - a reply with an id no request carries fails the connection with BAD_MESSAGE", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const request = await peer.readRequest();
    await peer.sendFrame({ id: request!.id + 100, ok: true, result: { n: 1 } });
    await peer.drain();
  });
  const client = await connect(fake.address, 10_000);
  try {
    const first = client.call("echo", { n: 1 });
    const second = client.call("echo", { n: 2 });
    await assert.rejects(first, shoalError("BAD_MESSAGE", /id 102, which no request/));
    await assert.rejects(second, shoalError("BAD_MESSAGE", /id 102, which no request/));
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a reply to a later request before an earlier one fails the connection with BAD_MESSAGE", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    const first = await peer.readRequest();
    const second = await peer.readRequest();
    // The right result for the second request, but sent first: the protocol answers in order.
    await peer.sendFrame({ id: second!.id, ok: true, result: { n: 2 } });
    await peer.sendFrame({ id: first!.id, ok: true, result: { n: 1 } });
    await peer.drain();
  });
  const client = await connect(fake.address, 10_000);
  try {
    const first = client.call("echo", { n: 1 });
    const second = client.call("echo", { n: 2 });
    await assert.rejects(first, shoalError("BAD_MESSAGE", /answered request 3 before request 2/));
    await assert.rejects(second, shoalError("BAD_MESSAGE"));
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a hello answered with another id fails the connect", async () => {
  const fake = new FakeServer(async (peer) => {
    const hello = await peer.readRequest();
    const result = { protocol: PROTOCOL_VERSION, server: "peer" };
    await peer.sendFrame({ id: hello!.id + 1, ok: true, result });
    await peer.drain();
  });
  try {
    await assert.rejects(
      connect(fake.address, 10_000),
      shoalError("UNREACHABLE", /does not answer as a Shoal server \(.*id 2, which no request/),
    );
  } finally {
    await fake.close();
  }
});

Deno.test("ProtocolClient - an error reply with id -1 fails the connection with the error it carries", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    await peer.readRequest();
    const error = { code: "FRAME_TOO_LARGE", message: "frame of 2000000 bytes exceeds the limit" };
    await peer.sendFrame({ id: -1, ok: false, error });
    await peer.drain();
  });
  const client = await connect(fake.address, 10_000);
  try {
    const first = client.call("echo", { n: 1 });
    const second = client.call("echo", { n: 2 });
    await assert.rejects(first, shoalError("FRAME_TOO_LARGE", /2000000 bytes/));
    await assert.rejects(second, shoalError("FRAME_TOO_LARGE"));
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a success reply with id -1 fails the connection with BAD_MESSAGE", async () => {
  const fake = new FakeServer(async (peer) => {
    await peer.answerHello();
    await peer.readRequest();
    await peer.sendFrame({ id: -1, ok: true, result: { n: 1 } });
    await peer.drain();
  });
  const client = await connect(fake.address, 10_000);
  try {
    await assert.rejects(client.call("echo", { n: 1 }), shoalError("BAD_MESSAGE", /id -1/));
    assert.equal(client.closed, true);
  } finally {
    client.close();
    await fake.close();
  }
});

Deno.test("ProtocolClient - a server that accepts but never answers TLS is TIMEOUT, not a plaintext server", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  // Accepts the connection (as a stopped process's kernel does) and never says a word.
  const silent = new FakeServer(() => held);
  const { certificate } = await createIdentity();
  try {
    await assert.rejects(
      ProtocolClient.connect(silent.address, TEST_METHODS, {
        agent: AGENT,
        timeoutMs: 300,
        tls: { certificate, whose: "the pinned one" },
      }),
      (error: unknown) => {
        assert.ok(error instanceof ShoalError);
        assert.equal(error.code, "TIMEOUT");
        assert.match(error.message, /^no answer from .*the TLS handshake .* took over 300 ms$/);
        assert.doesNotMatch(error.message, /insecure-plaintext/);
        return true;
      },
    );
  } finally {
    release();
    await silent.close();
  }
});

/**
 * Asks a server for 64 pieces of 1 MiB (more than loopback's socket buffers
 * hold) and never reads them, over TLS when given an identity: once the
 * buffers are full, the bytes written to the client stop growing while the
 * time writes wait for it grows.
 */
async function writesWaitForAClientThatStopsReading(tls?: TlsIdentity): Promise<void> {
  const PIECE = 1024 * 1024;
  let connection: Connection<null> | null = null;
  const handlers: Handlers<TestMethods, null> = {
    ...HANDLERS,
    piece: ({ index }, served) => {
      connection = served;
      return Promise.resolve(new WithBody({ index, length: PIECE }, [new Uint8Array(PIECE)]));
    },
  };
  const { server, address } = await startServer({ concurrency: 4, tls }, handlers);
  const tcp = await Deno.connect({ hostname: address.host, port: address.port });
  let conn: Deno.Conn = tcp;
  if (tls) {
    const secured = await Deno.startTls(tcp, {
      hostname: TLS_SERVER_NAME,
      caCerts: [tls.certificate],
    });
    await secured.handshake();
    conn = secured;
  }
  const raw = new RawPeer(conn);
  try {
    const requests = Array.from(
      { length: 64 },
      (_, i) =>
        encodeFrame({ id: 2 + i, type: "piece", params: { contentId: CONTENT_ID, index: i } }),
    );
    raw.send(concat(
      encodeFrame({ id: 1, type: "hello", params: { protocol: PROTOCOL_VERSION, agent: AGENT } }),
      ...requests,
    )).catch(() => {});
    // The sockets' buffers take the first megabytes; then a write waits, and bytes stop.
    let before = { bytes: -1, ms: 0 };
    await eventually(
      () => {
        const now = connection?.wrote ?? { bytes: -1, ms: 0 };
        const stopped = now.bytes > 0 && now.bytes === before.bytes;
        before = now;
        return stopped;
      },
      "the bytes written stop growing",
      { tries: 200, everyMs: 50 },
    );
    const after = await new Promise<{ bytes: number; ms: number }>((resolve) =>
      setTimeout(() => resolve(connection!.wrote), 100)
    );
    assert.equal(after.bytes, before.bytes, "nothing more was taken");
    assert.ok(after.ms > before.ms, `${JSON.stringify(before)} then ${JSON.stringify(after)}`);
  } finally {
    await raw.close();
    await server.close();
  }
}

Deno.test("ProtocolServer - a client that stops reading: the bytes written to it stop growing while the time writes wait for it grows", async () => {
  await writesWaitForAClientThatStopsReading();
});

Deno.test("ProtocolServer - over TLS too, a client that stops reading: the bytes written to it stop growing while the time writes wait for it grows (TLS buffers no more than the sockets)", async () => {
  await writesWaitForAClientThatStopsReading(await createIdentity());
});

Deno.test("ProtocolServer - a large body goes out in writes of at most MAX_WRITE_BYTES, so a client reading a big piece steadily is never taken for one not reading", async () => {
  const PIECE = 16 * 1024 * 1024;
  let connection: Connection<null> | null = null;
  const handlers: Handlers<TestMethods, null> = {
    ...HANDLERS,
    piece: ({ index }, served) => {
      connection = served;
      return Promise.resolve(new WithBody({ index, length: PIECE }, [new Uint8Array(PIECE)]));
    },
  };
  const { server, address } = await startServer({}, handlers);
  const raw = new RawPeer(await Deno.connect({ hostname: address.host, port: address.port }));
  try {
    raw.send(concat(
      encodeFrame({ id: 1, type: "hello", params: { protocol: PROTOCOL_VERSION, agent: AGENT } }),
      encodeFrame({ id: 2, type: "piece", params: { contentId: CONTENT_ID, index: 0 } }),
    )).catch(() => {});
    // Never read: the sockets' buffers take whole slices of the body (in one write, none would
    // be done before the client had read all of it), and the rest waits.
    await eventually(
      () => (connection?.wrote.bytes ?? 0) >= MAX_WRITE_BYTES,
      "a slice of the body was written",
      { tries: 1_000 },
    );
    assert.ok(connection!.wrote.bytes < PIECE, JSON.stringify(connection!.wrote));
  } finally {
    await raw.close();
    await server.close();
  }
});
