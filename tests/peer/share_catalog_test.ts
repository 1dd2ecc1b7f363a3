import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { dirname, join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { pieceLength } from "../../lib/peer/manifest.ts";
import { ShareCatalog } from "../../lib/peer/share_catalog.ts";
import { describeFile } from "../../lib/peer/shares.ts";
import { describeFolder } from "../../lib/peer/folder_publish.ts";

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

/** CONTENT_CHANGED, the refusal a downloader gets. */
const contentChanged = (error: unknown) =>
  error instanceof ShoalError && error.code === "CONTENT_CHANGED";

/** A file outside the shares with the same size as `like`, standing in for /etc/shadow. */
async function secretBeside(fixture: { path: string; bytes: Uint8Array }) {
  const secret = join(dirname(fixture.path), "shadow");
  await Deno.writeFile(secret, fixture.bytes.map((byte) => byte ^ 0x5a));
  const { mtime } = await Deno.stat(fixture.path);
  await Deno.utime(secret, mtime!, mtime!);
  return secret;
}

Deno.test("ShareCatalog - a share swapped for a symbolic link after publishing is refused, and after a restart too", async () => {
  await using fixture = await homeWithShare(PIECE + 10);
  const secret = await secretBeside(fixture);
  const warnings: string[] = [];
  const catalog = new ShareCatalog(fixture.home, {
    warn: (line) => warnings.push(line),
    recheckMs: 0,
  });
  try {
    await readPiece(catalog, fixture.share.contentId, 0);
    // The decoy had the secret's size and time; now its path leads to the secret.
    await Deno.remove(fixture.path);
    await Deno.symlink(secret, fixture.path);
    await assert.rejects(catalog.find(fixture.share.contentId), contentChanged);
    assert.match(warnings[0], /no longer a regular file/);
  } finally {
    await catalog.close();
  }
  // A restart: a new process opens the same home.
  using home = PeerHome.open(join(dirname(fixture.path), "home"));
  const restarted = new ShareCatalog(home, { warn: () => {} });
  try {
    await assert.rejects(restarted.find(fixture.share.contentId), contentChanged);
  } finally {
    await restarted.close();
  }
});

Deno.test("ShareCatalog - another file renamed over a share with the same size and time is refused", async () => {
  await using fixture = await homeWithShare(PIECE + 10);
  const secret = await secretBeside(fixture);
  const catalog = new ShareCatalog(fixture.home, { warn: () => {}, recheckMs: 0 });
  try {
    await Deno.rename(secret, fixture.path);
    const now = await Deno.lstat(fixture.path);
    assert.equal(now.size, fixture.share.size, "the same size");
    assert.equal(now.mtime?.getTime(), fixture.share.mtimeMs, "the same time");
    await assert.rejects(catalog.find(fixture.share.contentId), contentChanged);
  } finally {
    await catalog.close();
  }
});

Deno.test("ShareCatalog - a share published through a link is served from the file it named, never through the link", async () => {
  await using fixture = await homeWithShare(1000);
  const link = join(dirname(fixture.path), "link.bin");
  await Deno.symlink(fixture.path, link);
  const share = await describeFile("linked", link);
  assert.equal(share.path, await Deno.realPath(fixture.path), "the record holds the real path");
  assert.ok(share.fileId, "and which file it is");
});

/** Turns the fixture's share into one recorded before identities were, as an old home holds it. */
function forgetFileIds(fixture: { path: string }) {
  const db = new DatabaseSync(join(dirname(fixture.path), "home", "peer.db"));
  try {
    db.exec("UPDATE shares SET file_id = NULL");
  } finally {
    db.close();
  }
}

Deno.test("ShareCatalog - a share recorded before identities is re-hashed once, then served and recorded", async () => {
  await using fixture = await homeWithShare(2 * PIECE + 3);
  forgetFileIds(fixture);
  assert.equal(fixture.home.share("data")?.fileId, null);
  const catalog = new ShareCatalog(fixture.home);
  try {
    assert.deepEqual(
      await readPiece(catalog, fixture.share.contentId, 2),
      fixture.bytes.subarray(2 * PIECE),
    );
    assert.equal(fixture.home.share("data")?.fileId, fixture.share.fileId);
  } finally {
    await catalog.close();
  }
});

Deno.test("ShareCatalog - a share recorded before identities whose bytes changed under the same size and time is refused", async () => {
  await using fixture = await homeWithShare(PIECE + 10);
  forgetFileIds(fixture);
  const secret = await secretBeside(fixture);
  await Deno.rename(secret, fixture.path);
  const catalog = new ShareCatalog(fixture.home, { warn: () => {} });
  try {
    await assert.rejects(catalog.find(fixture.share.contentId), contentChanged);
    assert.equal(fixture.home.share("data")?.fileId, null, "nothing is recorded for it");
  } finally {
    await catalog.close();
  }
});

Deno.test("PeerHome - a home from before file identities keeps its shares, with no identity yet", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-share-catalog-" });
  try {
    const db = new DatabaseSync(join(dir, "peer.db"));
    db.exec(`CREATE TABLE shares (
       name TEXT PRIMARY KEY, path TEXT NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL,
       mtime_ms INTEGER NOT NULL, content_id TEXT NOT NULL, manifest TEXT NOT NULL,
       published_at TEXT NOT NULL);
     INSERT INTO shares VALUES ('old', '/srv/old.txt', 'txt', 0, 1, '${"e".repeat(64)}',
       '{"version":1,"size":0,"pieceSize":262144,"pieces":[]}', '2026-01-01T00:00:00.000Z');
     PRAGMA user_version = 3;`);
    db.close();
    using home = PeerHome.open(dir);
    const [old] = home.shares();
    assert.equal(old.name, "old");
    assert.equal(old.fileId, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PeerHome - filesByContent finds a batch in the order asked: twice when asked twice, a file shared alone before its folder's copy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-share-catalog-" });
  try {
    const tree = join(dir, "tree");
    await Deno.mkdir(tree);
    await Deno.writeTextFile(join(tree, "a.txt"), "alpha");
    await Deno.writeTextFile(join(tree, "b.txt"), "beta");
    await Deno.writeTextFile(join(dir, "b-alone.txt"), "beta");
    using home = PeerHome.open(join(dir, "home"));
    const folder = await describeFolder("tree", tree, []);
    home.addShare(folder.share, folder.files);
    const alone = await describeFile("b-alone", join(dir, "b-alone.txt"));
    home.addShare(alone);
    const [a, b] = [...folder.files].sort((x, y) => x.relative < y.relative ? -1 : 1);
    assert.equal(b.contentId, alone.contentId);
    const found = home.filesByContent([b.contentId, "0".repeat(64), a.contentId, a.contentId]);
    assert.equal(found.length, 4);
    assert.equal(found[0]?.path, alone.path);
    assert.equal(found[0]?.share, "b-alone");
    assert.equal(found[0]?.shareContentId, alone.contentId);
    assert.equal(found[1], undefined);
    for (const file of [found[2], found[3]]) {
      assert.deepEqual(file, {
        path: a.path,
        size: 5,
        mtimeMs: a.mtimeMs,
        fileId: a.fileId,
        share: "tree",
        shareContentId: folder.share.contentId,
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PeerHome - a home from before the folder files' content key finds its folders' files by content id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-share-catalog-" });
  try {
    const id = (n: number) => n.toString(16).padStart(2, "0").repeat(32);
    const manifest = (n: number) => ({
      version: 1 as const,
      size: 1,
      pieceSize: PIECE,
      pieces: [id(n)],
    });
    const file = (n: number) => ({
      relative: `f${n}.txt`,
      path: join(dir, `f${n}.txt`),
      size: 1,
      mtimeMs: 1,
      fileId: null,
      contentId: id(n),
      manifest: manifest(n),
    });
    {
      using home = PeerHome.open(dir);
      home.addShare({
        name: "tree",
        path: dir,
        type: "folder",
        size: 2,
        mtimeMs: 1,
        fileId: null,
        contentId: id(200),
        manifest: { version: 1, size: 0, pieceSize: PIECE, pieces: [] },
        publishedAt: "2026-01-01T00:00:00.000Z",
        kind: "folder",
        files: 2,
      }, [file(1), file(2)]);
    }
    // Back to the schema before the key: the index on the whole content id.
    const db = new DatabaseSync(join(dir, "peer.db"));
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number })
      .user_version;
    // (And before the migration after it, which recorded staged folder fetches.)
    db.exec(`DROP INDEX folder_files_by_content_key;
      CREATE INDEX folder_files_by_content ON folder_files(content_id);
      ALTER TABLE folder_downloads DROP COLUMN staged;
      PRAGMA user_version = ${version - 2};`);
    db.close();
    using home = PeerHome.open(dir);
    assert.equal(home.shareByContent(id(2))?.name, "tree/f2.txt");
    assert.equal(home.shareByContent(id(3)), null);
    const found = home.filesByContent([id(1), id(2), id(3)]);
    assert.deepEqual(found.map((file) => file?.path), [
      join(dir, "f1.txt"),
      join(dir, "f2.txt"),
      undefined,
    ]);
    assert.equal(found[0]?.shareContentId, id(200));
    // The same first 8 bytes are not the same id.
    const twin = id(1).slice(0, 16) + "0".repeat(48);
    assert.equal(home.shareByContent(twin), null);
    assert.deepEqual(home.filesByContent([twin]), [undefined]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
