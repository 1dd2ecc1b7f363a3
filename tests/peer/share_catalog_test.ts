import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { pieceLength } from "../../lib/peer/manifest.ts";
import { ShareCatalog } from "../../lib/peer/share_catalog.ts";
import { describeFile } from "../../lib/peer/shares.ts";

const PIECE = 256 * 1024;

/** A home with one share "data" of `size` deterministic bytes; cleaned up on dispose. */
async function homeWithShare(size: number) {
  const dir = await Deno.makeTempDir({ prefix: "shoal-share-catalog-" });
  const path = join(dir, "data.bin");
  const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff);
  await Deno.writeFile(path, bytes);
  const home = PeerHome.open(join(dir, "home"));
  const share = await describeFile("data", path);
  home.addShare(share);
  return {
    home,
    path,
    bytes,
    share,
    async [Symbol.asyncDispose]() {
      home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function readPiece(catalog: ShareCatalog, contentId: string, index: number) {
  const content = await catalog.find(contentId);
  assert.ok(content, "the share is found");
  const into = new Uint8Array(pieceLength(content.manifest, index));
  await content.read(index, into);
  return into;
}

Deno.test("ShareCatalog - serves every piece of a share, the short last one too, from its file", async () => {
  await using fixture = await homeWithShare(2 * PIECE + 1000);
  const catalog = new ShareCatalog(fixture.home);
  try {
    const pieces = await Promise.all(
      [0, 1, 2].map((i) => readPiece(catalog, fixture.share.contentId, i)),
    );
    assert.deepEqual(pieces[0], fixture.bytes.subarray(0, PIECE));
    assert.deepEqual(pieces[1], fixture.bytes.subarray(PIECE, 2 * PIECE));
    assert.deepEqual(pieces[2], fixture.bytes.subarray(2 * PIECE));
    assert.equal(await catalog.find("ee".repeat(32)), null);
  } finally {
    await catalog.close();
  }
});

Deno.test("ShareCatalog - a file changed after publishing is refused once it is checked again", async () => {
  await using fixture = await homeWithShare(PIECE + 10);
  const warnings: string[] = [];
  const catalog = new ShareCatalog(fixture.home, {
    warn: (line) => warnings.push(line),
    recheckMs: 0,
  });
  try {
    await readPiece(catalog, fixture.share.contentId, 0);
    await Deno.writeFile(fixture.path, new Uint8Array(PIECE + 11));
    await assert.rejects(
      catalog.find(fixture.share.contentId),
      (error) => error instanceof ShoalError && error.code === "CONTENT_CHANGED",
    );
    await assert.rejects(catalog.find(fixture.share.contentId));
    assert.equal(warnings.length, 1, "the owner is warned once");
    assert.match(warnings[0], /changed since it was published/);
  } finally {
    await catalog.close();
  }
});

Deno.test("ShareCatalog - an unpublished share is no longer found once checked again", async () => {
  await using fixture = await homeWithShare(1000);
  const catalog = new ShareCatalog(fixture.home, { recheckMs: 0 });
  try {
    await readPiece(catalog, fixture.share.contentId, 0);
    fixture.home.removeShare("data");
    assert.equal(await catalog.find(fixture.share.contentId), null);
  } finally {
    await catalog.close();
  }
});

Deno.test("ShareCatalog - a file deleted after publishing is refused with NOT_FOUND", async () => {
  await using fixture = await homeWithShare(1000);
  const catalog = new ShareCatalog(fixture.home, { warn: () => {}, recheckMs: 0 });
  try {
    await Deno.remove(fixture.path);
    await assert.rejects(
      catalog.find(fixture.share.contentId),
      (error) => error instanceof ShoalError && error.code === "NOT_FOUND",
    );
  } finally {
    await catalog.close();
  }
});
