import assert from "node:assert/strict";
import { UploadSlots } from "../../lib/peer/upload_slots.ts";
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

/**
 * Slots on a clock the test moves, whose holders' read paces the test sets:
 * `read(holder, bytes, ms)` says `bytes` more were written to it over `ms`
 * more of writes waiting for it.
 */
function pacedSlots(options: { slots?: number; slotIdleMs?: number } = {}) {
  let now = 0;
  const paces = new Map<object, { bytes: number; ms: number }>();
  const takenBack: string[] = [];
  const slots = new UploadSlots<{ name: string }>({
    ...options,
    now: () => now,
    paceOf: (holder) => ({ ...(paces.get(holder) ?? { bytes: 0, ms: 0 }) }),
    minReadBytesPerSecond: 32 * 1024,
    readWindowMs: 10_000,
    onTakenBack: (holder) => takenBack.push(holder.name),
  });
  const read = (holder: object, bytes: number, ms: number) => {
    const pace = paces.get(holder) ?? { bytes: 0, ms: 0 };
    paces.set(holder, { bytes: pace.bytes + bytes, ms: pace.ms + ms });
  };
  return { slots, read, takenBack, advance: (ms: number) => (now += ms) };
}

const KIB = 1024;

Deno.test("UploadSlots - a holder that reads too slowly keeps its slot while nobody waits, and gives it to the next in line once someone does", () => {
  const { slots, read, takenBack, advance } = pacedSlots({ slots: 1 });
  const [slow, next] = ["slow", "next"].map(downloader);
  assert.equal(slots.ask(slow), 0);
  slots.sending(slow, 1);
  // 4 MiB at once (the sockets' buffers), then 1 KiB/s: 60 s of writes waiting for it.
  read(slow, 4096 * KIB, 0);
  read(slow, 60 * KIB, 60_000);
  advance(60_000);
  assert.deepEqual(slots.counts, { serving: 1, waiting: 0 });
  assert.equal(slots.ask(slow), 0, "nobody waits: its pace harms nobody");
  // Someone asks. Over its first 60 s it read fast enough on average (the buffers' 4 MiB): the
  // window starts again; 10 s more at 1 KiB/s, and its slot is the next one's.
  assert.equal(slots.ask(next), 1);
  read(slow, 10 * KIB, 10_000);
  advance(10_000);
  assert.equal(slots.ask(next), 0);
  assert.deepEqual(takenBack, ["slow"]);
  assert.equal(slots.place(slow), null);
  assert.equal(slots.ask(slow), 1, "it queues behind the others");
});

Deno.test("UploadSlots - a holder reading above the minimum pace keeps its slot however long its writes wait, and one never waited for is never judged", () => {
  const { slots, read, takenBack, advance } = pacedSlots({ slots: 2 });
  const [steady, limited, waiter] = ["steady", "limited", "waiter"].map(downloader);
  slots.ask(steady);
  slots.ask(limited);
  slots.sending(steady, 1);
  slots.sending(limited, 1);
  assert.equal(slots.ask(waiter), 1);
  // 100 KiB/s, three times the minimum, each write waiting seconds behind full buffers.
  for (let i = 0; i < 30; i++) {
    read(steady, 256 * KIB, 2_560);
    // Held back by this peer's own upload limit: between writes, none of it waiting.
    read(limited, 64 * KIB, 0);
    advance(2_560);
    assert.equal(slots.ask(waiter), 1);
  }
  assert.deepEqual(takenBack, []);
  assert.equal(slots.place(steady), 0);
  assert.equal(slots.place(limited), 0);
});

Deno.test("UploadSlots - a holder's pace counts from when it took its slot: a slow reader served again starts afresh", () => {
  const { slots, read, takenBack, advance } = pacedSlots({ slots: 1 });
  const [first, waiter] = ["first", "waiter"].map(downloader);
  assert.equal(slots.ask(first), 0);
  // Before its slot: 60 s of writes waiting for it (say, a queue reply it did not read).
  read(first, 0, 0);
  slots.leave(first);
  read(first, 1 * KIB, 60_000);
  assert.equal(slots.ask(first), 0);
  slots.sending(first, 1);
  assert.equal(slots.ask(waiter), 1);
  read(first, 1024 * KIB, 5_000);
  advance(5_000);
  assert.equal(slots.ask(waiter), 1);
  assert.deepEqual(takenBack, []);
});

Deno.test("UploadSlots - a slow reader's pieces still on their way count against its user's slots until sent, so new connections cannot pile up more", () => {
  const { slots, read, advance } = pacedSlots({ slots: 2 });
  const [first, second, honest] = ["first", "second", "honest"].map(downloader);
  // Mallory (one slot of two: her share) barely reads the 4 pieces on their way to her.
  assert.equal(slots.ask(first, "mallory"), 0);
  for (let i = 0; i < 4; i++) slots.sending(first, 1);
  read(first, 0, 60_000);
  advance(60_000);
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
  const { slots, read, advance } = pacedSlots({ slots: 4, slotIdleMs: 1_000 });
  const [first, second, bob] = ["first", "second", "bob"].map(downloader);
  // Carol (two slots of four: her share) is slow on her first connection's 2 pieces.
  assert.equal(slots.ask(first, "carol"), 0);
  slots.sending(first, 1);
  slots.sending(first, 1);
  read(first, 0, 60_000);
  advance(60_000);
  // Bob asks: carol's slot is taken back; her 2 pieces linger, counting as one of her two.
  assert.equal(slots.ask(bob, "bob"), 0);
  assert.equal(slots.place(first), null);
  // Her connection's next request: a slot is free and she holds one of two, so it is served.
  assert.equal(slots.ask(first, "carol"), 0);
  slots.sending(first, 1);
  // Her 2 earlier pieces go out; the third is still on its way.
  slots.sending(first, -1);
  slots.sending(first, -1);
  // It is one connection: her second still gets her other slot.
  assert.equal(slots.ask(second, "carol"), 0);
  // And the piece still on its way keeps the first from idling out.
  advance(10_000);
  assert.equal(slots.ask(second, "carol"), 0);
  assert.equal(slots.place(first), 0);
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

/**
 * A holder sent a big piece in writes of `slice` bytes that the sockets'
 * buffers (full) take only as it reads, at `bytesPerSecond`: a write's bytes
 * count once it is done, while the time it waits counts as it goes (as
 * Connection.wrote says).
 */
function slicedReader(slice: number, bytesPerSecond: number) {
  let done = { bytes: 0, ms: 0 };
  let waited = 0;
  return {
    pace: () => ({
      bytes: done.bytes,
      ms: done.ms + waited,
      writing: { bytes: slice, ms: waited },
    }),
    advance(ms: number) {
      waited += ms;
      const takes = slice * 1000 / bytesPerSecond;
      while (waited >= takes) {
        done = { bytes: done.bytes + slice, ms: done.ms + takes };
        waited -= takes;
      }
    },
  };
}

Deno.test("UploadSlots - a holder reading a big piece at 80 KiB/s, in 1 MiB writes each waiting 12.8 s, keeps its slot; one that stops reading loses it", () => {
  for (const [bytesPerSecond, keeps] of [[80 * KIB, true], [0.001, false]] as const) {
    let now = 0;
    const readers = new Map<object, ReturnType<typeof slicedReader>>();
    const takenBack: string[] = [];
    const slots = new UploadSlots<{ name: string }>({
      slots: 1,
      now: () => now,
      paceOf: (holder) => readers.get(holder)?.pace() ?? null,
      minReadBytesPerSecond: 32 * KIB,
      readWindowMs: 10_000,
      onTakenBack: (holder) => takenBack.push(holder.name),
    });
    const [holder, waiter] = ["holder", "waiter"].map(downloader);
    const reader = slicedReader(1024 * KIB, bytesPerSecond);
    readers.set(holder, reader);
    assert.equal(slots.ask(holder), 0);
    slots.sending(holder, 1);
    assert.equal(slots.ask(waiter), 1);
    // Two minutes, looked at every half second (as queued downloaders ask their place).
    for (let i = 0; i < 240 && takenBack.length === 0; i++) {
      now += 500;
      reader.advance(500);
      slots.ask(waiter);
    }
    assert.deepEqual(takenBack, keeps ? [] : ["holder"], `at ${bytesPerSecond} B/s`);
    if (!keeps) assert.ok(now <= 60_000, `taken back only after ${now} ms`);
  }
});
