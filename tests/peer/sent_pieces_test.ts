import assert from "node:assert/strict";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { SentPieces } from "../../lib/peer/sent_pieces.ts";
import type { ShoalError } from "../../lib/protocol/errors.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { connectTo, TicketAuthority } from "../helpers/sources.ts";

const PIECE_SIZE = 64 * 1024;
const PIECES = 4;
const CONTENT = Uint8Array.from({ length: PIECES * PIECE_SIZE }, (_, i) => i & 0xff);
const { contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

Deno.test("SentPieces - marks per content, and an unknown content has nothing sent", () => {
  const sent = new SentPieces();
  sent.mark("a", 2, PIECES);
  const marked = Bitfield.fromBase64(sent.toBase64("a", PIECES), PIECES);
  assert.deepEqual([...Array(PIECES).keys()].filter((i) => marked.has(i)), [2]);
  assert.equal(Bitfield.fromBase64(sent.toBase64("b", PIECES), PIECES).count, 0);
});

/** The pieces a bitfield marks, in order. */
function marked(field: Bitfield): number[] {
  return [...Array(field.size).keys()].filter((i) => field.has(i));
}

/** A bitfield of `size` pieces marking `indexes`. */
function fieldOf(size: number, indexes: number[]): Bitfield {
  const field = new Bitfield(size);
  for (const i of indexes) field.set(i);
  return field;
}

Deno.test("SentPieces - choose sends the piece asked for while it was never sent, whatever the alternatives", () => {
  const sent = new SentPieces();
  sent.mark("a", 0, PIECES);
  assert.equal(sent.choose("a", 1, fieldOf(PIECES, [2, 3]), () => true), 1);
  assert.equal(sent.choose("a", 0, null, () => true), 0, "no alternatives: the piece asked for");
  assert.equal(sent.choose("b", 0, fieldOf(PIECES, [1]), () => true), 0, "nothing sent yet");
});

Deno.test("SentPieces - choose sends the least-sent alternative instead of a piece sent already", () => {
  const sent = new SentPieces();
  for (const i of [0, 0, 1, 2, 2]) sent.mark("a", i, PIECES);
  // Piece 0 went out twice; of the alternatives 1 and 2 (once and twice), 1 is sent; 3 is not asked.
  for (const draw of [0, 0.3, 0.6, 0.99]) {
    assert.equal(sent.choose("a", 0, fieldOf(PIECES, [1, 2]), () => true, () => draw), 1);
  }
  // Alternatives sent as often as the piece asked for change nothing.
  assert.equal(sent.choose("a", 1, fieldOf(PIECES, [0, 2]), () => true), 1);
  // One the server cannot send (say, another length) is passed over.
  assert.equal(sent.choose("a", 0, fieldOf(PIECES, [1, 3]), (i) => i !== 3), 1);
  assert.equal(sent.choose("a", 0, fieldOf(PIECES, [3]), (i) => i !== 3), 0);
});

Deno.test("SentPieces - choose spreads requests over the alternatives never sent", () => {
  const sent = new SentPieces();
  sent.mark("a", 0, PIECES);
  const chosen = new Set(
    [0, 0.3, 0.6, 0.9].map((draw) =>
      sent.choose("a", 0, fieldOf(PIECES, [1, 2, 3]), () => true, () => draw)
    ),
  );
  assert.ok(chosen.size > 1, `several alternatives chosen (${[...chosen]})`);
  assert.ok(!chosen.has(0));
});

Deno.test("SentPieces - have's sent marks the pieces sent more often than the least sent, so a seed is fresh for the next crowd", () => {
  const sent = new SentPieces();
  for (const i of [0, 1, 2, 3, 1]) sent.mark("a", i, PIECES);
  // Every piece went out once (to one downloader alone), piece 1 twice.
  assert.deepEqual(marked(Bitfield.fromBase64(sent.toBase64("a", PIECES), PIECES)), [1]);
  sent.unmark("a", 1);
  assert.deepEqual(marked(Bitfield.fromBase64(sent.toBase64("a", PIECES), PIECES)), []);
});

Deno.test("PieceServer - a piece it could not read is not told to others as sent", async () => {
  const memory = memoryCatalog(CONTENT, PIECE_SIZE);
  // Piece 1 is unreadable (a failing disk); the others read as usual.
  const catalog: Catalog = {
    find: async (contentId) => {
      const content = await memory.find(contentId);
      return content && {
        ...content,
        read: (index, into) =>
          index === 1 ? Promise.reject(new Error("disk error")) : content.read(index, into),
      };
    },
  };
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const { server, source } = await authority.serve(catalog, "alice");
  const client = await connectTo(source);
  try {
    await assert.rejects(client.callWithBody("piece", { contentId: CONTENT_ID, index: 1, ticket }));
    await client.callWithBody("piece", { contentId: CONTENT_ID, index: 2, ticket });
    const { sent } = await client.call("have", { contentId: CONTENT_ID, ticket });
    const marked = Bitfield.fromBase64(sent!, PIECES);
    assert.deepEqual([...Array(PIECES).keys()].filter((i) => marked.has(i)), [2]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("PieceServer - a piece sent already is answered with an alternative never sent, named in the reply", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const { server, source } = await authority.serve(memoryCatalog(CONTENT, PIECE_SIZE), "alice");
  const client = await connectTo(source);
  try {
    const ask = (index: number, instead: number[]) =>
      client.callWithBody("piece", {
        contentId: CONTENT_ID,
        index,
        ticket,
        alternatives: fieldOf(PIECES, instead).toBase64(),
      });
    assert.equal((await ask(0, [1, 2])).result.index, 0, "never sent: the piece asked for");
    const { result, body } = await ask(0, [3]);
    assert.equal(result.index, 3);
    assert.deepEqual(body, CONTENT.subarray(3 * PIECE_SIZE, 4 * PIECE_SIZE));
    // Every alternative sent as often as piece 0: piece 0 after all.
    assert.equal((await ask(0, [3])).result.index, 0);
    await assert.rejects(
      client.callWithBody("piece", {
        contentId: CONTENT_ID,
        index: 0,
        ticket,
        alternatives: "AAAA",
      }),
      (error: ShoalError) => error.code === "BAD_MESSAGE",
    );
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("PieceServer - an alternative of another length than the piece asked for is never sent", async () => {
  // Three whole pieces and a short last one.
  const content = CONTENT.subarray(0, 3 * PIECE_SIZE + 100);
  const { contentId } = manifestOf(content, PIECE_SIZE);
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(contentId);
  const { server, source } = await authority.serve(memoryCatalog(content, PIECE_SIZE), "alice");
  const client = await connectTo(source);
  try {
    const ask = (index: number, instead: number[]) =>
      client.callWithBody("piece", {
        contentId,
        index,
        ticket,
        alternatives: fieldOf(PIECES, instead).toBase64(),
      });
    assert.equal((await ask(0, [])).result.index, 0);
    // Piece 0 was sent once, the short piece 3 never: still piece 0, of the length asked for.
    const { result, body } = await ask(0, [3]);
    assert.equal(result.index, 0);
    assert.equal(body.length, PIECE_SIZE);
    // And the other way round: asked for the short piece, a whole one is not sent instead.
    assert.equal((await ask(3, [])).result.index, 3);
    const short = await ask(3, [1, 2]);
    assert.equal(short.result.index, 3);
    assert.equal(short.body.length, 100);
  } finally {
    client.close();
    await server.close();
  }
});
