/**
 * `downloads` and `cancel` in process: the unfinished downloads a home
 * records, checked on disk, and cancelled by name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import { cancelByName, unfinishedDownloads } from "../../lib/peer/downloads.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { manifestOf } from "../helpers/catalog.ts";
import { tempDir } from "../helpers/processes.ts";

/** A logged-in home in `dir` with one download of "notes": 4 pieces of 16 bytes, 3 verified. */
function homeWithPartial(dir: string, partPath: string) {
  const home = PeerHome.open(join(dir, "home"));
  home.saveSession({ username: "alice", token: "t".repeat(32) });
  const { manifest, contentId } = manifestOf(new Uint8Array(4 * 16).fill(7), 16);
  const have = new Bitfield(4);
  for (const index of [0, 1, 3]) have.set(index);
  const now = new Date().toISOString();
  home.saveDownload({
    contentId,
    name: "notes",
    type: "pdf",
    partPath,
    manifest,
    have: have.bytes,
    startedAt: now,
    updatedAt: now,
  });
  return { home, contentId };
}

function hasCode(code: string) {
  return (error: unknown) => error instanceof ShoalError && error.code === code;
}

Deno.test("unfinishedDownloads - says what each download verified, where its partial file is, and if it is there", async () => {
  await using dir = await tempDir();
  const partPath = join(dir.path, "notes.pdf.shoal-part");
  const { home, contentId } = homeWithPartial(dir.path, partPath);
  using _ = home;
  await Deno.writeTextFile(partPath, "pieces so far");

  const [row, ...rest] = await unfinishedDownloads(home, ["notes"]);

  assert.deepEqual(rest, []);
  assert.deepEqual(
    { ...row, startedAt: undefined, updatedAt: undefined },
    {
      name: "notes",
      contentId,
      size: 64,
      verified: 48,
      partPath,
      onDisk: true,
      running: true,
      startedAt: undefined,
      updatedAt: undefined,
    },
  );
  await Deno.remove(partPath);
  assert.equal((await unfinishedDownloads(home))[0].onDisk, false);
  assert.equal((await unfinishedDownloads(home))[0].running, false);
});

Deno.test("cancelByName - forgets the download and deletes its partial file", async () => {
  await using dir = await tempDir();
  const partPath = join(dir.path, "notes.pdf.shoal-part");
  const { home } = homeWithPartial(dir.path, partPath);
  using _ = home;
  await Deno.writeTextFile(partPath, "pieces so far");

  assert.deepEqual(await cancelByName(home, "notes"), [
    { name: "notes", partPath, file: "deleted" },
  ]);
  assert.deepEqual(home.downloads(), []);
  await assert.rejects(Deno.stat(partPath), Deno.errors.NotFound);
  await assert.rejects(cancelByName(home, "notes"), hasCode("NOT_FOUND"));
});

Deno.test("unfinishedDownloads and cancelByName - need a login", async () => {
  await using dir = await tempDir();
  const { home } = homeWithPartial(dir.path, join(dir.path, "notes.pdf.shoal-part"));
  using _ = home;
  home.clearSession();
  await assert.rejects(unfinishedDownloads(home), hasCode("AUTH_REQUIRED"));
  await assert.rejects(cancelByName(home, "notes"), hasCode("AUTH_REQUIRED"));
});
