/**
 * The peer shell's background downloads: `pause` says in one line that a
 * download stopped and what it kept (no notice repeats it); the others end
 * with one notice each.
 */
import assert from "node:assert/strict";
import { BackgroundDownloads } from "../../lib/cli/background_downloads.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";

const KEPT = "interrupted: 2 of 5 files done, kept in /tmp/course.shoal-part; run `fetch course` " +
  "to resume";

/** A download that runs until its signal stops it, then says what it kept; or until `finish`. */
function stoppable(after: () => Promise<void> = () => Promise.resolve()) {
  let finish = () => {};
  const work = (signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      finish = () => resolve('fetched the folder "course"');
      signal.addEventListener("abort", () => {
        after().then(() => reject(new ShoalError("CANCELLED", KEPT)));
      }, { once: true });
    });
  return { work, finish: () => finish() };
}

/** Lets the notices of downloads that ended be said. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("BackgroundDownloads - pause says in one line that it stopped and what it kept; no notice repeats it", async () => {
  const notices: string[] = [];
  const downloads = new BackgroundDownloads((line) => notices.push(line));
  downloads.start("course", stoppable().work);
  assert.deepEqual(downloads.active(), ["course"]);

  assert.equal(
    await downloads.pause("COURSE"),
    'paused "course": 2 of 5 files done, kept in /tmp/course.shoal-part; run `fetch course` to resume',
  );
  await settled();
  assert.deepEqual(notices, []);
  assert.deepEqual(downloads.active(), []);
  assert.equal(await downloads.pause("course"), undefined, "nothing runs by that name now");
});

Deno.test("BackgroundDownloads - one that has not stopped in time is said to be pausing, and its notice comes when it stops", async () => {
  const notices: string[] = [];
  const downloads = new BackgroundDownloads((line) => notices.push(line));
  let letGo = () => {};
  const late = new Promise<void>((resolve) => letGo = resolve);
  downloads.start("course", stoppable(() => late).work);

  assert.equal(
    await downloads.pause("course", 10),
    'pausing "course": it says what it kept once it stops',
  );
  assert.deepEqual(notices, []);
  letGo();
  await settled();
  assert.deepEqual(notices, [`[paused] "course": ${KEPT}`]);
});

Deno.test("BackgroundDownloads - without a pause each ends with one notice: done, failed, or paused as the shell leaves", async () => {
  const notices: string[] = [];
  const downloads = new BackgroundDownloads((line) => notices.push(line));
  const done = stoppable();
  downloads.start("done", done.work);
  downloads.start("broken", () => Promise.reject(new ShoalError("IO", "disk full")));
  downloads.start("left", stoppable().work);
  done.finish();
  await settled();
  downloads.stopAll();
  await settled();
  assert.deepEqual(notices.sort(), [
    '[done] fetched the folder "course"',
    '[failed] "broken": disk full',
    `[paused] "left": ${KEPT}`,
  ]);
});
