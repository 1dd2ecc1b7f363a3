/**
 * A hostile downloader on the LAN against a peer's upload slots and queue:
 * many connections from one account, a queue flood, requests without a
 * ticket, a queued downloader that never asks again. Real connections to a
 * piece server in this process.
 */
import assert from "node:assert/strict";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { MAX_QUEUED_PER_USER, UploadSlots } from "../../lib/peer/upload_slots.ts";
import { PEER_AGENT } from "../../lib/peer/tracker_link.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { PEER_METHODS } from "../../lib/protocol/messages.ts";
import type { Address } from "../../lib/protocol/address.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";
import { TicketAuthority } from "../helpers/sources.ts";

const PIECE_SIZE = 256 * 1024;
const CONTENT = Uint8Array.from({ length: 4 * PIECE_SIZE }, (_, i) => (i * 7 + 1) & 0xff);
const { contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

async function source(authority: TicketAuthority, slots: number, catalog?: Catalog) {
  const server = new PieceServer(catalog ?? memoryCatalog(CONTENT, PIECE_SIZE), {
    username: () => "alice",
    warn: () => {},
    uploadSlots: { slots, slotIdleMs: 600_000, queueIdleMs: 600_000 },
  });
  await server.trustTicketKey(authority.publicKey);
  const address = await server.listen({ host: "127.0.0.1", port: 0 });
  return { server, address };
}

const connect = (address: Address) =>
  ProtocolClient.connect(address, PEER_METHODS, { expect: "peer", agent: PEER_AGENT });

Deno.test("attack - one account opening many connections holds at most half the slots; another still gets one", async () => {
  const authority = await TicketAuthority.create();
  const { server, address } = await source(authority, 4);
  const mallory = await authority.ticketFor("mallory", CONTENT_ID);
  const honest = await authority.ticketFor("bob", CONTENT_ID);
  const clients = await Promise.all(Array.from({ length: 6 }, () => connect(address)));
  const bob = await connect(address);
  try {
    const places = [];
    for (const client of clients) {
      places.push((await client.call("queue", { contentId: CONTENT_ID, ticket: mallory })).place);
    }
    // Before: [0, 0, 0, 0, 1, 2], every slot mallory's. Now two.
    assert.deepEqual(places.filter((place) => place === 0).length, 2);
    assert.equal((await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place, 0);
    const { body } = await bob.callWithBody(
      "piece",
      { contentId: CONTENT_ID, index: 2, ticket: honest },
      PIECE_SIZE,
    );
    assert.deepEqual(body, CONTENT.subarray(2 * PIECE_SIZE, 3 * PIECE_SIZE));
    // Mallory's waiting connections are refused pieces while two of its own are served.
    await assert.rejects(
      clients[5].call("piece", { contentId: CONTENT_ID, index: 0, ticket: mallory }),
      shoalError("QUEUED"),
    );
    assert.deepEqual(server.uploads, { serving: 3, waiting: 4 });
  } finally {
    for (const client of [...clients, bob]) client.close();
    await server.close();
  }
});

Deno.test("attack - one account flooding the queue is told BUSY past its share, and an honest downloader still queues", async () => {
  const authority = await TicketAuthority.create();
  const { server, address } = await source(authority, 1);
  const mallory = await authority.ticketFor("mallory", CONTENT_ID);
  const honest = await authority.ticketFor("bob", CONTENT_ID);
  const clients = await Promise.all(
    Array.from({ length: MAX_QUEUED_PER_USER + 3 }, () => connect(address)),
  );
  const bob = await connect(address);
  try {
    const answers: (number | string)[] = [];
    for (const client of clients) {
      answers.push(
        await client.call("queue", { contentId: CONTENT_ID, ticket: mallory }).then(
          (reply) => reply.place,
          (error) => error.code,
        ),
      );
    }
    // One slot held, MAX_QUEUED_PER_USER waiting, the rest BUSY.
    assert.deepEqual(answers, [
      0,
      ...Array.from({ length: MAX_QUEUED_PER_USER }, (_, i) => i + 1),
      "BUSY",
      "BUSY",
    ]);
    const place = (await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place;
    assert.equal(place, MAX_QUEUED_PER_USER + 1);
  } finally {
    for (const client of [...clients, bob]) client.close();
    await server.close();
  }
});

Deno.test("attack - queue and piece requests without a valid ticket take no place", async () => {
  const authority = await TicketAuthority.create();
  const other = await TicketAuthority.create();
  const { server, address } = await source(authority, 1);
  const client = await connect(address);
  try {
    const forged = await other.ticketFor("mallory", CONTENT_ID);
    const wrongContent = await authority.ticketFor("mallory", "a".repeat(64));
    const refused = (error: Error & { code?: string }) =>
      error.code === "TICKET_INVALID" || error.code === "TICKET_REQUIRED";
    for (const ticket of [undefined, "", "garbage", forged, wrongContent]) {
      await assert.rejects(client.call("queue", { contentId: CONTENT_ID, ticket }), refused);
      await assert.rejects(
        client.call("piece", { contentId: CONTENT_ID, index: 0, ticket }),
        refused,
      );
    }
    assert.deepEqual(server.uploads, { serving: 0, waiting: 0 });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("attack - queued downloaders that never ask again leave the queue, and the slot goes to one that asks", () => {
  let now = 0;
  const slots = new UploadSlots<{ name: string }>({
    slots: 1,
    slotIdleMs: 1_000,
    queueIdleMs: 10_000,
    now: () => now,
  });
  const holder = { name: "holder" };
  const silent = Array.from({ length: 4 }, (_, i) => ({ name: `silent-${i}` }));
  const honest = { name: "honest" };
  assert.equal(slots.ask(holder, "bob"), 0);
  silent.forEach((waiter, i) => assert.equal(slots.ask(waiter, `m${i}`), i + 1));
  assert.equal(slots.ask(honest, "carol"), 5);
  // The silent ones never ask again; the honest one polls; the holder keeps asking.
  for (let t = 0; t < 12; t++) {
    now += 900;
    slots.ask(holder, "bob");
    slots.ask(honest, "carol");
  }
  assert.equal(slots.place(honest), 1);
  assert.deepEqual(slots.counts, { serving: 1, waiting: 1 });
  slots.leave(holder);
  assert.equal(slots.ask(honest, "carol"), 0);
});
