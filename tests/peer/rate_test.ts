import assert from "node:assert/strict";
import {
  PACE_CHUNK_BYTES,
  paced,
  parseRate,
  processBudget,
  RateLimiter,
} from "../../lib/peer/rate.ts";
import { shoalError } from "../helpers/errors.ts";

Deno.test("parseRate - reads bytes, decimal and binary prefixes, and bits, with or without /s", () => {
  const table: [string, number][] = [
    ["1000", 1000],
    ["1000B/s", 1000],
    ["500KiB/s", 512_000],
    ["500kib", 512_000],
    ["20MB/s", 20_000_000],
    ["20mB/s", 20_000_000],
    ["1.5MiB/s", 1_572_864],
    ["1GB/s", 1e9],
    ["2GiB/s", 2 * 1024 ** 3],
    ["100Mbit/s", 12_500_000],
    ["100mbit", 12_500_000],
    ["8kbit/s", 1000],
    ["1Gbit/s", 125_000_000],
    ["800bit/s", 100],
    [" 64 KB/s ", 64_000],
  ];
  for (const [text, bytes] of table) assert.equal(parseRate(text), bytes, text);
});

Deno.test("parseRate - refuses what is not a rate, naming the forms it takes", () => {
  const table: [string, RegExp][] = [
    ["", /not a rate/],
    ["fast", /not a rate/],
    ["-5MB/s", /not a rate/],
    ["20 MB per second", /not a rate/],
    ["20XB/s", /unknown rate unit "XB"/],
    ["20Mb/s", /could mean bits or bytes.*MB\/s for bytes or Mbit\/s for bits/],
    ["5kb", /could mean bits or bytes/],
    ["0", /at least 1 byte a second/],
    ["0.1B/s", /at least 1 byte a second/],
  ];
  for (const [text, message] of table) {
    assert.throws(() => parseRate(text), shoalError("INVALID_INPUT", message), text);
    try {
      parseRate(text);
    } catch (error) {
      assert.match((error as { hint?: string }).hint ?? "", /500KiB\/s, 20MB\/s, 100Mbit\/s/);
    }
  }
});

/** A clock the test moves, and a sleep that moves it (and records each wait). */
function fakeTime() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleep: (ms: number) => {
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
    advance: (ms: number) => (now += ms),
    sleeps,
    get elapsed() {
      return now;
    },
  };
}

Deno.test("RateLimiter - starts with a burst of 100 ms at the rate, then lets bytes through at the rate exactly", async () => {
  const time = fakeTime();
  const limiter = new RateLimiter({ bytesPerSecond: 10_000_000, now: time.now, sleep: time.sleep });
  // 100 ms at 10 MB/s: a million bytes at once, no wait.
  await limiter.take(1_000_000);
  assert.equal(time.elapsed, 0);
  assert.equal(limiter.available, 0);
  // Then 10 MB more take one second of the clock, in chunks.
  for (let i = 0; i < 10_000_000 / PACE_CHUNK_BYTES; i++) await limiter.take(PACE_CHUNK_BYTES);
  const sent = Math.ceil(10_000_000 / PACE_CHUNK_BYTES) * PACE_CHUNK_BYTES;
  assert.ok(Math.abs(time.elapsed - sent / 10_000) < 1, `${time.elapsed} ms for ${sent} bytes`);
  // No wait was longer than a chunk's time: smooth, not bursts then silence.
  assert.ok(Math.max(...time.sleeps) <= PACE_CHUNK_BYTES / 10_000 + 1);
});

Deno.test("RateLimiter - a quiet spell refills at most the burst", async () => {
  const time = fakeTime();
  const limiter = new RateLimiter({ bytesPerSecond: 1_000_000, now: time.now, sleep: time.sleep });
  await limiter.take(100_000);
  time.advance(60_000);
  // A minute of silence is worth 100 ms, not a minute.
  assert.equal(limiter.available, 100_000);
  await limiter.take(100_000);
  await limiter.take(50_000);
  assert.equal(time.elapsed, 60_050);
});

Deno.test("RateLimiter - a take larger than the bucket goes into debt that the next take waits out", async () => {
  const time = fakeTime();
  const limiter = new RateLimiter({ bytesPerSecond: 1_000_000, now: time.now, sleep: time.sleep });
  // A 4 MB take: waits for a full bucket (now), then owes 3.9 MB.
  await limiter.take(4_000_000);
  assert.equal(time.elapsed, 0);
  assert.equal(limiter.available, -3_900_000);
  await limiter.take(1);
  assert.ok(Math.abs(time.elapsed - 3_900) < 1, `${time.elapsed}`);
});

Deno.test("RateLimiter - callers are served in the order they asked, on one budget", async () => {
  const time = fakeTime();
  const limiter = new RateLimiter({ bytesPerSecond: 1_000_000, now: time.now, sleep: time.sleep });
  const order: string[] = [];
  const a = limiter.take(600_000).then(() => order.push("a"));
  const b = limiter.take(600_000).then(() => order.push("b"));
  const c = limiter.take(100_000).then(() => order.push("c"));
  await Promise.all([a, b, c]);
  assert.deepEqual(order, ["a", "b", "c"]);
  // 1.3 MB at 1 MB/s with 100 KB of burst: 1.2 s.
  assert.ok(Math.abs(time.elapsed - 1_200) < 1, `${time.elapsed}`);
});

Deno.test("paced - yields a piece in chunks of at most 64 KiB, each taken from the budget first", async () => {
  const time = fakeTime();
  const limiter = new RateLimiter({ bytesPerSecond: 1_000_000, now: time.now, sleep: time.sleep });
  const piece = new Uint8Array(300 * 1024).map((_, i) => i & 0xff);
  const chunks: Uint8Array[] = [];
  for await (const chunk of paced(piece, limiter)) chunks.push(chunk);
  assert.deepEqual(chunks.map((c) => c.length), [65536, 65536, 65536, 65536, 45056]);
  const joined = new Uint8Array(piece.length);
  let at = 0;
  for (const chunk of chunks) at += (joined.set(chunk, at), chunk.length);
  assert.deepEqual(joined, piece);
  // Without a limiter, the piece whole.
  const whole: Uint8Array[] = [];
  for await (const chunk of paced(piece, null)) whole.push(chunk);
  assert.equal(whole.length, 1);
});

Deno.test("processBudget - one limiter per direction for a process, none without a rate; a new rate changes it for all", () => {
  assert.equal(processBudget("upload", null), null);
  const first = processBudget("upload", 1_000_000);
  assert.equal(processBudget("upload", 1_000_000), first);
  assert.notEqual(processBudget("download", 1_000_000), first);
  assert.equal(processBudget("upload", 2_000_000), first);
  assert.equal(first?.bytesPerSecond, 2_000_000);
});

Deno.test("RateLimiter - a new rate applies from now on, and a smaller bucket keeps no more than it holds", async () => {
  const time = fakeTime();
  const limiter = new RateLimiter({ bytesPerSecond: 10_000_000, now: time.now, sleep: time.sleep });
  limiter.bytesPerSecond = 1_000_000;
  // The bucket held 1 MB (100 ms at 10 MB/s); at 1 MB/s it holds 100 KB.
  assert.equal(limiter.available, 100_000);
  await limiter.take(100_000);
  // 500 KB more at 1 MB/s: the next take waits until they are paid for.
  await limiter.take(500_000);
  await limiter.take(1);
  assert.ok(Math.abs(time.elapsed - 500) < 1, `${time.elapsed}`);
  assert.throws(() => (limiter.bytesPerSecond = 0), RangeError);
});
