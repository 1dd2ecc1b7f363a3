import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { Manifest } from "../../lib/protocol/messages.ts";
import {
  buildManifest,
  checkPieceLayout,
  choosePieceSize,
  contentIdOf,
  openRegularFile,
  pieceLength,
  verifyManifest,
} from "../../lib/peer/manifest.ts";
import { shoalError } from "../helpers/errors.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && Number.isInteger(Math.log2(n));
}

/** `length` pseudo-random bytes (xorshift32), so no two pieces hash alike. */
function noise(length: number, seed = 0x2545f491): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Runs `work` on a temp file holding `bytes`; the file's directory is removed afterwards. */
async function withFile(
  bytes: Uint8Array,
  work: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-manifest-test-" });
  try {
    const path = `${dir}/data.bin`;
    await Deno.writeFile(path, bytes);
    await work(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SAMPLE: Manifest = {
  version: 1,
  size: 600 * KIB,
  pieceSize: 256 * KIB,
  pieces: ["1".repeat(64), "2".repeat(64), "3".repeat(64)],
};

Deno.test("choosePieceSize - a small file gets the 256 KiB minimum", () => {
  for (const size of [0, 1, 1000, 256 * KIB, 100 * MIB, 256 * KIB * 2048]) {
    assert.equal(choosePieceSize(size), 256 * KIB, `size ${size}`);
  }
});

Deno.test("choosePieceSize - grows just past 2048 minimum pieces", () => {
  assert.equal(choosePieceSize(256 * KIB * 2048 + 1), 512 * KIB);
});

Deno.test("choosePieceSize - keeps 1 GiB and 100 GiB files at no more than 2048 pieces", () => {
  for (const size of [GIB, 100 * GIB]) {
    const pieceSize = choosePieceSize(size);
    assert.ok(Math.ceil(size / pieceSize) <= 2048, `${size} bytes in ${pieceSize}-byte pieces`);
    // The smallest power of two that does so: half of it would need more pieces.
    assert.ok(Math.ceil(size / (pieceSize / 2)) > 2048);
  }
  assert.equal(choosePieceSize(GIB), 512 * KIB);
  assert.equal(choosePieceSize(100 * GIB), 64 * MIB);
});

Deno.test("choosePieceSize - always a power of two between 256 KiB and 64 MiB", () => {
  for (const size of [0, 7, 3 * MIB + 5, 999 * MIB, 5 * GIB + 1, 40 * GIB, 10 * 1024 * GIB]) {
    const pieceSize = choosePieceSize(size);
    assert.ok(isPowerOfTwo(pieceSize), `${pieceSize} for size ${size}`);
    assert.ok(pieceSize >= 256 * KIB && pieceSize <= 64 * MIB, `${pieceSize} for size ${size}`);
  }
});

Deno.test("choosePieceSize - stops at 64 MiB for files beyond 128 GiB", () => {
  assert.equal(choosePieceSize(1024 * GIB), 64 * MIB);
});

Deno.test("buildManifest - an empty file has no pieces", async () => {
  await withFile(new Uint8Array(0), async (path) => {
    const manifest = await buildManifest(path);
    assert.deepEqual(manifest, { version: 1, size: 0, pieceSize: 256 * KIB, pieces: [] });
    assert.ok(Manifest.safeParse(manifest).success);
  });
});

Deno.test("buildManifest - a size not a multiple of the piece size ends with a shorter piece", async () => {
  const bytes = noise(2 * 256 * KIB + 1000);
  await withFile(bytes, async (path) => {
    const manifest = await buildManifest(path);
    assert.equal(manifest.version, 1);
    assert.equal(manifest.size, bytes.byteLength);
    assert.equal(manifest.pieceSize, 256 * KIB);
    assert.equal(manifest.pieces.length, 3);
    assert.deepEqual(
      [0, 1, 2].map((i) => pieceLength(manifest, i)),
      [256 * KIB, 256 * KIB, 1000],
    );
    assert.ok(Manifest.safeParse(manifest).success);
  });
});

Deno.test("buildManifest - piece hashes equal the SHA-256 of each slice of the file", async () => {
  const bytes = noise(2 * 256 * KIB + 1000);
  await withFile(bytes, async (path) => {
    const { pieces, pieceSize } = await buildManifest(path);
    const expected = [0, 1, 2].map((i) =>
      sha256(bytes.subarray(i * pieceSize, Math.min((i + 1) * pieceSize, bytes.byteLength)))
    );
    assert.deepEqual(pieces, expected);
    assert.equal(new Set(pieces).size, 3);
  });
});

Deno.test("buildManifest - a size that is an exact multiple has only full pieces", async () => {
  const bytes = noise(2 * 256 * KIB, 7);
  await withFile(bytes, async (path) => {
    const manifest = await buildManifest(path);
    assert.deepEqual(manifest.pieces, [
      sha256(bytes.subarray(0, 256 * KIB)),
      sha256(bytes.subarray(256 * KIB)),
    ]);
    assert.equal(pieceLength(manifest, 1), 256 * KIB);
  });
});

Deno.test("buildManifest - a file smaller than one piece is one piece of its own size", async () => {
  const bytes = noise(1, 3);
  await withFile(bytes, async (path) => {
    const manifest = await buildManifest(path);
    assert.deepEqual(manifest, {
      version: 1,
      size: 1,
      pieceSize: 256 * KIB,
      pieces: [sha256(bytes)],
    });
    assert.equal(pieceLength(manifest, 0), 1);
  });
});

Deno.test("buildManifest - a missing file is rejected", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-manifest-test-" });
  try {
    await assert.rejects(
      buildManifest(`${dir}/absent.bin`),
      (error: unknown) =>
        error instanceof Deno.errors.NotFound ||
        (error instanceof ShoalError && error.code === "IO"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openRegularFile - a symbolic link is refused, even to a regular file", async () => {
  await withFile(noise(100), async (path) => {
    const link = `${path}.link`;
    await Deno.symlink(path, link);
    await assert.rejects(openRegularFile(link), shoalError("IO", /is a symbolic link/));
    await assert.rejects(buildManifest(link), shoalError("IO", /is a symbolic link/));
  });
});

Deno.test("openRegularFile - opens a regular file and says which one it is", async () => {
  await withFile(noise(100), async (path) => {
    const { file, identity } = await openRegularFile(path);
    await file.close();
    const info = await Deno.lstat(path);
    assert.deepEqual(identity, {
      fileId: `${info.dev}:${info.ino}`,
      size: 100,
      mtimeMs: info.mtime!.getTime(),
    });
  });
});

Deno.test("contentIdOf - is a SHA-256 hex digest, stable for the same manifest", () => {
  const id = contentIdOf(SAMPLE);
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(contentIdOf(SAMPLE), id);
  assert.equal(contentIdOf(structuredClone(SAMPLE)), id);
});

Deno.test("contentIdOf - ignores the key order of the manifest object", () => {
  const reordered: Manifest = {
    pieces: [...SAMPLE.pieces],
    pieceSize: SAMPLE.pieceSize,
    size: SAMPLE.size,
    version: 1,
  };
  assert.equal(contentIdOf(reordered), contentIdOf(SAMPLE));
});

Deno.test("contentIdOf - changes when one piece hash changes", () => {
  const changed = { ...SAMPLE, pieces: [SAMPLE.pieces[0], "4".repeat(64), SAMPLE.pieces[2]] };
  assert.notEqual(contentIdOf(changed), contentIdOf(SAMPLE));
});

Deno.test("contentIdOf - changes with the size or the piece size", () => {
  const id = contentIdOf(SAMPLE);
  assert.notEqual(contentIdOf({ ...SAMPLE, size: SAMPLE.size - 1 }), id);
  assert.notEqual(contentIdOf({ ...SAMPLE, size: 3 * 256 * KIB, pieceSize: 256 * KIB }), id);
  assert.notEqual(contentIdOf({ ...SAMPLE, pieceSize: 200 * KIB }), id);
});

Deno.test("verifyManifest - accepts the manifest its content id names", async () => {
  await withFile(noise(300 * KIB), async (path) => {
    const manifest = await buildManifest(path);
    verifyManifest(manifest, contentIdOf(manifest));
  });
});

Deno.test("verifyManifest - throws INTEGRITY when the manifest does not match the content id", () => {
  const id = contentIdOf(SAMPLE);
  const tampered = { ...SAMPLE, pieces: [...SAMPLE.pieces.slice(0, 2), "f".repeat(64)] };
  assert.throws(() => verifyManifest(tampered, id), shoalError("INTEGRITY"));
  assert.throws(() => verifyManifest(SAMPLE, "0".repeat(64)), shoalError("INTEGRITY"));
  assert.throws(() => verifyManifest(SAMPLE, id.toUpperCase()), shoalError("INTEGRITY"));
});

Deno.test("checkPieceLayout - accepts what buildManifest makes, empty files included", async () => {
  for (const length of [0, 1, 300 * KIB]) {
    await withFile(noise(length), async (path) => checkPieceLayout(await buildManifest(path)));
  }
  // A 2 GiB file as a publisher would cut it: 1 MiB pieces.
  const pieces = Array.from({ length: 2048 }, () => "a".repeat(64));
  checkPieceLayout({ version: 1, size: 2 * GIB, pieceSize: MIB, pieces });
});

Deno.test("checkPieceLayout - refuses pieces larger than a publisher picks for the size", () => {
  const oversized = {
    version: 1 as const,
    size: MIB,
    pieceSize: 64 * MIB,
    pieces: ["a".repeat(64)],
  };
  assert.throws(
    () => checkPieceLayout(oversized),
    (error: unknown) =>
      shoalError("INTEGRITY")(error) &&
      /pieces of 67108864 B, where a publisher uses 262144 B/.test((error as Error).message),
  );
  // Smaller than the rule gives is refused too: no publisher makes it.
  const pieces = Array.from({ length: 8 }, () => "a".repeat(64));
  assert.throws(
    () => checkPieceLayout({ version: 1, size: 4 * 128 * KIB, pieceSize: 64 * KIB, pieces }),
    shoalError("INTEGRITY"),
  );
});

Deno.test("checkPieceLayout - refuses pieces over the fetcher's own maximum", () => {
  const pieces = Array.from({ length: 2048 }, () => "a".repeat(64));
  const manifest = { version: 1 as const, size: 2 * GIB, pieceSize: MIB, pieces };
  checkPieceLayout(manifest, MIB);
  assert.throws(() => checkPieceLayout(manifest, 512 * KIB), shoalError("INTEGRITY"));
});

Deno.test("checkPieceLayout - refuses a piece count that does not cover the size", () => {
  const pieces = Array.from({ length: 3 }, () => "a".repeat(64));
  assert.throws(
    () => checkPieceLayout({ version: 1, size: 5 * 256 * KIB, pieceSize: 256 * KIB, pieces }),
    shoalError("INTEGRITY"),
  );
});

Deno.test("describeFile - a publish's hashing reports the bytes hashed after each piece, up to the size, for its progress bar", async () => {
  const { describeFile } = await import("../../lib/peer/shares.ts");
  const dir = await Deno.makeTempDir({ prefix: "shoal-manifest-" });
  try {
    const path = `${dir}/big.bin`;
    const size = 3 * MIB + 5;
    await Deno.writeFile(path, new Uint8Array(size));
    const heard: [number, number][] = [];
    const share = await describeFile("big", path, undefined, (bytes, total) => {
      heard.push([bytes, total]);
    });
    assert.equal(share.size, size);
    const pieceSize = choosePieceSize(size);
    assert.equal(heard.length, Math.ceil(size / pieceSize));
    assert.deepEqual(heard.at(-1), [size, size]);
    assert.ok(heard.every(([bytes], i) => i === 0 || bytes > heard[i - 1][0]), "bytes only grow");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
