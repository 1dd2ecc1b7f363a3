/**
 * What a newcomer hits in the first hour, end to end: a FIFO to publish, a
 * name fetched in another case than published, a missing --output folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  sha256File,
  tempDir,
  trackerWithAliceAndBob,
  writeRandomFile,
} from "../helpers/processes.ts";

Deno.test("newcomer - FIFO refused, case-insensitive fetch, missing --output folder", async (t) => {
  await using dir = await tempDir();
  await using network = await trackerWithAliceAndBob(dir.path);
  const { alice, bob } = network;
  const source = join(dir.path, "Week3-Notes.pdf");
  await writeRandomFile(source, 100_000);
  await alice.ok(["publish", source]);
  const serving = await alice.serve();
  try {
    await t.step("publishing a FIFO is refused at once, in one line", async () => {
      const fifo = join(dir.path, "pipe");
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.ok(made.success, "mkfifo");
      // Opening a FIFO would wait for a writer forever: the refusal must come before.
      const child = alice.spawn(["publish", fifo]);
      const timer = setTimeout(() => child.kill(), 30_000);
      const output = await child.output();
      clearTimeout(timer);
      const stderr = new TextDecoder().decode(output.stderr);
      assert.notEqual(output.signal, "SIGTERM", "publish of a FIFO hung (killed after 30 s)");
      assert.equal(output.code, 1);
      assert.equal(stderr.trim(), `error: not a regular file: ${fifo} is a named pipe (FIFO)`);
    });

    await t.step("fetch finds a name in any case, as search does", async () => {
      const found = await bob.ok(["search", "week3-notes"]);
      assert.match(found, /Week3-Notes\.pdf/);
      const out = join(dir.path, "got.pdf");
      await bob.ok(["fetch", "week3-notes.PDF", "--output", out]);
      assert.equal(await sha256File(out), await sha256File(source));
    });

    await t.step("--output into a missing folder is one line with a hint", async () => {
      const missing = join(dir.path, "nowhere") + "/";
      const result = await bob.run(["fetch", "Week3-Notes.pdf", "--output", missing]);
      assert.equal(result.code, 1);
      assert.deepEqual(result.stderr.trim().split("\n"), [
        `error: cannot save to ${missing}: no such folder`,
        `hint: create it first (mkdir -p ${missing}), or give --output a file name`,
      ]);
    });
  } finally {
    await serving.stop();
  }
});
