/**
 * The smoke test of the real programs: a tracker, a serving peer and a
 * fetching peer, each its own process. What each command does is checked in
 * process (tests/cli/lifecycle_test.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  sha256File,
  tempDir,
  trackerWithAliceAndBob,
  writeRandomFile,
} from "../helpers/processes.ts";

Deno.test("a file travels from one peer process to another, into the folder fetch runs in", async () => {
  await using dir = await tempDir();
  await using network = await trackerWithAliceAndBob(dir.path);
  const { alice, bob } = network;
  const source = join(dir.path, "report.pdf");
  await writeRandomFile(source, 3_000_000 + 17);
  const downloads = join(dir.path, "downloads");
  await Deno.mkdir(downloads);
  // publish <name> <path>: the name has no extension, so the fetch adds the type's.
  assert.match(await alice.ok(["publish", "plan", source]), /published "plan"/);
  const serving = await alice.serve();
  try {
    const fetched = await bob.ok(["fetch", "plan"], { cwd: downloads });
    assert.match(fetched, /fetched "plan"/);
    assert.equal(await sha256File(join(downloads, "plan.pdf")), await sha256File(source));
  } finally {
    await serving.stop();
  }
});
