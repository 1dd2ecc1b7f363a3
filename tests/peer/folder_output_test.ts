/**
 * Where a folder fetch writes (checkFolderOutput): a fresh fetch builds
 * OUTPUT.shoal-part; a fetch resumes only where it wrote, never in an output
 * that appeared since, nor in a staging-named folder beside an output it
 * wrote into and that is gone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkFolderOutput, makeFolderOutput } from "../../lib/peer/folder_fetch.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { FOLDER_CONTENT_ID, homeWithFolderDownload } from "../helpers/downloads.ts";
import { shoalError } from "../helpers/errors.ts";
import { tempDir } from "../helpers/processes.ts";

Deno.test("checkFolderOutput - a fresh fetch goes to OUTPUT.shoal-part, a resumed one back into it", async () => {
  await using dir = await tempDir();
  const output = join(dir.path, "course");
  using fresh = PeerHome.open(join(dir.path, "fresh"));
  assert.deepEqual(await checkFolderOutput(fresh, FOLDER_CONTENT_ID, output), {
    existing: null,
    resuming: false,
    into: `${output}.shoal-part`,
  });
  using home = homeWithFolderDownload(dir.path, output, true);
  await Deno.mkdir(`${output}.shoal-part`);
  const resumed = await checkFolderOutput(home, FOLDER_CONTENT_ID, output);
  assert.equal(resumed.resuming, true);
  assert.equal(resumed.into, `${output}.shoal-part`);
});

Deno.test("checkFolderOutput - an output that appeared beside the staging folder of an unfinished fetch is refused, even with --force, saying what to do", async () => {
  await using dir = await tempDir();
  const output = join(dir.path, "course");
  using home = homeWithFolderDownload(dir.path, output, true);
  await Deno.mkdir(`${output}.shoal-part`);
  await Deno.mkdir(output);
  for (const overwrite of [false, true]) {
    await assert.rejects(
      checkFolderOutput(home, FOLDER_CONTENT_ID, output, overwrite),
      (error: Error & { code?: string; hint?: string }) => {
        assert.equal(error.code, "IO");
        assert.match(
          error.message,
          /course appeared while "course" was fetched into .*course\.shoal-part/,
        );
        assert.match(error.hint ?? "", /move .*course away and run the same fetch again/);
        assert.match(error.hint ?? "", /cancel course/);
        return true;
      },
    );
  }
});

Deno.test("checkFolderOutput - a staged fetch killed after its rename (its staging folder gone) resumes in the output", async () => {
  await using dir = await tempDir();
  const output = join(dir.path, "course");
  using home = homeWithFolderDownload(dir.path, output, true);
  await Deno.mkdir(output);
  const { resuming, into } = await checkFolderOutput(home, FOLDER_CONTENT_ID, output);
  assert.equal(resuming, true);
  assert.equal(into, output);
});

Deno.test("checkFolderOutput - a fetch into its output, which is gone, does not resume in a staging-named folder there", async () => {
  await using dir = await tempDir();
  const output = join(dir.path, "course");
  using home = homeWithFolderDownload(dir.path, output, false);
  await Deno.mkdir(`${output}.shoal-part`);
  await assert.rejects(
    checkFolderOutput(home, FOLDER_CONTENT_ID, output),
    shoalError("IO", /course\.shoal-part already exists; .*--force/),
  );
  const forced = await checkFolderOutput(home, FOLDER_CONTENT_ID, output, true);
  assert.equal(forced.resuming, false, "its files are not taken as fetched");
  assert.equal(forced.into, `${output}.shoal-part`);
});

Deno.test("makeFolderOutput - a folder to make is made here: a link planted there since the check fails it, and is not followed", async () => {
  await using dir = await tempDir();
  const elsewhere = join(dir.path, "elsewhere");
  await Deno.mkdir(elsewhere);
  const staging = join(dir.path, "course.shoal-part");
  await Deno.symlink(elsewhere, staging);
  await assert.rejects(makeFolderOutput(staging, false), shoalError("IO", /appeared/));
  // And one that was a folder when checked, a link now.
  await assert.rejects(makeFolderOutput(staging, true), shoalError("IO", /no longer a folder/));
  assert.deepEqual([...Deno.readDirSync(elsewhere)], []);
  await Deno.remove(staging);
  await makeFolderOutput(join(dir.path, "new", "course.shoal-part"), false);
  assert.ok((await Deno.lstat(join(dir.path, "new", "course.shoal-part"))).isDirectory);
});

Deno.test("checkFolderOutput - an output that is a symbolic link (to a folder or nowhere) is refused as a link, not as 'not a folder'", async () => {
  await using dir = await tempDir();
  using home = PeerHome.open(join(dir.path, "home"));
  await Deno.mkdir(join(dir.path, "real"));
  await Deno.symlink(join(dir.path, "real"), join(dir.path, "to-folder"));
  await Deno.symlink(join(dir.path, "nowhere"), join(dir.path, "dangling"));
  for (const name of ["to-folder", "dangling"]) {
    await assert.rejects(
      checkFolderOutput(home, FOLDER_CONTENT_ID, join(dir.path, name), true),
      shoalError(
        "IO",
        new RegExp(
          `/${name} is a symbolic link, and a fetch writes through none; ` +
            "fetch to another place with --output PATH$",
        ),
      ),
    );
  }
});

Deno.test("makeFolderOutput - a file where a folder above the output should be is named as such, not as something that appeared", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "afile"), "x\n");
  await assert.rejects(
    makeFolderOutput(join(dir.path, "afile", "sub", "out.shoal-part"), false),
    shoalError(
      "IO",
      /^cannot make .*afile\/sub: a part of that path is a file, not a folder; fetch to another place with --output PATH$/,
    ),
  );
});
