/**
 * Upload slots over the wire: a piece server with one slot, real
 * connections and real swarms in this process.
 */
import assert from "node:assert/strict";
import { deadline } from "../../lib/async/deadline.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import type { SlotRefusal } from "../../lib/peer/piece_server.ts";
import { type QueuedAt, Swarm } from "../../lib/peer/swarm.ts";
import type { Source } from "../../lib/protocol/messages.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";
import { eventually } from "../helpers/eventually.ts";
import { connectTo, TicketAuthority } from "../helpers/sources.ts";

const PIECE_SIZE = 256 * 1024;
const PIECES = 16;
const CONTENT = Uint8Array.from({ length: PIECES * PIECE_SIZE - 7 }, (_, i) => (i * 31 + 3) & 0xff);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);
/** A share under 64 KiB: served without a slot. */
const SMALL = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
const { contentId: SMALL_ID } = manifestOf(SMALL, PIECE_SIZE);

/** Both contents from one catalog. */
function bothContents(): Catalog {
  const big = memoryCatalog(CONTENT, PIECE_SIZE);
  const small = memoryCatalog(SMALL, PIECE_SIZE);
  return { find: async (id) => (await big.find(id)) ?? (await small.find(id)) };
}

/** A source with one upload slot that is never let go for idling during a test. */
async function oneSlotSource(
  authority: TicketAuthority,
  owner: string,
  refusals: SlotRefusal[] = [],
) {
  return await authority.serve(bothContents(), owner, {
    uploadSlots: { slots: 1, slotIdleMs: 600_000, queueIdleMs: 600_000 },
    onRefused: (refusal) => refusals.push(refusal),
  });
}

/** `catalog` with every piece read held until `gate` resolves. */
function gated(catalog: Catalog, gate: Promise<void>): Catalog {
  return {
    find: async (id) => {
      const content = await catalog.find(id);
      return content && {
        ...content,
        read: async (index, into) => (await gate, content.read(index, into)),
      };
    },
  };
}

/** A swarm download of CONTENT from `sources`, recording the queue places it was shown. */
function download(sources: Source[], ticket: string, onQueued = () => {}) {
  const shown: QueuedAt[] = [];
  const stored = new Uint8Array(CONTENT.length);
  const list = { sources, ticket };
  const swarm = new Swarm({
    contentId: CONTENT_ID,
    manifest: MANIFEST,
    have: new Bitfield(PIECES),
    plaintext: true,
    findSources: () => Promise.resolve(list),
    store: (index, bytes) => {
      stored.set(bytes, index * PIECE_SIZE);
      return Promise.resolve();
    },
    onProgress: (progress) => {
      shown.push(...progress.queued);
      if (progress.queued.length) onQueued();
    },
  });
  return { shown, stored, report: deadline(swarm.run(list), 60_000, { what: "the download" }) };
}

Deno.test("Upload queue - with one slot taken, a second downloader is told place 1 and completes from another source meanwhile", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const refusals: SlotRefusal[] = [];
  const alice = await oneSlotSource(authority, "alice", refusals);
  // Carol sends nothing until the download has been told its place at alice, so it cannot be
  // over before then.
  const told = Promise.withResolvers<void>();
  const carol = await authority.serve(
    gated(memoryCatalog(CONTENT, PIECE_SIZE), told.promise),
    "carol",
  );
  const holder = await connectTo(alice.source);
  try {
    // The first downloader takes alice's only slot and keeps its connection open.
    await holder.callWithBody("piece", { contentId: CONTENT_ID, index: 0, ticket }, PIECE_SIZE);
    const second = download([alice.source, carol.source], ticket, told.resolve);
    const report = await second.report;
    assert.deepEqual(second.stored, CONTENT);
    const fromAlice = report.sources.find((s) => s.owner === "alice")!;
    const fromCarol = report.sources.find((s) => s.owner === "carol")!;
    assert.deepEqual(fromAlice.queued?.place, 1);
    assert.equal(fromAlice.pieces, 0);
    assert.equal(fromCarol.pieces, PIECES);
    assert.deepEqual(second.shown.find((q) => q.owner === "alice"), { owner: "alice", place: 1 });
    assert.ok(report.dropped.length === 0, "a queued source is not dropped");
    // The refusal reached the upload log's hook.
    assert.equal(refusals[0].code, "QUEUED");
    assert.equal(refusals[0].contentId, CONTENT_ID);
  } finally {
    holder.close();
    await alice.server.close();
    await carol.server.close();
  }
});

Deno.test("Upload queue - a queued downloader is promoted when the one served finishes, and completes from the same source", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const alice = await oneSlotSource(authority, "alice");
  const holder = await connectTo(alice.source);
  try {
    await holder.callWithBody("piece", { contentId: CONTENT_ID, index: 0, ticket }, PIECE_SIZE);
    const second = download([alice.source], ticket);
    // Wait until the second downloader has been told its place, then finish the first.
    await eventually(() => second.shown.length > 0, "the second downloader was told its place", {
      tries: 200,
      everyMs: 25,
    });
    assert.deepEqual(second.shown[0], { owner: "alice", place: 1 });
    holder.close();
    const report = await second.report;
    assert.deepEqual(second.stored, CONTENT);
    assert.equal(report.sources[0].pieces, PIECES);
    assert.equal(report.sources[0].queued?.place, 1);
  } finally {
    holder.close();
    await alice.server.close();
  }
});

Deno.test("Upload queue - places follow arrival, a downloader that disconnects leaves the queue, and the next moves up", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const alice = await oneSlotSource(authority, "alice");
  const clients = await Promise.all([0, 1, 2, 3].map(() => connectTo(alice.source)));
  const [holder, first, second, third] = clients;
  const piece = { contentId: CONTENT_ID, index: 1, ticket };
  try {
    await holder.callWithBody("piece", piece, PIECE_SIZE);
    for (const [client, place] of [[first, 1], [second, 2], [third, 3]] as const) {
      await assert.rejects(
        client.call("piece", piece),
        shoalError("QUEUED", new RegExp(`place ${place} for one of 1 upload slots`)),
      );
      assert.equal((await client.call("queue", { contentId: CONTENT_ID, ticket })).place, place);
    }
    // The first in line vanishes: the others move up.
    first.close();
    await eventually(
      async () => (await second.call("queue", { contentId: CONTENT_ID, ticket })).place === 1,
      "the second downloader moved up to place 1",
      { tries: 200, everyMs: 25 },
    );
    assert.equal((await third.call("queue", { contentId: CONTENT_ID, ticket })).place, 2);
    // The holder goes: the next in line is served.
    holder.close();
    await eventually(
      async () => (await second.call("queue", { contentId: CONTENT_ID, ticket })).place === 0,
      "the second downloader holds the slot",
      { tries: 200, everyMs: 25 },
    );
    const { body } = await second.callWithBody("piece", piece, PIECE_SIZE);
    assert.deepEqual(body, CONTENT.subarray(PIECE_SIZE, 2 * PIECE_SIZE));
    assert.deepEqual(alice.server.uploads, { serving: 1, waiting: 1 });
  } finally {
    for (const client of clients) client.close();
    await alice.server.close();
  }
});

Deno.test("Upload queue - manifests, piece maps and shares under 64 KiB never wait for a slot", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const smallTicket = await authority.ticket(SMALL_ID);
  const alice = await oneSlotSource(authority, "alice");
  const holder = await connectTo(alice.source);
  const other = await connectTo(alice.source);
  try {
    await holder.callWithBody("piece", { contentId: CONTENT_ID, index: 0, ticket }, PIECE_SIZE);
    const { manifest } = await other.call("manifest", { contentId: CONTENT_ID, ticket });
    assert.deepEqual(manifest, MANIFEST);
    assert.equal((await other.call("have", { contentId: CONTENT_ID, ticket })).count, PIECES);
    const small = { contentId: SMALL_ID, ticket: smallTicket };
    assert.equal((await other.call("queue", small)).place, 0);
    const { body } = await other.callWithBody("piece", { ...small, index: 0 }, SMALL.length);
    assert.deepEqual(body, SMALL);
    // The big content still queues it.
    await assert.rejects(
      other.call("piece", { contentId: CONTENT_ID, index: 0, ticket }),
      shoalError("QUEUED"),
    );
  } finally {
    holder.close();
    other.close();
    await alice.server.close();
  }
});

Deno.test("Upload queue - a source's piece map says which pieces it has sent to anyone", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const alice = await oneSlotSource(authority, "alice");
  const [first, second] = await Promise.all([connectTo(alice.source), connectTo(alice.source)]);
  try {
    const before = await second.call("have", { contentId: CONTENT_ID, ticket });
    assert.equal(Bitfield.fromBase64(before.sent!, PIECES).count, 0);
    await first.callWithBody("piece", { contentId: CONTENT_ID, index: 2, ticket }, PIECE_SIZE);
    const { sent } = await second.call("have", { contentId: CONTENT_ID, ticket });
    const marked = Bitfield.fromBase64(sent!, PIECES);
    assert.deepEqual([...Array(PIECES).keys()].filter((i) => marked.has(i)), [2]);
  } finally {
    first.close();
    second.close();
    await alice.server.close();
  }
});

Deno.test("Upload queue - a piece sent before its connection held a slot is not counted off that slot: a piece on its way later still keeps it", async () => {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const other = await authority.ticketFor("carol", CONTENT_ID);
  // Every piece waits 400 ms before it goes; a holder with none on its way idles out in 200 ms.
  const alice = await authority.serve(bothContents(), "alice", {
    pieceDelayMs: 400,
    uploadSlots: { slots: 1, slotIdleMs: 200, queueIdleMs: 600_000, minReadBytesPerSecond: 1 },
  });
  const bob = await connectTo(alice.source);
  const carol = await connectTo(alice.source);
  try {
    // A small file's piece (no slot needed) is on its way when bob's connection takes the slot.
    const small = bob.callWithBody("piece", {
      contentId: SMALL_ID,
      index: 0,
      ticket: await authority.ticket(SMALL_ID),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await bob.call("queue", { contentId: CONTENT_ID, ticket })).place, 0);
    const first = bob.callWithBody("piece", { contentId: CONTENT_ID, index: 0, ticket });
    assert.equal((await carol.call("queue", { contentId: CONTENT_ID, ticket: other })).place, 1);
    await small;
    await first;
    // Bob's next piece is on its way for 400 ms: all that while, the slot stays his.
    let sent = false;
    const next = bob.callWithBody("piece", { contentId: CONTENT_ID, index: 1, ticket })
      .finally(() => sent = true);
    const places: number[] = [];
    for (let polls = 0; !sent && polls < 100; polls++) {
      places.push((await carol.call("queue", { contentId: CONTENT_ID, ticket: other })).place);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await next;
    assert.ok(places.length > 3, `carol asked ${places.length} times`);
    assert.deepEqual(new Set(places), new Set([1]));
  } finally {
    bob.close();
    carol.close();
    await alice.server.close();
  }
});
