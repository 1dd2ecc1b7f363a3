import assert from "node:assert/strict";
import { type PickSource, PiecePicker } from "../../lib/peer/piece_picker.ts";

/** A source holding `pieces`. */
function source(pieces: number[], complete = false, inFlight: number[] = []): PickSource {
  const held = new Set(pieces);
  return { has: (i) => held.has(i), inFlight: new Set(inFlight), complete };
}
const all = (count: number) => Array.from({ length: count }, (_, i) => i);
const noEndgame = { lagging: () => false, sources: () => [] };
const nothingHeld = () => false;

/** A random source that draws `values` in turn. */
function draws(...values: number[]): () => number {
  return () => values.shift() ?? 0;
}

Deno.test("PiecePicker - takes one of the rarest pieces the source has", () => {
  const picker = new PiecePicker(4, { random: draws(0) });
  const seed = source(all(4), true);
  const peer = source([0, 1, 2]);
  for (const i of all(4)) picker.gained(i, false);
  for (const i of [0, 1, 2]) picker.gained(i, true);
  // Piece 3 is held by the seed alone.
  assert.equal(picker.pick(seed, nothingHeld, noEndgame), 3);
  // The partial source has only pieces two hold: the first of them, by the draw.
  assert.equal(picker.pick(peer, nothingHeld, noEndgame), 0);
});

Deno.test("PiecePicker - draws at random among equally rare pieces, so a crowd spreads over them", () => {
  const seed = source(all(8), true);
  const picks = new Set<number>();
  for (let draw = 0; draw < 8; draw++) {
    const picker = new PiecePicker(8, { random: () => draw / 8 });
    for (const i of all(8)) picker.gained(i, false);
    picks.add(picker.pick(seed, nothingHeld, noEndgame)!);
  }
  assert.deepEqual([...picks].sort(), all(8));
});

Deno.test("PiecePicker - skips pieces held, being stored, or already asked of anyone", () => {
  const picker = new PiecePicker(4, { random: draws(0, 0, 0) });
  const seed = source(all(4), true);
  for (const i of all(4)) picker.gained(i, false);
  picker.requested(0, 1);
  assert.equal(picker.pick(seed, (i) => i === 1, noEndgame), 2);
  picker.requested(2, 1);
  assert.equal(picker.pick(seed, (i) => i === 1, noEndgame), 3);
  picker.requested(2, -1);
  assert.equal(picker.requestsOf(2), 0);
});

Deno.test("PiecePicker - a complete source is asked first for what no fellow downloader holds", () => {
  // Pieces 0 and 1 both have two holders: piece 0 a seed and a fellow downloader, piece 1 two
  // seeds. A seed's upload goes to piece 1, which no downloader can pass on yet.
  const picker = new PiecePicker(2, { random: draws(0) });
  picker.gained(0, false);
  picker.gained(0, true);
  picker.gained(1, false);
  picker.gained(1, false);
  assert.equal(picker.availabilityOf(0), 2);
  assert.equal(picker.availabilityOf(1), 2);
  assert.equal(picker.pick(source([0, 1], true), nothingHeld, noEndgame), 1);
  // A partial source asked for the same two pieces takes the draw: it is no seed.
  assert.equal(
    new PiecePicker(2, { random: draws(0) }).pick(source([0, 1]), nothingHeld, noEndgame),
    0,
  );
});

Deno.test("PiecePicker - a lost piece counts one holder less", () => {
  const picker = new PiecePicker(2, { random: draws(0) });
  picker.gained(0, true);
  picker.gained(0, false);
  picker.gained(1, false);
  picker.lost(0, true);
  assert.equal(picker.availabilityOf(0), 1);
});

Deno.test("PiecePicker - the endgame asks a second source for the piece with the fewest copies, never a lagging source", () => {
  const picker = new PiecePicker(3, { endgameCopies: 2 });
  const slow = source(all(3), true, [0]);
  const other = source(all(3), true, [1, 2]);
  const idle = source(all(3), true);
  for (const i of all(3)) picker.gained(i, false);
  for (const i of all(3)) picker.requested(i, 1);
  const endgame = {
    lagging: (s: PickSource) => s === slow,
    sources: () => [slow, other, idle],
  };
  // Piece 0 is asked only of a lagging source: it counts as asked of nobody.
  assert.equal(picker.pick(idle, nothingHeld, endgame), 0);
  // A lagging source gets nothing in the endgame.
  assert.equal(picker.pick(slow, nothingHeld, endgame), null);
  // With every piece at the cap of copies, nothing more.
  for (const i of all(3)) picker.requested(i, 1);
  assert.equal(picker.pick(idle, nothingHeld, { lagging: () => false, sources: () => [] }), null);
});

Deno.test("PiecePicker - no endgame while a piece is left that nobody was asked for", () => {
  const picker = new PiecePicker(2);
  picker.gained(0, false);
  picker.requested(0, 1);
  // Piece 1 is unrequested but this source lacks it: it waits rather than doubling piece 0.
  assert.equal(
    picker.pick(source([0], true), nothingHeld, { lagging: () => false, sources: () => [] }),
    null,
  );
});

Deno.test("PiecePicker - a seed that says what it has sent others is asked for what it has sent nobody", () => {
  const picker = new PiecePicker(4, { random: draws(0) });
  for (const i of all(4)) picker.gained(i, false);
  const sentAlready = new Set([0, 1, 3]);
  const seed = { ...source(all(4), true), sentElsewhere: (i: number) => sentAlready.has(i) };
  assert.equal(picker.pick(seed, nothingHeld, noEndgame), 2);
  // Once it has sent everything, any piece will do: nothing is left waiting for nothing.
  sentAlready.add(2);
  assert.equal(picker.pick(seed, nothingHeld, noEndgame), 0);
});
