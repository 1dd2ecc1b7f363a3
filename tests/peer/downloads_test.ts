/**
 * `downloads` and `cancel` in process: the unfinished downloads a home
 * records, checked on disk, and cancelled by name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cancelByName, unfinishedDownloads } from "../../lib/peer/downloads.ts";
import { FetchLock } from "../../lib/peer/fetch_lock.ts";
import { homeWithFolderDownload, homeWithPartial } from "../helpers/downloads.ts";
import { shoalError } from "../helpers/errors.ts";
import { tempDir } from "../helpers/processes.ts";

Deno.test("unfinishedDownloads - says what each download verified, where its partial file is, and if it is there", async () => {
  await using dir = await tempDir();
  const partPath = join(dir.path, "notes.pdf.shoal-part");
  const { home, contentId } = homeWithPartial(dir.path, partPath, { loggedIn: true });
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
      folder: false,
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
  const { home } = homeWithPartial(dir.path, partPath, { loggedIn: true });
  using _ = home;
  await Deno.writeTextFile(partPath, "pieces so far");

  assert.deepEqual(await cancelByName(home, "notes"), [
    { name: "notes", partPath, file: "deleted" },
  ]);
  assert.deepEqual(home.downloads(), []);
  await assert.rejects(Deno.stat(partPath), Deno.errors.NotFound);
  await assert.rejects(cancelByName(home, "notes"), shoalError("NOT_FOUND"));
});

Deno.test("unfinishedDownloads and cancelByName - need a login", async () => {
  await using dir = await tempDir();
  const { home } = homeWithPartial(dir.path, join(dir.path, "notes.pdf.shoal-part"), {
    loggedIn: true,
  });
  using _ = home;
  home.clearSession();
  await assert.rejects(unfinishedDownloads(home), shoalError("AUTH_REQUIRED"));
  await assert.rejects(cancelByName(home, "notes"), shoalError("AUTH_REQUIRED"));
});

Deno.test("cancelByName - a fresh folder fetch's staging folder, which it made, is deleted whole", async () => {
  await using dir = await tempDir();
  const output = join(dir.path, "course");
  using home = homeWithFolderDownload(dir.path, output, true);
  await Deno.mkdir(join(`${output}.shoal-part`, "sub"), { recursive: true });
  await Deno.writeTextFile(join(`${output}.shoal-part`, "sub", "a.txt"), "fetched");

  assert.equal((await unfinishedDownloads(home))[0].partPath, `${output}.shoal-part`);
  assert.deepEqual(await cancelByName(home, "course"), [
    { name: "course", partPath: `${output}.shoal-part`, file: "deleted", folder: "staged" },
  ]);
  await assert.rejects(Deno.lstat(`${output}.shoal-part`), Deno.errors.NotFound);
  assert.deepEqual(home.folderDownloads(), []);
});

Deno.test("cancelByName - a folder fetch that wrote into its output, gone since, never deletes a folder named as a staging folder beside it", async () => {
  await using dir = await tempDir();
  const output = join(dir.path, "course");
  // Fetched into an existing folder (--force, or a resume), which the user then moved away.
  using home = homeWithFolderDownload(dir.path, output, false);
  const beside = `${output}.shoal-part`;
  await Deno.mkdir(beside);
  await Deno.writeTextFile(join(beside, "precious.txt"), "not the fetch's");

  assert.equal((await unfinishedDownloads(home))[0].partPath, output);
  const [cancelled] = await cancelByName(home, "course");
  assert.equal(cancelled.file, "missing");
  assert.equal(cancelled.partPath, output);
  assert.equal(await Deno.readTextFile(join(beside, "precious.txt")), "not the fetch's");
  assert.deepEqual(home.folderDownloads(), []);
});

Deno.test("cancelByName - deletes while it holds the fetch lock, so a fetch starting meanwhile is refused, not written into what is deleted", async () => {
  await using dir = await tempDir();
  const partPath = join(dir.path, "notes.pdf.shoal-part");
  const { home, contentId } = homeWithPartial(dir.path, partPath, { loggedIn: true });
  using _ = home;
  await Deno.writeTextFile(partPath, "pieces so far");
  const output = join(dir.path, "course");
  using folderHome = homeWithFolderDownload(join(dir.path, "second"), output, true);
  await Deno.mkdir(`${output}.shoal-part`, { recursive: true });
  const folderId = folderHome.folderDownloads()[0].contentId;

  // What a fetch starting at the moment of each deletion would meet.
  const heldWhileDeleting: boolean[] = [];
  const remove = Deno.remove;
  Deno.remove = (path, options) => {
    heldWhileDeleting.push(
      FetchLock.isHeld(home, contentId) || FetchLock.isHeld(folderHome, folderId),
    );
    return remove(path, options);
  };
  try {
    await cancelByName(home, "notes");
    await cancelByName(folderHome, "course");
  } finally {
    Deno.remove = remove;
  }
  assert.ok(heldWhileDeleting.length >= 2);
  assert.deepEqual(heldWhileDeleting.filter((held) => !held), []);
  // And let go after.
  assert.equal(FetchLock.isHeld(home, contentId), false);
  assert.equal(FetchLock.isHeld(folderHome, folderId), false);
  FetchLock.acquire(home, contentId, "notes").release();
});

Deno.test("cancelByName - a fetch running now is waited for, then refused with BUSY; nothing is deleted", async () => {
  await using dir = await tempDir();
  const partPath = join(dir.path, "notes.pdf.shoal-part");
  const { home, contentId } = homeWithPartial(dir.path, partPath, { loggedIn: true });
  using _ = home;
  await Deno.writeTextFile(partPath, "pieces so far");
  {
    using _running = FetchLock.acquire(home, contentId, "notes");
    await assert.rejects(cancelByName(home, "notes", { patienceMs: 100 }), shoalError("BUSY"));
    assert.equal(home.downloads().length, 1);
    assert.equal(await Deno.readTextFile(partPath), "pieces so far");
  }
  assert.equal((await cancelByName(home, "notes"))[0].file, "deleted");
});
