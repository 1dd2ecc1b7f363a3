import assert from "node:assert/strict";
import { SOCKET_BUFFER_BYTES, UploadSlots } from "../../lib/peer/upload_slots.ts";
import { shoalError } from "../helpers/errors.ts";

/** Slots on a clock the test moves. */
function slotsAt(options: { slots?: number; maxQueue?: number } = {}) {
  let now = 0;
  const slots = new UploadSlots<{ name: string }>({
    ...options,
    slotIdleMs: 5_000,
    queueIdleMs: 10_000,
    now: () => now,
  });
  return { slots, advance: (ms: number) => (now += ms) };
}
const downloader = (name: string) => ({ name });

Deno.test("UploadSlots - the first N downloaders get a slot, the next are told their place in arrival order", () => {
  const { slots } = slotsAt({ slots: 2 });
  const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(downloader);
  assert.equal(slots.ask(a), 0);
  assert.equal(slots.ask(b), 0);
  assert.equal(slots.ask(c), 1);
  assert.equal(slots.ask(d), 2);
  assert.equal(slots.ask(e), 3);
  // Asking again keeps the place; a holder asking again keeps its slot.
  assert.equal(slots.ask(d), 2);
  assert.equal(slots.ask(a), 0);
  assert.deepEqual(slots.counts, { serving: 2, waiting: 3 });
});

Deno.test("UploadSlots - a slot released is promoted to the first in line, and the rest move up", () => {
  const { slots } = slotsAt({ slots: 1 });
  const [a, b, c] = ["a", "b", "c"].map(downloader);
  slots.ask(a);
  assert.equal(slots.ask(b), 1);
  assert.equal(slots.ask(c), 2);
  slots.leave(a);
  assert.equal(slots.place(b), 0);
  assert.equal(slots.ask(c), 1);
  slots.leave(b);
  assert.equal(slots.ask(c), 0);
});

Deno.test("UploadSlots - a queued downloader that vanishes is removed, whether it closed or stopped asking", () => {
  const { slots, advance } = slotsAt({ slots: 1 });
  const [a, b, c, d] = ["a", "b", "c", "d"].map(downloader);
  slots.ask(a);
  slots.ask(b);
  slots.ask(c);
  slots.ask(d);
  // b closes its connection: gone from the queue at once.
  slots.leave(b);
  assert.equal(slots.place(b), null);
  assert.equal(slots.ask(c), 1);
  // d stops asking for over 10 s while c and a keep asking: d is dropped, not served later.
  for (let i = 0; i < 3; i++) {
    advance(4_000);
    slots.ask(a);
    slots.ask(c);
  }
  assert.equal(slots.place(d), null);
  assert.deepEqual(slots.counts, { serving: 1, waiting: 1 });
});

Deno.test("UploadSlots - a holder idle past the bound loses its slot to the next in line, unless pieces are on their way to it", () => {
  const { slots, advance } = slotsAt({ slots: 1 });
  const [a, b] = ["a", "b"].map(downloader);
  slots.ask(a);
  slots.sending(a, 1);
  assert.equal(slots.ask(b), 1);
  // A slow piece: a keeps its slot however long it takes.
  advance(8_000);
  assert.equal(slots.ask(b), 1);
  slots.sending(a, -1);
  advance(5_001);
  assert.equal(slots.ask(b), 0);
  // a comes back: it queues like anyone else.
  assert.equal(slots.ask(a), 1);
});

Deno.test("UploadSlots - past the longest queue the next downloader is told BUSY, and the queue is unchanged", () => {
  const { slots } = slotsAt({ slots: 1, maxQueue: 2 });
  const [a, b, c, d] = ["a", "b", "c", "d"].map(downloader);
  slots.ask(a);
  slots.ask(b);
  slots.ask(c);
  assert.throws(() => slots.ask(d), shoalError("BUSY", /all 1 upload slots are taken and 2/));
  assert.equal(slots.place(d), null);
  slots.leave(a);
  assert.equal(slots.ask(d), 2);
});

Deno.test("UploadSlots - refuses a slot count below one", () => {
  assert.throws(() => new UploadSlots({ slots: 0 }), RangeError);
});

Deno.test("UploadSlots - a holder that reads too slowly keeps its slot while nobody waits, and gives it to the next in line once someone does", () => {
  let now = 0;
  const writes = new Map<object, { since: number; bytes: number }>();
  const takenBack: string[] = [];
  const slots = new UploadSlots<{ name: string }>({
    slots: 1,
    now: () => now,
    writeOf: (holder) => writes.get(holder) ?? null,
    minReadBytesPerSecond: 32 * 1024,
    readGraceMs: 5_000,
    onTakenBack: (holder) => takenBack.push(holder.name),
  });
  const [slow, next] = ["slow", "next"].map(downloader);
  assert.equal(slots.ask(slow), 0);
  // A 256 KiB write may take 5 s + 8 s at 32 KiB/s; this one has waited 60 s.
  writes.set(slow, { since: 0, bytes: 256 * 1024 });
  slots.sending(slow, 1);
  now = 60_000;
  assert.deepEqual(slots.counts, { serving: 1, waiting: 0 });
  assert.equal(slots.ask(slow), 0, "nobody waits: its pace harms nobody");
  // Someone asks: the slow holder's slot is theirs, and the slow one queues behind them.
  assert.equal(slots.ask(next), 0);
  assert.deepEqual(takenBack, ["slow"]);
  assert.equal(slots.place(slow), null);
  assert.equal(slots.ask(slow), 1);
});

Deno.test("UploadSlots - a holder whose write is within its size at the minimum pace, or not writing at all, keeps its slot", () => {
  let now = 0;
  const writes = new Map<object, { since: number; bytes: number }>();
  const slots = new UploadSlots<{ name: string }>({
    slots: 2,
    now: () => now,
    writeOf: (holder) => writes.get(holder) ?? null,
    minReadBytesPerSecond: 32 * 1024,
    readGraceMs: 5_000,
  });
  const [big, between, waiter] = ["big", "between", "waiter"].map(downloader);
  slots.ask(big);
  slots.ask(between);
  // 64 MiB at 32 KiB/s is 2,048 s: after 2,000 s this write is still within its pace.
  writes.set(big, { since: 0, bytes: 64 * 1024 * 1024 });
  slots.sending(big, 1);
  slots.sending(between, 1);
  now = 2_000_000;
  assert.equal(slots.ask(waiter), 1);
  assert.equal(slots.place(big), 0);
  // Waiting for this peer's own upload limit between writes is not the downloader's doing.
  assert.equal(slots.place(between), 0);
  now += 60_000;
  assert.equal(slots.ask(waiter), 0, "now the big write is past its pace");
  assert.equal(slots.place(big), null);
  assert.equal(slots.place(between), 0);
});

Deno.test("UploadSlots - a slow reader's pieces still on their way count against its user's slots until sent, so new connections cannot pile up more", () => {
  let now = 0;
  const writes = new Map<object, { since: number; bytes: number }>();
  const slots = new UploadSlots<{ name: string }>({
    slots: 2,
    now: () => now,
    writeOf: (holder) => writes.get(holder) ?? null,
    minReadBytesPerSecond: 32 * 1024,
    readGraceMs: 5_000,
  });
  const [first, second, honest] = ["first", "second", "honest"].map(downloader);
  // Mallory (one slot of two: her share) barely reads the 4 pieces on their way to her.
  assert.equal(slots.ask(first, "mallory"), 0);
  for (let i = 0; i < 4; i++) slots.sending(first, 1);
  writes.set(first, { since: 0, bytes: 256 * 1024 });
  now = 60_000;
  // Her second connection waits; her first loses its slot to it... but still lingers with 4
  // pieces, which count as her share: the free slot is not hers.
  assert.equal(slots.ask(second, "mallory"), 1);
  assert.equal(slots.place(first), null);
  assert.deepEqual(slots.counts, { serving: 0, waiting: 1 });
  // Someone else's connection gets a slot at once.
  assert.equal(slots.ask(honest, "bob"), 0);
  // Once her pieces have gone (or her connection closed), her next one is served.
  for (let i = 0; i < 3; i++) slots.sending(first, -1);
  assert.equal(slots.place(second), 1);
  slots.sending(first, -1);
  assert.equal(slots.place(second), 0);
});

Deno.test("UploadSlots - a slow reader served again while its earlier pieces are still on their way counts once, and those pieces keep it from idling out", () => {
  let now = 0;
  const writes = new Map<object, { since: number; bytes: number }>();
  const slots = new UploadSlots<{ name: string }>({
    slots: 4,
    slotIdleMs: 1_000,
    now: () => now,
    writeOf: (holder) => writes.get(holder) ?? null,
    minReadBytesPerSecond: 32 * 1024,
    readGraceMs: 5_000,
  });
  const [first, second, bob] = ["first", "second", "bob"].map(downloader);
  // Carol (two slots of four: her share) is slow on her first connection's 2 pieces.
  assert.equal(slots.ask(first, "carol"), 0);
  slots.sending(first, 1);
  slots.sending(first, 1);
  writes.set(first, { since: 0, bytes: 256 * 1024 });
  now = 60_000;
  // Bob asks: carol's slot is taken back; her 2 pieces linger, counting as one of her two.
  assert.equal(slots.ask(bob, "bob"), 0);
  assert.equal(slots.place(first), null);
  // Her connection's next request: a slot is free and she holds one of two, so it is served.
  writes.delete(first);
  assert.equal(slots.ask(first, "carol"), 0);
  slots.sending(first, 1);
  // Her 2 earlier pieces go out; the third is still on its way.
  slots.sending(first, -1);
  slots.sending(first, -1);
  // It is one connection: her second still gets her other slot.
  assert.equal(slots.ask(second, "carol"), 0);
  // And the piece still on its way keeps the first from idling out.
  now += 10_000;
  assert.equal(slots.ask(second, "carol"), 0);
  assert.equal(slots.place(first), 0);
});

Deno.test("UploadSlots - a write waits for what the sockets hold ahead of it too: a holder reading above the minimum pace keeps its slot", () => {
  let now = 0;
  const writes = new Map<object, { since: number; bytes: number; earlier: number }>();
  const slots = new UploadSlots<{ name: string }>({
    slots: 1,
    now: () => now,
    writeOf: (holder) => writes.get(holder) ?? null,
    minReadBytesPerSecond: 32 * 1024,
    readGraceMs: 5_000,
  });
  const [steady, waiter] = ["steady", "waiter"].map(downloader);
  assert.equal(slots.ask(steady), 0);
  slots.sending(steady, 1);
  // It reads at 64 KiB/s, twice the minimum. Of the 8 MiB written before this 256 KiB write, 1 MiB
  // was still in the sockets' buffers when it began (as on loopback): it waits for 1.25 MiB, 20 s.
  writes.set(steady, { since: 0, bytes: 256 * 1024, earlier: 8 * 1024 * 1024 });
  now = 20_000;
  assert.equal(slots.ask(waiter), 1);
  assert.equal(slots.place(steady), 0);
  // What the sockets hold is bounded (SOCKET_BUFFER_BYTES), however much went before: a holder
  // that reads nothing of it still loses its slot.
  now = 5_000 + (256 * 1024 + SOCKET_BUFFER_BYTES) * 1000 / (32 * 1024) + 1;
  assert.equal(slots.ask(waiter), 0);
  assert.equal(slots.place(steady), null);
});

Deno.test("UploadSlots - asking only its place keeps a holder's slot once, when it learns it holds one, never after", () => {
  let now = 0;
  const slots = new UploadSlots<{ name: string }>({
    slots: 1,
    slotIdleMs: 1_000,
    queueIdleMs: 10_000,
    now: () => now,
  });
  const [first, polling, next] = ["first", "polling", "next"].map(downloader);
  assert.equal(slots.ask(first), 0);
  assert.equal(slots.ask(polling, "", false), 1);
  assert.equal(slots.ask(next, "", false), 2);
  slots.leave(first);
  // Promoted now; it learns so at its next poll, late: the idle bound starts anew from there.
  now += 900;
  assert.equal(slots.ask(next, "", false), 1);
  assert.equal(slots.ask(polling, "", false), 0);
  now += 900;
  assert.equal(slots.ask(next, "", false), 1);
  // Polling its place, never asking for a piece, does not keep it.
  assert.equal(slots.ask(polling, "", false), 0);
  now += 900;
  assert.equal(slots.ask(next, "", false), 0);
  assert.equal(slots.place(polling), null);
});
