import assert from "node:assert/strict";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { SentPieces } from "../../lib/peer/sent_pieces.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { parseAddress } from "../../lib/protocol/address.ts";
import { PEER_METHODS } from "../../lib/protocol/messages.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { TicketAuthority } from "../helpers/sources.ts";

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
  const client = await ProtocolClient.connect(parseAddress(source.address), PEER_METHODS, {
    agent: "sent-pieces-test",
    expect: "peer",
  });
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
