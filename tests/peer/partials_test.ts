/**
 * Partial files are recorded by absolute path, so a fetch, `downloads` and
 * `cancel` typed in any folder mean the real file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { adoptPartial, cancelDownload, partialExists } from "../../lib/peer/partials.ts";
import { homeWithPartial } from "../helpers/downloads.ts";
import { tempDir } from "../helpers/processes.ts";

async function folders(root: string, ...names: string[]): Promise<string[]> {
  return await Promise.all(names.map(async (name) => {
    await Deno.mkdir(join(root, name));
    return join(root, name);
  }));
}

Deno.test("partials - a part path given relative is recorded absolute", async () => {
  await using dir = await tempDir();
  const { home, contentId } = homeWithPartial(dir.path, "notes.pdf.shoal-part");
  using _ = home;
  assert.equal(home.download(contentId)?.partPath, join(Deno.cwd(), "notes.pdf.shoal-part"));
});

Deno.test("partials - a fetch from another folder moves the partial file there and says how much it holds", async () => {
  await using dir = await tempDir();
  const [a, b] = await folders(dir.path, "a", "b");
  const { home, contentId } = homeWithPartial(dir.path, join(a, "notes.pdf.shoal-part"));
  using _ = home;
  await Deno.writeTextFile(join(a, "notes.pdf.shoal-part"), "pieces so far");

  const adopted = await adoptPartial(home, contentId, join(b, "notes.pdf.shoal-part"));

  assert.deepEqual(adopted, {
    kind: "moved",
    from: join(a, "notes.pdf.shoal-part"),
    to: join(b, "notes.pdf.shoal-part"),
    pieces: 3,
    total: 4,
  });
  assert.equal(await Deno.readTextFile(join(b, "notes.pdf.shoal-part")), "pieces so far");
  await assert.rejects(Deno.stat(join(a, "notes.pdf.shoal-part")), Deno.errors.NotFound);
  assert.equal(home.download(contentId)?.partPath, join(b, "notes.pdf.shoal-part"));
  assert.equal(await adoptPartial(home, contentId, join(b, "notes.pdf.shoal-part")), null);
});

Deno.test("partials - a partial file that vanished is reported, and the fetch starts over", async () => {
  await using dir = await tempDir();
  const [a, b] = await folders(dir.path, "a", "b");
  const { home, contentId } = homeWithPartial(dir.path, join(a, "notes.pdf.shoal-part"));
  using _ = home;
  assert.equal(await partialExists(home.download(contentId)!), false);
  assert.deepEqual(await adoptPartial(home, contentId, join(b, "notes.pdf.shoal-part")), {
    kind: "vanished",
    from: join(a, "notes.pdf.shoal-part"),
  });
  assert.equal(home.download(contentId)?.partPath, join(b, "notes.pdf.shoal-part"));
});

Deno.test("partials - a file in the way is not overwritten: the error says where the partial is", async () => {
  await using dir = await tempDir();
  const [a, b] = await folders(dir.path, "a", "b");
  const { home, contentId } = homeWithPartial(dir.path, join(a, "notes.pdf.shoal-part"));
  using _ = home;
  await Deno.writeTextFile(join(a, "notes.pdf.shoal-part"), "pieces so far");
  await Deno.writeTextFile(join(b, "notes.pdf.shoal-part"), "someone else's");

  await assert.rejects(
    adoptPartial(home, contentId, join(b, "notes.pdf.shoal-part")),
    (error: ShoalError) => {
      assert.equal(error.code, "IO");
      assert.match(error.message, /\(3 of 4 pieces\) is in .*\/a\/notes\.pdf\.shoal-part/);
      assert.match(error.hint ?? "", /--output .*\/a\b/);
      return true;
    },
  );
  assert.equal(await Deno.readTextFile(join(b, "notes.pdf.shoal-part")), "someone else's");
  assert.equal(home.download(contentId)?.partPath, join(a, "notes.pdf.shoal-part"));
});

Deno.test("partials - cancel deletes the recorded file, not one of the same name where it runs", async () => {
  await using dir = await tempDir();
  const [a, b] = await folders(dir.path, "a", "b");
  const { home, contentId } = homeWithPartial(dir.path, join(a, "notes.pdf.shoal-part"));
  using _ = home;
  await Deno.writeTextFile(join(a, "notes.pdf.shoal-part"), "pieces so far");
  await Deno.writeTextFile(join(b, "notes.pdf.shoal-part"), "someone else's");
  // Whatever folder `cancel` runs in (a process-wide chdir would disturb parallel tests).
  assert.deepEqual(await cancelDownload(home, contentId), {
    name: "notes",
    partPath: join(a, "notes.pdf.shoal-part"),
    file: "deleted",
  });
  await assert.rejects(Deno.stat(join(a, "notes.pdf.shoal-part")), Deno.errors.NotFound);
  assert.equal(await Deno.readTextFile(join(b, "notes.pdf.shoal-part")), "someone else's");
  assert.equal(home.download(contentId), null);
});

Deno.test("partials - cancelling a download whose partial file is gone forgets it and says so", async () => {
  await using dir = await tempDir();
  const { home, contentId } = homeWithPartial(dir.path, join(dir.path, "notes.pdf.shoal-part"));
  using _ = home;
  assert.equal((await cancelDownload(home, contentId)).file, "missing");
  assert.equal(home.download(contentId), null);
});
