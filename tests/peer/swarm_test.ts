import assert from "node:assert/strict";
import { deadline } from "../../lib/async/deadline.ts";
import { signTicket } from "../../lib/protocol/tickets.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import { pieceLength } from "../../lib/peer/manifest.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { Swarm } from "../../lib/peer/swarm.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { DripProxy } from "../helpers/drip_proxy.ts";
import { TicketAuthority, via } from "../helpers/sources.ts";
import { trackTimers } from "../helpers/timers.ts";

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
  const { host, port } = await server.listen({ host: "127.0.0.1", port: 0 });
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

/** A store that keeps what it is given in a copy of {@link CONTENT}. */
function memoryStore() {
  const stored = new Uint8Array(CONTENT.length);
  return {
    stored,
    store: (index: number, bytes: Uint8Array) => {
      stored.set(bytes, index * PIECE_SIZE);
      return Promise.resolve();
    },
  };
}

/** A gate that holds whoever waits on it until it is opened. */
function gate() {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { wait: () => promise, open: () => resolve() };
}

/**
 * A catalog that claims the pieces in `have` of the content and never sends
 * a byte of them until `open`; `reads` counts the pieces asked of it.
 */
function stallingCatalog(have: Bitfield) {
  const stalls = gate();
  let reads = 0;
  const catalog = {
    find: (contentId: string) =>
      Promise.resolve(
        contentId === CONTENT_ID
          ? {
            manifest: MANIFEST,
            have,
            read: () => {
              reads++;
              return stalls.wait();
            },
          }
          : null,
      ),
  };
  return {
    catalog,
    get reads() {
      return reads;
    },
    open: stalls.open,
  };
}

Deno.test("Swarm - a source dripping its pieces is dropped at the piece deadline, and another takes them", async () => {
  const authority = await TicketAuthority.create();
  const honest = await authority.serve(CATALOG, "honest");
  const [hostname, port] = honest.source.address.split(":");
  // hello and have go through; then a byte every 50 ms, never 15 s of silence.
  const proxy = new DripProxy({
    target: { hostname, port: Number(port) },
    passFrames: 2,
    everyMs: 50,
  });
  const dripper = via(honest.source, "dripper", proxy.address);
  const ticket = await authority.ticket(CONTENT_ID);
  const { stored, store } = memoryStore();
  try {
    const swarm: Swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      store,
      // The honest source shows up only once the dripper is dropped: its pieces must be freed.
      findSources: () =>
        Promise.resolve({
          sources: swarm.report.dropped.length > 0 ? [dripper, honest.source] : [dripper],
          ticket,
        }),
      refreshSourcesMs: 50,
      // A 256 KiB piece has 2 s plus 250 ms at 1 MiB/s.
      pieceGraceMs: 2_000,
      minPieceBytesPerSecond: 1024 * 1024,
    });
    const report = await deadline(
      swarm.run({ sources: [dripper], ticket }),
      60_000,
      { what: "the download past a dripping source" },
    );
    assert.deepEqual(stored, CONTENT);
    assert.equal(report.dropped.length, 1);
    assert.equal(report.dropped[0].owner, "dripper");
    assert.match(
      report.dropped[0].reason,
      /^too slow: .*took over 2250 ms to answer a piece request$/,
    );
    assert.equal(report.sources.find((s) => s.owner === "honest")?.pieces, PIECES);
  } finally {
    await proxy.close();
    await honest.server.close();
  }
});

Deno.test("Swarm - colluding sources that stall on the same last pieces lose them to an honest source", async () => {
  const authority = await TicketAuthority.create();
  // Both colluders claim pieces 0 to 3 only, and never send a byte of them.
  const claimed = new Bitfield(PIECES);
  for (let i = 0; i < 4; i++) claimed.set(i);
  const colluding = stallingCatalog(claimed);
  const first = await authority.serve(colluding.catalog, "first");
  const second = await authority.serve(colluding.catalog, "second");
  const honest = await authority.serve(CATALOG, "honest");
  const ticket = await authority.ticket(CONTENT_ID);
  const { stored, store } = memoryStore();
  try {
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      store,
      // The honest source shows up once the colluders hold all four pieces; in the endgame the
      // idle colluder asks for them too, and under a cap of two copies nobody else could.
      findSources: () =>
        Promise.resolve({
          sources: colluding.reads >= 4
            ? [first.source, second.source, honest.source]
            : [first.source, second.source],
          ticket,
        }),
      refreshSourcesMs: 50,
      // Neither silence nor the piece deadline ends them during this test: lagging must.
      requestTimeoutMs: 600_000,
      pieceGraceMs: 600_000,
      lagFloorMs: 100,
    });
    const report = await deadline(
      swarm.run({ sources: [first.source, second.source], ticket }),
      60_000,
      { what: "the download past colluding sources holding the last pieces" },
    );
    assert.deepEqual(stored, CONTENT);
    assert.equal(report.sources.find((s) => s.owner === "honest")?.pieces, PIECES);
    assert.equal(report.dropped.length, 0, "nobody was dropped: the pieces went elsewhere");
  } finally {
    colluding.open();
    await first.server.close();
    await second.server.close();
    await honest.server.close();
  }
});

Deno.test("Swarm - bytes of pieces in flight and waiting for the disk never exceed the cap", async () => {
  const authority = await TicketAuthority.create();
  const servers = await Promise.all(
    ["a", "b", "c", "d"].map((owner) => authority.serve(CATALOG, owner)),
  );
  const list = {
    sources: servers.map((s) => s.source),
    ticket: await authority.ticket(CONTENT_ID),
  };
  const { stored, store } = memoryStore();
  try {
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      findSources: () => Promise.resolve(list),
      // A slow disk, so received pieces wait too: they count against the cap as well.
      store: async (index, bytes) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        await store(index, bytes);
      },
      pipelineDepth: 8,
      maxInFlightBytes: 3 * PIECE_SIZE,
    });
    const report = await swarm.run(list);
    assert.deepEqual(stored, CONTENT);
    assert.ok(
      swarm.peakHeldBytes <= 3 * PIECE_SIZE,
      `at most 3 pieces held at once (saw ${swarm.peakHeldBytes / PIECE_SIZE})`,
    );
    assert.ok(swarm.peakHeldBytes >= PIECE_SIZE);
    // Without the cap, four sources eight deep would hold 32 pieces.
    assert.equal(report.sources.reduce((sum, s) => sum + s.pieces, 0), PIECES);
  } finally {
    for (const { server } of servers) await server.close();
  }
});

Deno.test("Swarm - a cap below one piece still lets one piece through at a time", async () => {
  const authority = await TicketAuthority.create();
  const servers = await Promise.all(["a", "b"].map((owner) => authority.serve(CATALOG, owner)));
  const list = {
    sources: servers.map((s) => s.source),
    ticket: await authority.ticket(CONTENT_ID),
  };
  const { stored, store } = memoryStore();
  try {
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      findSources: () => Promise.resolve(list),
      store,
      maxInFlightBytes: 1,
    });
    await swarm.run(list);
    assert.deepEqual(stored, CONTENT);
    assert.equal(swarm.peakHeldBytes, PIECE_SIZE);
  } finally {
    for (const { server } of servers) await server.close();
  }
});

Deno.test("Swarm - a lagging source filling the byte cap loses its pieces to a source waiting for work", async () => {
  const authority = await TicketAuthority.create();
  const stalling = stallingCatalog(Bitfield.full(PIECES));
  const staller = await authority.serve(stalling.catalog, "staller");
  const honest = await authority.serve(CATALOG, "honest");
  const ticket = await authority.ticket(CONTENT_ID);
  const { stored, store } = memoryStore();
  try {
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      store,
      // The honest source shows up once the staller holds the whole cap: four pieces.
      findSources: () =>
        Promise.resolve({
          sources: stalling.reads >= 4 ? [staller.source, honest.source] : [staller.source],
          ticket,
        }),
      refreshSourcesMs: 50,
      pipelineDepth: 4,
      maxInFlightBytes: 4 * PIECE_SIZE,
      // Neither silence nor the piece deadline ends the staller during this test: lagging must.
      requestTimeoutMs: 600_000,
      pieceGraceMs: 600_000,
      lagFloorMs: 100,
    });
    const report = await deadline(
      swarm.run({ sources: [staller.source], ticket }),
      60_000,
      { what: "the download past a source stalling on the byte cap" },
    );
    assert.deepEqual(stored, CONTENT);
    assert.equal(report.sources.find((s) => s.owner === "honest")?.pieces, PIECES);
    assert.deepEqual(report.dropped.map((d) => d.owner), ["staller"]);
    assert.match(
      report.dropped[0].reason,
      /^too slow: held 4 pieces, .* while faster sources waited$/,
    );
    assert.ok(swarm.peakHeldBytes <= 4 * PIECE_SIZE);
  } finally {
    stalling.open();
    await staller.server.close();
    await honest.server.close();
  }
});

Deno.test("Swarm - a download stopped while it waits to look for sources again leaves no timer behind", async () => {
  using timers = trackTimers();
  const stop = new AbortController();
  let looked = 0;
  const swarm = new Swarm({
    contentId: CONTENT_ID,
    manifest: MANIFEST,
    have: new Bitfield(PIECES),
    plaintext: true,
    // No source yet: the swarm asks again in a second. The stop comes while it waits (after the
    // tasks this answer starts, which set that timer).
    findSources: () => {
      if (++looked === 1) setTimeout(() => stop.abort(), 0);
      return Promise.resolve({ sources: [], ticket: "none" });
    },
    store: () => Promise.resolve(),
    signal: stop.signal,
  });
  await assert.rejects(
    swarm.run({ sources: [], ticket: "none" }),
    (error) => error instanceof ShoalError && error.code === "CANCELLED",
  );
  assert.equal(looked, 1);
  assert.equal(timers.pending, 0, "the swarm's timers are cleared when it stops");
});

Deno.test("Swarm - a download completed from a partial source leaves no timer behind", async () => {
  using timers = trackTimers();
  const { server, list } = await startSource();
  const partial = { ...list, sources: list.sources.map((s) => ({ ...s, partial: true })) };
  const { stored, store } = memoryStore();
  try {
    // A partial source with nothing in flight is asked again shortly: the download may end first.
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      findSources: () => Promise.resolve(partial),
      store,
    });
    await swarm.run(partial);
    assert.deepEqual(stored, CONTENT);
  } finally {
    await server.close();
  }
  assert.equal(timers.pending, 0, "the swarm's timers are cleared when it completes");
});

Deno.test("Swarm - a download failing on its last piece from a partial source leaves no timer behind", async () => {
  using timers = trackTimers();
  const { server, list } = await startSource();
  const partial = { ...list, sources: list.sources.map((s) => ({ ...s, partial: true })) };
  let stores = 0;
  try {
    const swarm = new Swarm({
      contentId: CONTENT_ID,
      manifest: MANIFEST,
      have: new Bitfield(PIECES),
      plaintext: true,
      findSources: () => Promise.resolve(partial),
      // The disk fills up on the last piece, once the source has nothing left in flight.
      store: () =>
        ++stores === PIECES
          ? Promise.reject(new Deno.errors.PermissionDenied("read-only"))
          : Promise.resolve(),
    });
    await assert.rejects(
      swarm.run(partial),
      (error) => error instanceof ShoalError && error.code === "IO",
    );
  } finally {
    await server.close();
  }
  assert.equal(timers.pending, 0, "the swarm's timers are cleared when it fails");
});
