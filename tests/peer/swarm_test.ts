import assert from "node:assert/strict";
import { signTicket } from "../../lib/protocol/tickets.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import { pieceLength } from "../../lib/peer/manifest.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { Swarm } from "../../lib/peer/swarm.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { DripProxy } from "../helpers/drip_proxy.ts";
import { TicketAuthority, via } from "../helpers/sources.ts";

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

/** Resolves with `promise`, or fails the test with `what` if it takes over `ms`. */
async function within<V>(promise: Promise<V>, ms: number, what: string): Promise<V> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

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
    const report = await within(
      swarm.run({ sources: [dripper], ticket }),
      60_000,
      "the dripping source held the download",
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
  const stalls = gate();
  let stalledReads = 0;
  const colluding = {
    find: (contentId: string) =>
      Promise.resolve(
        contentId === CONTENT_ID
          ? {
            manifest: MANIFEST,
            have: claimed,
            read: () => {
              stalledReads++;
              return stalls.wait();
            },
          }
          : null,
      ),
  };
  const first = await authority.serve(colluding, "first");
  const second = await authority.serve(colluding, "second");
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
          sources: stalledReads >= 4
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
    const report = await within(
      swarm.run({ sources: [first.source, second.source], ticket }),
      60_000,
      "the colluding sources held the last pieces",
    );
    assert.deepEqual(stored, CONTENT);
    assert.equal(report.sources.find((s) => s.owner === "honest")?.pieces, PIECES);
    assert.equal(report.dropped.length, 0, "nobody was dropped: the pieces went elsewhere");
  } finally {
    stalls.open();
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
  const stalls = gate();
  let stalledReads = 0;
  const stalling = {
    find: (contentId: string) =>
      Promise.resolve(
        contentId === CONTENT_ID
          ? {
            manifest: MANIFEST,
            have: Bitfield.full(PIECES),
            read: () => {
              stalledReads++;
              return stalls.wait();
            },
          }
          : null,
      ),
  };
  const staller = await authority.serve(stalling, "staller");
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
          sources: stalledReads >= 4 ? [staller.source, honest.source] : [staller.source],
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
    const report = await within(
      swarm.run({ sources: [staller.source], ticket }),
      60_000,
      "the stalling source held the byte cap",
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
    stalls.open();
    await staller.server.close();
    await honest.server.close();
  }
});
