import assert from "node:assert/strict";
import { deadline } from "../../lib/async/deadline.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { Swarm } from "../../lib/peer/swarm.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PEER_METHODS, type Source } from "../../lib/protocol/messages.ts";
import { ProtocolServer, WithBody } from "../../lib/protocol/server.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { TicketAuthority } from "../helpers/sources.ts";

// Pieces of one length: a seed may send any of them for any other.
const PIECE_SIZE = 64 * 1024;
const PIECES = 64;
const DEPTH = 8;
const CONTENT = Uint8Array.from({ length: PIECES * PIECE_SIZE }, (_, i) => (i * 31 + 7) & 0xff);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

/** A download of {@link CONTENT} from `sources` into memory; resolves to the bytes and the report. */
async function download(sources: Source[], ticket: string) {
  const stored = new Uint8Array(CONTENT.length);
  const list = { sources, ticket };
  const report = await deadline(
    new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      pipelineDepth: DEPTH,
      findSources: () => Promise.resolve(list),
      store: (index, bytes) => {
        stored.set(bytes, index * PIECE_SIZE);
        return Promise.resolve();
      },
    }).run(list),
    60_000,
    { what: "a download from a seed" },
  );
  return { stored, report };
}

Deno.test("Swarm - two downloads at once from one seed: each piece leaves the seed once before any leaves it twice", async () => {
  const memory = memoryCatalog(CONTENT, PIECE_SIZE);
  const reads: number[] = [];
  const counting: Catalog = {
    find: async (contentId) => {
      const content = await memory.find(contentId);
      return content && {
        ...content,
        read: (index, into) => {
          reads.push(index);
          return content.read(index, into);
        },
      };
    },
  };
  const authority = await TicketAuthority.create();
  const { server, source } = await authority.serve(counting, "seed");
  try {
    const ticket = await authority.ticket(CONTENT_ID);
    const both = await Promise.all([download([source], ticket), download([source], ticket)]);
    for (const { stored } of both) assert.deepEqual(stored, CONTENT);
    const firstRepeat = reads.findIndex((index, i) => reads.indexOf(index) < i);
    // Each download asks for pieces in an order of its own, with a stale view of what the seed
    // has sent: without the seed's choice the first repeat comes after a handful of pieces. With
    // it, only pieces both downloads still wait for in their own pipelines can come twice early.
    assert.ok(
      firstRepeat >= PIECES - 2 * DEPTH,
      `the first piece sent twice was the ${firstRepeat + 1}th sent (${reads.join(" ")})`,
    );
  } finally {
    await server.close();
  }
});

/**
 * A source that claims every piece and answers a request with a piece it
 * was neither asked for nor offered instead, whenever there is one.
 */
async function startSwappingSource(): Promise<
  { server: ProtocolServer<typeof PEER_METHODS, null>; source: Source }
> {
  const nothing = () => Promise.reject(new ShoalError("NOT_FOUND", "no such thing here"));
  const server = new ProtocolServer(PEER_METHODS, {
    ping: () => Promise.resolve({ username: "swapper", time: Date.now() }),
    manifest: () => Promise.resolve({ manifest: MANIFEST }),
    have: () =>
      Promise.resolve({
        count: PIECES,
        bitfield: Bitfield.full(PIECES).toBase64(),
        sent: new Bitfield(PIECES).toBase64(),
      }),
    piece: ({ index, alternatives }) => {
      const offered = alternatives === undefined ? null : Bitfield.fromBase64(alternatives, PIECES);
      const other = [...Array(PIECES).keys()].find((i) => i !== index && !offered?.has(i));
      const sent = other ?? index;
      return Promise.resolve(
        new WithBody({ index: sent, length: PIECE_SIZE }, [
          CONTENT.slice(sent * PIECE_SIZE, (sent + 1) * PIECE_SIZE),
        ]),
      );
    },
    queue: () => Promise.resolve({ place: 0, slots: 4, retryMs: 500 }),
    folder: nothing,
    pieces: nothing,
  }, { kind: "peer", initialState: () => null, warn: () => {} });
  const { host, port } = await server.listen({ host: "127.0.0.1", port: 0 });
  return {
    server,
    source: { owner: "swapper", address: `${host}:${port}`, partial: false, certificate: null },
  };
}

Deno.test("Swarm - a source that sends a piece neither asked for nor offered instead is dropped", async () => {
  const authority = await TicketAuthority.create();
  const honest = await authority.serve(memoryCatalog(CONTENT, PIECE_SIZE), "honest");
  const swapper = await startSwappingSource();
  try {
    const ticket = await authority.ticket(CONTENT_ID);
    const { stored, report } = await download([swapper.source, honest.source], ticket);
    assert.deepEqual(stored, CONTENT);
    assert.deepEqual(report.dropped.map((d) => d.owner), ["swapper"]);
    assert.match(report.dropped[0].reason, /^sent piece \d+ when asked for \d+$/);
  } finally {
    await swapper.server.close();
    await honest.server.close();
  }
});
