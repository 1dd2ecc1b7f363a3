import assert from "node:assert/strict";
import { signTicket } from "../../lib/protocol/tickets.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import { pieceLength } from "../../lib/peer/manifest.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { Swarm } from "../../lib/peer/swarm.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";

const PIECE_SIZE = 256 * 1024;
const PIECES = 64;
const CONTENT = Uint8Array.from(
  { length: PIECES * PIECE_SIZE - 100 },
  (_, i) => (i * 17 + 5) & 0xff,
);
const CATALOG = memoryCatalog(CONTENT, PIECE_SIZE);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

/** A plaintext piece server for {@link CONTENT}, and a ticket it accepts. */
async function startSource() {
  const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const server = new PieceServer(CATALOG, { username: () => "alice" });
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  await server.trustTicketKey(btoa(String.fromCharCode(...raw)));
  const { host, port } = server.listen({ host: "127.0.0.1", port: 0 });
  const ticket = await signTicket(keys.privateKey, "bob", CONTENT_ID);
  const sources = [{
    owner: "alice",
    address: `${host}:${port}`,
    partial: false,
    certificate: null,
  }];
  return { server, list: { sources, ticket } };
}

Deno.test("Swarm - a disk slower than the network holds back requests instead of piling pieces up", async () => {
  const { server, list } = await startSource();
  const stored = new Uint8Array(CONTENT.length);
  let writing = 0;
  let mostAtOnce = 0;
  try {
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      pipelineDepth: 8,
      findSources: () => Promise.resolve(list),
      store: async (index, bytes) => {
        mostAtOnce = Math.max(mostAtOnce, ++writing);
        await new Promise((resolve) => setTimeout(resolve, 20));
        stored.set(bytes, index * PIECE_SIZE);
        writing--;
      },
    });
    const report = await swarm.run(list);
    assert.deepEqual(stored, CONTENT);
    assert.equal(report.sources[0].pieces, PIECES);
    // Eight waiting for the disk, and at most the eight requested meanwhile: not all 64.
    assert.ok(mostAtOnce <= 16, `at most 16 pieces wait for the disk (saw ${mostAtOnce})`);
    assert.ok(pieceLength(MANIFEST, PIECES - 1) < PIECE_SIZE);
  } finally {
    await server.close();
  }
});

Deno.test("Swarm - downloads fetch a seed's pieces in orders of their own, so a crowd can trade", async () => {
  const { server, list } = await startSource();
  /** The order one download stores the pieces in. */
  const download = async () => {
    const order: number[] = [];
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      findSources: () => Promise.resolve(list),
      store: (index) => {
        order.push(index);
        return Promise.resolve();
      },
    });
    await swarm.run(list);
    return order;
  };
  try {
    const [first, second] = [await download(), await download()];
    for (const order of [first, second]) {
      assert.deepEqual(order.toSorted((a, b) => a - b), [...Array(PIECES).keys()]);
    }
    // Equal orders by chance: about one in 64! (the pieces are drawn at random).
    assert.notDeepEqual(first, second);
    assert.notDeepEqual(first, [...Array(PIECES).keys()], "not simply in file order");
  } finally {
    await server.close();
  }
});
