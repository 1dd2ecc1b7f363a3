import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import { pieceLength } from "../../lib/peer/manifest.ts";
import { PartFile, type PartFileOptions } from "../../lib/peer/part_file.ts";
import { manifestOf } from "../helpers/catalog.ts";

const PIECE = 4096;
/** Ten full pieces and a short last one. */
const CONTENT = Uint8Array.from({ length: 10 * PIECE + 1000 }, (_, i) => (i * 13 + 5) & 0xff);
const { manifest } = manifestOf(CONTENT, PIECE);
const COUNT = manifest.pieces.length;

function pieceOf(index: number): Uint8Array {
  return CONTENT.slice(index * PIECE, index * PIECE + pieceLength(manifest, index));
}

async function tempPath() {
  const dir = await Deno.makeTempDir({ prefix: "shoal-part-file-" });
  return {
    path: join(dir, "data.bin.shoal-part"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Writes every piece, all at once and last to first, then finishes. */
async function writeAll(path: string, options?: PartFileOptions): Promise<void> {
  await using part = await PartFile.open(path, manifest, options);
  const indexes = Array.from({ length: COUNT }, (_, i) => COUNT - 1 - i);
  await Promise.all(indexes.map((index) => part.write(index, pieceOf(index))));
  await part.finish();
}

for (
  const [how, options] of [
    ["on the event loop", {}],
    ["on the I/O threads once a write was slow", { slowWriteMs: -1 }],
  ] as const
) {
  Deno.test(`PartFile - pieces written out of order ${how} make the whole file`, async () => {
    await using file = await tempPath();
    await writeAll(file.path, options);
    assert.deepEqual(await Deno.readFile(file.path), CONTENT);
  });
}

Deno.test("PartFile - reads back a written piece, and reports one never written", async () => {
  await using file = await tempPath();
  await using part = await PartFile.open(file.path, manifest);
  await part.write(2, pieceOf(2));
  const into = new Uint8Array(PIECE);
  assert.equal(await part.read(2, into), true);
  assert.deepEqual(into, pieceOf(2));
  assert.equal(await part.read(7, into), false, "beyond the end of what was written");
});

Deno.test("PartFile - on reopening keeps the pieces whose bytes still match their hash", async () => {
  await using file = await tempPath();
  {
    await using part = await PartFile.open(file.path, manifest);
    await Promise.all([0, 1, 3].map((index) => part.write(index, pieceOf(index))));
  }
  // Piece 1 changed on disk after it was recorded as verified, as after a power loss.
  const handle = await Deno.open(file.path, { write: true });
  await handle.seek(PIECE + 10, Deno.SeekMode.Start);
  await handle.write(new Uint8Array([0xff ^ CONTENT[PIECE + 10]]));
  handle.close();

  await using part = await PartFile.open(file.path, manifest);
  const claimed = new Bitfield(COUNT);
  for (const index of [0, 1, 3]) claimed.set(index);
  const have = await part.verify(claimed);
  assert.deepEqual([0, 1, 2, 3].map((index) => have.has(index)), [true, false, false, true]);
});

Deno.test("PartFile - a symbolic link planted at the part file's path is refused, its target untouched", async () => {
  await using temp = await tempPath();
  const target = join(temp.path, "..", "victim.txt");
  await Deno.writeTextFile(target, "precious");
  await Deno.symlink(target, temp.path);
  await assert.rejects(PartFile.open(temp.path, manifest), (error: unknown) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "IO");
    assert.match(error.message, /is a symbolic link, not a partial download of ours/);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
  assert.equal(await Deno.readTextFile(target), "precious");
  assert.ok((await Deno.lstat(temp.path)).isSymlink, "the link is left for the user to look at");
});

Deno.test("PartFile - a dangling symbolic link is not created through either", async () => {
  await using temp = await tempPath();
  const target = join(temp.path, "..", "created-elsewhere");
  await Deno.symlink(target, temp.path);
  await assert.rejects(PartFile.open(temp.path, manifest), /symbolic link/);
  await assert.rejects(Deno.lstat(target), Deno.errors.NotFound);
});

Deno.test("PartFile - a part file with another hard link is refused", async () => {
  await using temp = await tempPath();
  const other = join(temp.path, "..", "elsewhere");
  await Deno.writeTextFile(other, "precious");
  await Deno.link(other, temp.path);
  await assert.rejects(PartFile.open(temp.path, manifest), /has other hard links/);
  assert.equal(await Deno.readTextFile(other), "precious");
});

Deno.test("PartFile - an existing regular part file of ours is resumed with its bytes", async () => {
  await using temp = await tempPath();
  {
    await using part = await PartFile.open(temp.path, manifest);
    await part.write(3, pieceOf(3));
  }
  await using again = await PartFile.open(temp.path, manifest);
  const have = await again.verify(Bitfield.full(COUNT));
  assert.deepEqual([...Array(COUNT).keys()].filter((i) => have.has(i)), [3]);
});
