/**
 * How a folder download puts its small files (one piece each) in place: never
 * through a link planted at a part path or a final path, replacing a leftover
 * part file, and failing with one clear error when the disk refuses a write.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { FolderDownload, type PlannedFile } from "../../lib/peer/folder_download.ts";
import { choosePieceSize } from "../../lib/peer/manifest.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { ANY_CONTENT } from "../../lib/protocol/tickets.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { TicketAuthority } from "../helpers/sources.ts";
import { mountTmpfs, tmpfsUnavailable } from "../helpers/tmpfs.ts";

/** Files of `size` bytes each, named f0.bin, f1.bin, ..., their bytes told apart by their index. */
function smallFiles(count: number, size: number): { files: PlannedFile[]; contents: Uint8Array[] } {
  const files: PlannedFile[] = [];
  const contents: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const content = Uint8Array.from({ length: size }, (_, j) => (i * 31 + j * 7) & 0xff);
    const { manifest } = manifestOf(content, choosePieceSize(size));
    files.push({ path: `f${i}.bin`, size, pieces: manifest.pieces });
    contents.push(content);
  }
  return { files, contents };
}

/** A catalog serving each of `contents` from memory. */
function catalogOf(contents: Uint8Array[]): Catalog {
  const catalogs = contents.map((content) =>
    memoryCatalog(content, choosePieceSize(content.length))
  );
  return {
    find: async (contentId) => {
      for (const catalog of catalogs) {
        const found = await catalog.find(contentId);
        if (found) return found;
      }
      return null;
    },
  };
}

/** Serves `contents`, runs a folder download of `files` into `dir`, and stops the source. */
async function download(
  dir: string,
  files: PlannedFile[],
  contents: Uint8Array[],
  place: (relative: string) => string = (relative) => join(dir, relative),
): Promise<void> {
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(ANY_CONTENT);
  const { server, source } = await authority.serve(catalogOf(contents), "alice");
  try {
    const planned = { sources: [{ source, holds: null }], ticket };
    const run = new FolderDownload({
      files,
      place,
      findSources: () => Promise.resolve(planned),
      plaintext: true,
    }).run(planned);
    await deadline(run, 60_000, { what: "the folder download" });
  } finally {
    await server.close();
  }
}

Deno.test("Folder download - links planted at part and final paths are not followed, a leftover part is replaced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-folder-write-" });
  try {
    const out = join(dir, "out");
    await Deno.mkdir(out);
    const outside = join(dir, "outside.txt");
    await Deno.writeTextFile(outside, "not yours");
    const missing = join(dir, "would-be-created.txt");
    const { files, contents } = smallFiles(40, 5000);
    await Deno.symlink(outside, join(out, "f0.bin.shoal-part"));
    await Deno.symlink(missing, join(out, "f1.bin.shoal-part"));
    await Deno.symlink(outside, join(out, "f2.bin"));
    await Deno.writeTextFile(join(out, "f3.bin.shoal-part"), "x".repeat(9000));
    await download(out, [...files, { path: "empty", size: 0, pieces: [] }], contents);
    assert.equal(await Deno.readTextFile(outside), "not yours");
    await assert.rejects(Deno.lstat(missing), Deno.errors.NotFound);
    for (const [i, content] of contents.entries()) {
      const path = join(out, `f${i}.bin`);
      assert.ok((await Deno.lstat(path)).isFile, `${path} is a file`);
      assert.deepEqual(await Deno.readFile(path), content, path);
    }
    assert.equal((await Deno.lstat(join(out, "empty"))).size, 0);
    const left = [...Deno.readDirSync(out)].filter((entry) => entry.name.endsWith(".shoal-part"));
    assert.deepEqual(left, [], "no part file is left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Folder download - a file that cannot be written fails the download with one clear IO error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-folder-write-" });
  try {
    const { files, contents } = smallFiles(20, 3000);
    // f7.bin's folder is gone (say, removed while the fetch ran).
    const place = (relative: string) =>
      relative === "f7.bin" ? join(dir, "gone", relative) : join(dir, relative);
    await assert.rejects(download(dir, files, contents, place), (error) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, "IO");
      assert.match(error.message, /f7\.bin\.shoal-part/);
      return true;
    });
    // What was placed is whole; nothing is under a final name unless whole.
    for (const [i, content] of contents.entries()) {
      const there = await Deno.readFile(join(dir, `f${i}.bin`)).catch(() => null);
      if (there) assert.deepEqual(there, content);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const noTmpfs = await tmpfsUnavailable();
if (noTmpfs) console.log(`skipped the full-disk test in ${import.meta.filename}: ${noTmpfs}`);

Deno.test({
  name:
    "Folder download - a disk that fills up fails the download with 'disk full', the files placed kept whole",
  ignore: noTmpfs !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "shoal-folder-write-" });
    const small = join(dir, "small-disk");
    const mounted = await mountTmpfs(small, "256k");
    assert.ok(mounted, "mounting the test tmpfs");
    try {
      const { files, contents } = smallFiles(40, 16384);
      await assert.rejects(download(small, files, contents), (error) => {
        assert.ok(error instanceof ShoalError);
        assert.equal(error.code, "IO");
        assert.match(error.message, /disk full/);
        return true;
      });
      let placed = 0;
      for (const [i, content] of contents.entries()) {
        const there = await Deno.readFile(join(small, `f${i}.bin`)).catch(() => null);
        if (!there) continue;
        assert.deepEqual(there, content);
        placed++;
      }
      assert.ok(
        placed > 0 && placed < files.length,
        `${placed} files placed before the disk filled`,
      );
    } finally {
      await mounted[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
