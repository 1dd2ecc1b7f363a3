import assert from "node:assert/strict";
import { BufferPool } from "../../lib/protocol/buffer_pool.ts";

Deno.test("BufferPool - a released buffer is taken again for any length of its size class", () => {
  const pool = new BufferPool();
  const first = pool.take(300_000);
  assert.equal(first.length, 300_000);
  assert.equal(first.buffer.byteLength, 512 * 1024);
  pool.release(first);
  const second = pool.take(400_000);
  assert.equal(second.buffer, first.buffer);
  assert.equal(second.length, 400_000);
  assert.notEqual(pool.take(400_000).buffer, first.buffer, "a buffer is handed out once");
});

Deno.test("BufferPool - buffers it did not make are never taken back", () => {
  const pool = new BufferPool();
  const foreign = new Uint8Array(new ArrayBuffer(8192), 0, 100);
  pool.release(foreign);
  assert.notEqual(pool.take(100).buffer, foreign.buffer);
});

Deno.test("BufferPool - releasing twice does not hand the same buffer to two takers", () => {
  const pool = new BufferPool();
  const taken = pool.take(10);
  pool.release(taken);
  pool.release(taken);
  assert.notEqual(pool.take(10).buffer, pool.take(10).buffer);
});

Deno.test("BufferPool - keeps at most maxFreePerSize idle buffers of a size", () => {
  const pool = new BufferPool(2);
  const taken = [pool.take(10), pool.take(10), pool.take(10)];
  for (const bytes of taken) pool.release(bytes);
  const again = [pool.take(10), pool.take(10), pool.take(10)].map((b) => b.buffer);
  assert.equal(again.filter((buffer) => taken.some((t) => t.buffer === buffer)).length, 2);
});

Deno.test("BufferPool - a buffer back from a worker (a new object) is adopted and taken again", () => {
  const pool = new BufferPool();
  const taken = pool.take(100_000);
  // What transferring it to a worker and back does: the same memory, a new ArrayBuffer.
  const buffer = taken.buffer as ArrayBuffer;
  const back = structuredClone(buffer, { transfer: [buffer] });
  assert.equal(taken.buffer.byteLength, 0, "detached here");
  pool.adopt(back);
  assert.equal(pool.take(100_000).buffer, back);
  // One of no size class of the pool's is not.
  const odd = new ArrayBuffer(100_000);
  pool.adopt(odd);
  assert.notEqual(pool.take(90_000).buffer, odd);
});
