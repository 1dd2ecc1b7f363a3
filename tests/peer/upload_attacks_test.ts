/**
 * A hostile downloader on the LAN against a peer's upload slots and queue:
 * many connections from one account, a queue flood, requests without a
 * ticket, a queued downloader that never asks again, one that holds a slot
 * by barely reading. Real connections to a piece server in this process.
 */
import assert from "node:assert/strict";
import { PieceServer, type PieceServerOptions } from "../../lib/peer/piece_server.ts";
import { RateLimiter } from "../../lib/peer/rate.ts";
import { UploadLog } from "../../lib/peer/upload_log.ts";
import {
  MAX_QUEUED_PER_USER,
  UploadSlots,
  type UploadSlotsOptions,
} from "../../lib/peer/upload_slots.ts";
import { PEER_AGENT } from "../../lib/peer/tracker_link.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { PEER_METHODS, PROTOCOL_VERSION } from "../../lib/protocol/messages.ts";
import type { Address } from "../../lib/protocol/address.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";
import { eventually } from "../helpers/eventually.ts";
import { TicketAuthority } from "../helpers/sources.ts";

const PIECE_SIZE = 256 * 1024;
const CONTENT = Uint8Array.from({ length: 4 * PIECE_SIZE }, (_, i) => (i * 7 + 1) & 0xff);
const { contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

/**
 * Alice's piece server for CONTENT on 127.0.0.1, trusting `authority`'s
 * tickets: `slots` upload slots (or those options) that neither idle out
 * nor drop a quiet waiter unless told, with `options` of the server's own.
 */
async function source(
  authority: TicketAuthority,
  slots: number | UploadSlotsOptions,
  options: Pick<PieceServerOptions, "uploads" | "uploadLimiter"> = {},
) {
  const server = new PieceServer(memoryCatalog(CONTENT, PIECE_SIZE), {
    username: () => "alice",
    warn: () => {},
    ...options,
    uploadSlots: {
      slotIdleMs: 600_000,
      queueIdleMs: 600_000,
      ...typeof slots === "number" ? { slots } : slots,
    },
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

/**
 * A downloader that takes a slot, asks for `pieces` pieces and never reads
 * a byte of them: once the sockets' buffers are full, the server's write to
 * it waits for ever.
 */
async function nonReader(address: Address, ticket: string, pieces: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: address.host, port: address.port });
  const frames = [
    encodeFrame({ id: 1, type: "hello", params: { protocol: PROTOCOL_VERSION, agent: "slow" } }),
    encodeFrame({ id: 2, type: "queue", params: { contentId: CONTENT_ID, ticket } }),
    ...Array.from({ length: pieces }, (_, i) =>
      encodeFrame({
        id: 3 + i,
        type: "piece",
        params: { contentId: CONTENT_ID, index: i % 4, ticket },
      })),
  ];
  // Written without waiting: the server stops reading requests once its replies back up.
  for (const frame of frames) conn.write(frame).catch(() => {});
  return conn;
}

Deno.test("attack - a downloader that holds a slot and barely reads loses it to the next in line", async () => {
  const authority = await TicketAuthority.create();
  const lines: string[] = [];
  // One slot; a holder must read 1 MiB/s, measured over 0.3 s of writes waiting for it.
  const { server, address } = await source(
    authority,
    { slots: 1, minReadBytesPerSecond: 1024 * 1024, readWindowMs: 300 },
    { uploads: new UploadLog({ write: (line) => lines.push(line) }) },
  );
  // 64 pieces of 256 KiB: more than loopback's socket buffers hold.
  const mallory = await nonReader(address, await authority.ticketFor("mallory", CONTENT_ID), 64);
  const bob = await connect(address);
  try {
    const honest = await authority.ticketFor("bob", CONTENT_ID);
    await eventually(() => server.uploads.serving === 1, "mallory holds the slot");
    // Bob waits, polling as a fetch does, until the slot is his.
    await eventually(
      async () => (await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place === 0,
      "bob got the slot mallory barely read on",
      { tries: 300, everyMs: 50 },
    );
    const { body } = await bob.callWithBody(
      "piece",
      { contentId: CONTENT_ID, index: 1, ticket: honest },
      PIECE_SIZE,
    );
    assert.deepEqual(body, CONTENT.subarray(PIECE_SIZE, 2 * PIECE_SIZE));
    const line = lines.find((line) => line.includes("reads too slowly"));
    assert.ok(line, lines.join("\n"));
    assert.match(line, /mallory/);
    assert.match(line, /its upload slot went to the next in line/);
  } finally {
    mallory.close();
    bob.close();
    await server.close();
  }
});

Deno.test("attack - a downloader slowed only by this peer's own upload limit keeps its slot while others wait", async () => {
  const authority = await TicketAuthority.create();
  const lines: string[] = [];
  // 256 KiB/s: three pieces take three seconds to go out, twice the 1.5 s of waiting in
  // writes the pace is measured over, and far below the 64 MiB/s asked of a downloader here;
  // but only the waits for the downloader to read count, and this one reads at once.
  const { server, address } = await source(
    authority,
    { slots: 1, minReadBytesPerSecond: 64 * 1024 * 1024, readWindowMs: 1_500 },
    {
      uploads: new UploadLog({ write: (line) => lines.push(line) }),
      uploadLimiter: new RateLimiter({ bytesPerSecond: 256 * 1024 }),
    },
  );
  const carol = await connect(address);
  const bob = await connect(address);
  try {
    const ticket = await authority.ticketFor("carol", CONTENT_ID);
    const honest = await authority.ticketFor("bob", CONTENT_ID);
    assert.equal((await carol.call("queue", { contentId: CONTENT_ID, ticket })).place, 0);
    assert.equal((await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place, 1);
    const places: number[] = [];
    const download = (async () => {
      for (const index of [0, 1, 2]) {
        const { body } = await carol.callWithBody(
          "piece",
          { contentId: CONTENT_ID, index, ticket },
          PIECE_SIZE,
        );
        assert.deepEqual(body, CONTENT.subarray(index * PIECE_SIZE, (index + 1) * PIECE_SIZE));
      }
    })();
    // Bob polls all along, as a queued fetch does: each poll looks at carol's pace.
    let done = false;
    download.finally(() => done = true).catch(() => {});
    for (let polls = 0; !done && polls < 400; polls++) {
      places.push((await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await download;
    assert.ok(places.length > 10, `bob polled ${places.length} times`);
    assert.deepEqual(new Set(places), new Set([1]));
    assert.equal(lines.filter((line) => line.includes("reads too slowly")).length, 0);
  } finally {
    carol.close();
    bob.close();
    await server.close();
  }
});

Deno.test("attack - a slot holder that only asks its place, never for a piece, loses its slot to the next in line", async () => {
  const authority = await TicketAuthority.create();
  const { server, address } = await source(authority, { slots: 1, slotIdleMs: 300 });
  const mallory = await connect(address);
  const bob = await connect(address);
  try {
    const ticket = await authority.ticketFor("mallory", CONTENT_ID);
    const honest = await authority.ticketFor("bob", CONTENT_ID);
    assert.equal((await mallory.call("queue", { contentId: CONTENT_ID, ticket })).place, 0);
    // Both poll as a queued fetch does (faster than the slot's idle bound): bob's turn comes.
    let place = (await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place;
    assert.equal(place, 1);
    for (let polls = 0; place !== 0 && polls < 100; polls++) {
      await mallory.call("queue", { contentId: CONTENT_ID, ticket });
      place = (await bob.call("queue", { contentId: CONTENT_ID, ticket: honest })).place;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(place, 0, "bob never got the slot mallory only polled on");
  } finally {
    mallory.close();
    bob.close();
    await server.close();
  }
});
