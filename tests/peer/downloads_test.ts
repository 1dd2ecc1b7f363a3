/**
 * `downloads` and `cancel` in process: the unfinished downloads a home
 * records, checked on disk, and cancelled by name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cancelByName, unfinishedDownloads } from "../../lib/peer/downloads.ts";
import { homeWithPartial } from "../helpers/downloads.ts";
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
