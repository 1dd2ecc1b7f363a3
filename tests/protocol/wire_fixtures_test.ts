/**
 * The wire, pinned as fixed bytes. Every hex string and digest below was
 * computed once by hand, outside this code, e.g.
 *
 *     J='{"id":1,"ok":true,"result":{"protocol":4,"server":"peer"}}'
 *     printf '%08x' "$(printf %s "$J" | wc -c)"; printf %s "$J" | xxd -p
 *     printf %s '{"version":1,"size":0,"pieceSize":262144,"pieces":[]}' | sha256sum
 *
 * so a change that alters a byte on the wire, or a content id, fails here
 * loudly: peers of different versions would no longer understand each
 * other, and every published content id would change. If such a change is
 * meant, it is a new protocol version (PROTOCOL_VERSION) and these fixtures
 * are recomputed the same way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Address } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { type ErrorCode, ShoalError } from "../../lib/protocol/errors.ts";
import { encodeFrame, FrameReader, MAX_FRAME_BYTES, writeAll } from "../../lib/protocol/frame.ts";
import { type Manifest, PEER_METHODS } from "../../lib/protocol/messages.ts";
import { ProtocolServer, WithBody } from "../../lib/protocol/server.ts";
import { buildManifest, contentIdOf } from "../../lib/peer/manifest.ts";
import { concat } from "../helpers/bytes.ts";

const LOCALHOST: Address = { host: "127.0.0.1", port: 0 };
const AGENT = "shoal-peer/0.1.0";

/** The content id of the two-piece manifest below, used as the pieces' content. */
const CONTENT_ID = "9ddff530dbfeb59293ada8faf699fb39ce77c773e0211898502e40524c3b518a";

// {"id":1,"type":"hello","params":{"protocol":4,"agent":"shoal-peer/0.1.0"}}
const HELLO_REQUEST =
  "0000004a7b226964223a312c2274797065223a2268656c6c6f222c22706172616d73223a7b2270726f746f636f6c223a342c226167656e74223a2273686f616c2d706565722f302e312e30227d7d";
// {"id":1,"ok":true,"result":{"protocol":4,"server":"peer"}}
const HELLO_REPLY =
  "0000003a7b226964223a312c226f6b223a747275652c22726573756c74223a7b2270726f746f636f6c223a342c22736572766572223a2270656572227d7d";
// {"id":2,"type":"piece","params":{"contentId":"9ddf…518a","index":1}}
const PIECE_REQUEST =
  "0000007b7b226964223a322c2274797065223a227069656365222c22706172616d73223a7b22636f6e74656e744964223a2239646466663533306462666562353932393361646138666166363939666233396365373763373733653032313138393835303265343035323463336235313861222c22696e646578223a317d7d";
// {"id":2,"ok":true,"result":{"index":1,"length":6}}
const PIECE_REPLY_HEADER =
  "000000327b226964223a322c226f6b223a747275652c22726573756c74223a7b22696e646578223a312c226c656e677468223a367d7d";
// hello\n: the raw body right after the header, in no frame
const PIECE_REPLY_BODY = "68656c6c6f0a";
// {"id":3,"type":"piece","params":{"contentId":"9ddf…518a","index":2}}
const MISSING_PIECE_REQUEST =
  "0000007b7b226964223a332c2274797065223a227069656365222c22706172616d73223a7b22636f6e74656e744964223a2239646466663533306462666562353932393361646138666166363939666233396365373763373733653032313138393835303265343035323463336235313861222c22696e646578223a327d7d";
// {"id":3,"ok":false,"error":{"code":"NOT_FOUND","message":"no piece 2"}}
const ERROR_REPLY =
  "000000477b226964223a332c226f6b223a66616c73652c226572726f72223a7b22636f6465223a224e4f545f464f554e44222c226d657373616765223a226e6f2070696563652032227d7d";
// {"id":4,"type":"queue","params":{"contentId":"9ddf…518a"}}
const QUEUE_REQUEST =
  "000000717b226964223a342c2274797065223a227175657565222c22706172616d73223a7b22636f6e74656e744964223a2239646466663533306462666562353932393361646138666166363939666233396365373763373733653032313138393835303265343035323463336235313861227d7d";
// {"id":4,"ok":true,"result":{"place":3,"slots":4,"retryMs":500}}
const QUEUE_REPLY =
  "0000003f7b226964223a342c226f6b223a747275652c22726573756c74223a7b22706c616365223a332c22736c6f7473223a342c2272657472794d73223a3530307d7d";
// {"id":5,"ok":false,"error":{"code":"QUEUED","message":"queued: place 3 for one of 4 upload slots"}}
const QUEUED_REPLY =
  "000000637b226964223a352c226f6b223a66616c73652c226572726f72223a7b22636f6465223a22515545554544222c226d657373616765223a227175657565643a20706c616365203320666f72206f6e65206f6620342075706c6f616420736c6f7473227d7d";
// {"id":6,"type":"piece","params":{"contentId":"9ddf…518a","index":0,"alternatives":"QA=="}}:
// piece 0, or piece 1 instead (bitfield 0x40), as a downloader asks a seed
const PIECE_OR_ALTERNATIVE_REQUEST =
  "000000917b226964223a362c2274797065223a227069656365222c22706172616d73223a7b22636f6e74656e744964223a2239646466663533306462666562353932393361646138666166363939666233396365373763373733653032313138393835303265343035323463336235313861222c22696e646578223a302c22616c7465726e617469766573223a2251413d3d227d7d";
/** The content id of `hello\n` (one piece of 6 bytes), asked for in a batch. */
const HELLO_ID = "00f11592d95e2c895df020637632084f84c47c4a504c02145cca15e758a58ddb";
/** The content id of an empty file, which has no piece to send. */
const EMPTY_ID = "bd6f079b737ddf4fed9c89763ae76e2344db9c1553226c7074f137ac7a1f6ef8";
// {"id":2,"type":"pieces","params":{"items":[{"contentId":"00f1…8ddb","index":0},
// {"contentId":"bd6f…6ef8","index":0}]}}: a batch of two small contents
const PIECES_REQUEST =
  "000000e37b226964223a322c2274797065223a22706965636573222c22706172616d73223a7b226974656d73223a5b7b22636f6e74656e744964223a2230306631313539326439356532633839356466303230363337363332303834663834633437633461353034633032313435636361313565373538613538646462222c22696e646578223a307d2c7b22636f6e74656e744964223a2262643666303739623733376464663466656439633839373633616537366532333434646239633135353332323663373037346631333761633761316636656638222c22696e646578223a307d5d7d7d";
// {"id":2,"ok":true,"result":{"length":6,"items":[{"length":6},
// {"error":{"code":"NOT_FOUND","message":"not here"}}]}}: the first sent, the second refused on
// its own; its body (hello\n, PIECE_REPLY_BODY) follows
const PIECES_REPLY_HEADER =
  "000000737b226964223a322c226f6b223a747275652c22726573756c74223a7b226c656e677468223a362c226974656d73223a5b7b226c656e677468223a367d2c7b226572726f72223a7b22636f6465223a224e4f545f464f554e44222c226d657373616765223a226e6f742068657265227d7d5d7d7d";
/** A frame header announcing one byte more than MAX_FRAME_BYTES (1 MiB). */
const OVERSIZED_HEADER = "00100001";

/** The messages the frames above carry, as their senders build them. */
const FIXTURES: { name: string; hex: string; message: unknown }[] = [
  {
    name: "hello request",
    hex: HELLO_REQUEST,
    message: { id: 1, type: "hello", params: { protocol: 4, agent: AGENT } },
  },
  {
    name: "hello reply",
    hex: HELLO_REPLY,
    message: { id: 1, ok: true, result: { protocol: 4, server: "peer" } },
  },
  {
    name: "piece request",
    hex: PIECE_REQUEST,
    message: { id: 2, type: "piece", params: { contentId: CONTENT_ID, index: 1 } },
  },
  {
    name: "piece reply header",
    hex: PIECE_REPLY_HEADER,
    message: { id: 2, ok: true, result: { index: 1, length: 6 } },
  },
  {
    name: "error reply",
    hex: ERROR_REPLY,
    message: { id: 3, ok: false, error: { code: "NOT_FOUND", message: "no piece 2" } },
  },
  {
    name: "queue request",
    hex: QUEUE_REQUEST,
    message: { id: 4, type: "queue", params: { contentId: CONTENT_ID } },
  },
  {
    name: "queue reply",
    hex: QUEUE_REPLY,
    message: { id: 4, ok: true, result: { place: 3, slots: 4, retryMs: 500 } },
  },
  {
    name: "queued error reply",
    hex: QUEUED_REPLY,
    message: {
      id: 5,
      ok: false,
      error: { code: "QUEUED", message: "queued: place 3 for one of 4 upload slots" },
    },
  },
  {
    name: "piece request with alternatives",
    hex: PIECE_OR_ALTERNATIVE_REQUEST,
    message: {
      id: 6,
      type: "piece",
      params: { contentId: CONTENT_ID, index: 0, alternatives: "QA==" },
    },
  },
  {
    name: "pieces request",
    hex: PIECES_REQUEST,
    message: {
      id: 2,
      type: "pieces",
      params: { items: [{ contentId: HELLO_ID, index: 0 }, { contentId: EMPTY_ID, index: 0 }] },
    },
  },
  {
    name: "pieces reply header",
    hex: PIECES_REPLY_HEADER,
    message: {
      id: 2,
      ok: true,
      result: {
        length: 6,
        items: [{ length: 6 }, { error: { code: "NOT_FOUND", message: "not here" } }],
      },
    },
  },
];

/** Manifests and their content ids, each digest from `printf %s '<json>' | sha256sum`. */
const MANIFESTS: { name: string; content: Uint8Array; manifest: Manifest; contentId: string }[] = [
  {
    name: "an empty file",
    content: new Uint8Array(),
    manifest: { version: 1, size: 0, pieceSize: 262144, pieces: [] },
    contentId: "bd6f079b737ddf4fed9c89763ae76e2344db9c1553226c7074f137ac7a1f6ef8",
  },
  {
    name: "hello\\n",
    content: new TextEncoder().encode("hello\n"),
    manifest: {
      version: 1,
      size: 6,
      pieceSize: 262144,
      pieces: ["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"],
    },
    contentId: "00f11592d95e2c895df020637632084f84c47c4a504c02145cca15e758a58ddb",
  },
  {
    name: "262,144 bytes of 'a' then one 'b' (two pieces)",
    content: concat(new Uint8Array(262144).fill(0x61), new Uint8Array([0x62])),
    manifest: {
      version: 1,
      size: 262145,
      pieceSize: 262144,
      pieces: [
        "dd3dde87623d9a6b354c68c943d189c89c63652d945e7bbdf0986cae91a49521",
        "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
      ],
    },
    contentId: CONTENT_ID,
  },
];

function fromHex(hex: string): Uint8Array {
  assert.match(hex, /^(?:[0-9a-f]{2})*$/, "a fixture is whole bytes of lowercase hex");
  return Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Fails naming `what` when `promise` takes over 10 s: a wire test never hangs. */
async function within<V>(promise: Promise<V>, what: string): Promise<V> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over 10 s`)), 10_000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads exactly `length` bytes from `frames`, within the bound. */
async function readExactly(frames: FrameReader, length: number, what: string): Promise<string> {
  return toHex(await within(frames.readBytes(length), what));
}

/** Only what the fixtures need of a peer's methods. */
const TABLE = { hello: PEER_METHODS.hello, piece: PEER_METHODS.piece, pieces: PEER_METHODS.pieces };

/**
 * A real peer-kind server whose `piece` handler serves piece 1 as `hello\n`
 * and nothing else, and whose `pieces` sends `hello\n` for its content id.
 */
async function startPieceServer(): Promise<
  { server: ProtocolServer<typeof TABLE, null>; address: Address }
> {
  const server = new ProtocolServer(TABLE, {
    piece: ({ index }) => {
      if (index !== 1) throw new ShoalError("NOT_FOUND", `no piece ${index}`);
      return Promise.resolve(
        new WithBody({ index, length: 6 }, [new TextEncoder().encode("hello\n")]),
      );
    },
    pieces: ({ items }) => {
      const hello = new TextEncoder().encode("hello\n");
      const sent = items.map(({ contentId }) =>
        contentId === HELLO_ID ? { length: 6 } : {
          error: { code: "NOT_FOUND", message: "not here" },
        }
      );
      const bodies = sent.filter((item) => "length" in item).map(() => hello);
      return Promise.resolve(new WithBody({ length: bodies.length * 6, items: sent }, bodies));
    },
  }, { kind: "peer", initialState: () => null, warn: () => {} });
  return { server, address: await server.listen(LOCALHOST) };
}
Deno.test("Wire fixtures - encodeFrame writes exactly the pinned bytes of each message", () => {
  for (const { name, hex, message } of FIXTURES) {
    assert.equal(toHex(encodeFrame(message)), hex, `the ${name} frame changed on the wire`);
  }
});

Deno.test("Wire fixtures - FrameReader reads the pinned bytes back as the messages, and a piece body after its header", async () => {
  const stream = ReadableStream.from([
    fromHex(
      FIXTURES.map((fixture) => fixture.hex).join("")
        .replace(PIECE_REPLY_HEADER, PIECE_REPLY_HEADER + PIECE_REPLY_BODY)
        .replace(PIECES_REPLY_HEADER, PIECES_REPLY_HEADER + PIECE_REPLY_BODY),
    ),
  ]);
  const frames = new FrameReader(stream);
  for (const { name, message } of FIXTURES) {
    assert.deepEqual(await frames.readFrame(), message, `the ${name} frame reads otherwise`);
    if (name === "piece reply header" || name === "pieces reply header") {
      assert.equal(toHex(await frames.readBytes(6)), PIECE_REPLY_BODY);
    }
  }
  assert.equal(await frames.readFrame(), null);
});

Deno.test("Wire fixtures - a header announcing 1 MiB + 1 fails with FRAME_TOO_LARGE before any body is read", async () => {
  assert.equal(parseInt(OVERSIZED_HEADER, 16), MAX_FRAME_BYTES + 1);
  // Nothing follows the header: a reader that waited for the body would end with BAD_MESSAGE instead.
  const frames = new FrameReader(ReadableStream.from([fromHex(OVERSIZED_HEADER)]));
  await assert.rejects(frames.readFrame(), shoalError("FRAME_TOO_LARGE", /1048577 bytes/));
});

Deno.test("Wire fixtures - a real server answers the pinned requests with the pinned replies, byte for byte", async () => {
  const { server, address } = await startPieceServer();
  const conn = await Deno.connect({ hostname: address.host, port: address.port });
  const frames = new FrameReader(conn);
  try {
    await writeAll(conn, fromHex(HELLO_REQUEST + PIECE_REQUEST + MISSING_PIECE_REQUEST));
    const expected = HELLO_REPLY + PIECE_REPLY_HEADER + PIECE_REPLY_BODY + ERROR_REPLY;
    assert.equal(
      await readExactly(frames, expected.length / 2, "the server's replies"),
      expected,
    );
  } finally {
    await frames.cancel();
    conn.close();
    await server.close();
  }
});

Deno.test("Wire fixtures - a real server answers the pinned pieces request with the pinned reply and body", async () => {
  const { server, address } = await startPieceServer();
  const conn = await Deno.connect({ hostname: address.host, port: address.port });
  const frames = new FrameReader(conn);
  try {
    await writeAll(conn, fromHex(HELLO_REQUEST + PIECES_REQUEST));
    const expected = HELLO_REPLY + PIECES_REPLY_HEADER + PIECE_REPLY_BODY;
    assert.equal(
      await readExactly(frames, expected.length / 2, "the server's replies"),
      expected,
    );
  } finally {
    await frames.cancel();
    conn.close();
    await server.close();
  }
});

Deno.test("Wire fixtures - a real client sends the pinned pieces request and reads the pinned reply", async () => {
  const listener = Deno.listen({ hostname: LOCALHOST.host, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let sent = "";
  const serving = (async () => {
    const conn = await listener.accept();
    const frames = new FrameReader(conn);
    try {
      await readExactly(frames, HELLO_REQUEST.length / 2, "the hello request");
      await writeAll(conn, fromHex(HELLO_REPLY));
      sent = await readExactly(frames, PIECES_REQUEST.length / 2, "the pieces request");
      await writeAll(conn, fromHex(PIECES_REPLY_HEADER + PIECE_REPLY_BODY));
      await within(frames.readFrame(), "the client's close");
    } finally {
      await frames.cancel();
      conn.close();
    }
  })();
  try {
    const client = await ProtocolClient.connect({ host: LOCALHOST.host, port }, TABLE, {
      agent: AGENT,
    });
    try {
      const { result, body } = await client.callWithBody("pieces", {
        items: [{ contentId: HELLO_ID, index: 0 }, { contentId: EMPTY_ID, index: 0 }],
      });
      assert.deepEqual(result, {
        length: 6,
        items: [{ length: 6 }, { error: { code: "NOT_FOUND", message: "not here" } }],
      });
      assert.equal(toHex(body), PIECE_REPLY_BODY);
    } finally {
      client.close();
    }
    await serving;
    assert.equal(sent, PIECES_REQUEST);
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("Wire fixtures - a real server answers a frame over the limit with FRAME_TOO_LARGE, id -1, and closes", async () => {
  const { server, address } = await startPieceServer();
  const conn = await Deno.connect({ hostname: address.host, port: address.port });
  const frames = new FrameReader(conn);
  try {
    await writeAll(conn, fromHex(HELLO_REQUEST + OVERSIZED_HEADER));
    assert.equal(await readExactly(frames, HELLO_REPLY.length / 2, "the hello reply"), HELLO_REPLY);
    const refusal = await within(frames.readFrame(), "the refusal") as {
      id: number;
      ok: boolean;
      error: { code: string };
    };
    assert.deepEqual([refusal.id, refusal.ok, refusal.error.code], [-1, false, "FRAME_TOO_LARGE"]);
    assert.equal(await within(frames.readFrame(), "the end of the connection"), null);
  } finally {
    await frames.cancel();
    conn.close();
    await server.close();
  }
});

Deno.test("Wire fixtures - a real client sends the pinned requests and reads the pinned replies", async () => {
  const listener = Deno.listen({ hostname: LOCALHOST.host, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const sent: string[] = [];
  const serving = (async () => {
    const conn = await listener.accept();
    const frames = new FrameReader(conn);
    try {
      // Each request is read as raw bytes of its pinned length, then answered with pinned bytes.
      sent.push(await readExactly(frames, HELLO_REQUEST.length / 2, "the hello request"));
      await writeAll(conn, fromHex(HELLO_REPLY));
      sent.push(await readExactly(frames, PIECE_REQUEST.length / 2, "the piece request"));
      sent.push(await readExactly(frames, MISSING_PIECE_REQUEST.length / 2, "the second request"));
      await writeAll(conn, fromHex(PIECE_REPLY_HEADER + PIECE_REPLY_BODY + ERROR_REPLY));
      await within(frames.readFrame(), "the client's close");
    } finally {
      await frames.cancel();
      conn.close();
    }
  })();
  try {
    const client = await ProtocolClient.connect({ host: LOCALHOST.host, port }, TABLE, {
      agent: AGENT,
    });
    try {
      const piece = client.callWithBody("piece", { contentId: CONTENT_ID, index: 1 }, 6);
      const missing = client.call("piece", { contentId: CONTENT_ID, index: 2 });
      const { result, body } = await piece;
      assert.deepEqual(result, { index: 1, length: 6 });
      assert.equal(toHex(body), PIECE_REPLY_BODY);
      await assert.rejects(missing, shoalError("NOT_FOUND", /^no piece 2$/));
    } finally {
      client.close();
    }
    await serving;
    assert.deepEqual(sent, [HELLO_REQUEST, PIECE_REQUEST, MISSING_PIECE_REQUEST]);
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("Content ids - fixed manifests have their pinned content ids", () => {
  for (const { name, manifest, contentId } of MANIFESTS) {
    assert.equal(contentIdOf(manifest), contentId, `the content id of ${name} changed`);
  }
});

Deno.test("Content ids - a file is hashed into its pinned manifest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-wire-" });
  try {
    for (const { name, content, manifest, contentId } of MANIFESTS) {
      const path = join(dir, "file");
      await Deno.writeFile(path, content);
      const built = await buildManifest(path);
      assert.deepEqual(built, manifest, `the manifest of ${name} changed`);
      assert.equal(contentIdOf(built), contentId);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A validator for `assert.rejects`: a ShoalError with `code` whose message matches `pattern`. */
function shoalError(code: ErrorCode, pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ShoalError, `expected a ShoalError, got ${error}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}
