/**
 * A folder fetch killed with SIGKILL in the middle resumes: the folder is
 * built in its staging folder (`OUTPUT.shoal-part`), nothing is at the
 * output until it is whole, the files written so far are whole (but the one
 * being written), `downloads` lists the folder, and the same fetch
 * finishes it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliPeer, signedUpCliPeers } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, TestPeer, writeRandomFile } from "../helpers/processes.ts";
import { diffTree, fetchCaughtMidway } from "../helpers/folders.ts";

const FILES = 60;

/** The files directly under `folder`/sub, by name, without the partial ones. */
function finished(folder: string): string[] {
  try {
    return [...Deno.readDirSync(join(folder, "sub"))].map((e) => e.name)
      .filter((name) => !name.endsWith(".shoal-part"));
  } catch {
    return [];
  }
}

/**
 * The files of `folder`'s `sub` written whole: a staging folder's small files
 * are written straight under their names, so the one being written as the
 * fetch was killed is there too, cut short (and fetched again on resume).
 */
function whole(folder: string): string[] {
  return finished(folder).filter((name) =>
    Deno.statSync(join(folder, "sub", name)).size === 20_000
  );
}

/**
 * "data", FILES files of 20 KB in `sub`, published by `owner` and served
 * with `delayMs` before each piece; disposing it stops the serving.
 */
async function servedSlowly(dir: string, owner: CliPeer, tracker: string, delayMs: number) {
  const tree = join(dir, "data");
  await Deno.mkdir(join(tree, "sub"), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    await writeRandomFile(join(tree, "sub", `f${String(i).padStart(2, "0")}.bin`), 20_000);
  }
  await owner.ok(["publish", tree]);
  const serving = await new TestPeer(owner.home, tracker)
    .serve([], { SHOAL_TEST_PIECE_DELAY_MS: String(delayMs) });
  return {
    tree,
    [Symbol.asyncDispose]: async () => {
      await serving.stop();
    },
  };
}

/** `fetcher` fetching "data" to `output`, killed with SIGKILL once `files` of it are written. */
async function killedWhenWritten(fetcher: TestPeer, output: string, files: number) {
  const child = fetcher.spawn(["fetch", "data", "--output", output]);
  let exited = false;
  child.status.then(() => exited = true);
  await eventually(
    () => {
      if (exited) throw new Error("the fetch ended before it was killed");
      return finished(`${output}.shoal-part`).length >= files;
    },
    `${files} files written`,
    { tries: 3000 },
  );
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
}

Deno.test("a folder fetch killed with SIGKILL resumes where it stopped, and no file is half-written", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  // A slow source, so the fetch is in the middle for a while.
  await using served = await servedSlowly(dir.path, aliceCli, tracker.address, 150);
  const { tree } = served;
  const output = join(dir.path, "out");
  const staging = `${output}.shoal-part`;
  await killedWhenWritten(new TestPeer(bobCli.home, tracker.address), output, 5);

  await assert.rejects(Deno.lstat(output), "nothing at the output before the folder is whole");
  const landed = finished(staging);
  assert.ok(landed.length < FILES, "killed in the middle");
  // Whole, or (the one being written when it was killed) cut short: the size tells a resume.
  for (const name of landed) {
    const [a, b] = await Promise.all([
      Deno.readFile(join(staging, "sub", name)),
      Deno.readFile(join(tree, "sub", name)),
    ]);
    assert.deepEqual(a, b.subarray(0, a.length), `${name} holds its first bytes`);
  }
  const downloads = JSON.parse(await bobCli.ok(["downloads", "--json"]));
  assert.equal(downloads.length, 1);
  assert.equal(downloads[0].name, "data");
  assert.equal(downloads[0].folder, true);
  assert.equal(downloads[0].partPath, staging, "where its files are until it is whole");
  assert.equal(downloads[0].onDisk, true);

  const resumed = JSON.parse(await bobCli.ok(["fetch", "data", "--output", output, "--json"]));
  assert.ok(resumed.resumed > 0, "the files already written were kept");
  assert.equal(await diffTree(tree, output), "");
  await assert.rejects(Deno.lstat(staging), "the staging folder became the output");
  assert.deepEqual(JSON.parse(await bobCli.ok(["downloads", "--json"])), []);
});

Deno.test("cancel forgets an unfinished folder download and deletes its staging folder", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using fetching = await fetchCaughtMidway({
    dir: dir.path,
    tracker: tracker.address,
    owner: aliceCli,
    fetcher: bobCli,
    delayMs: 300,
    under: "sub",
  });
  const { child, staging } = fetching;
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  const said = await bobCli.ok(["cancel", "data"]);
  assert.match(said, /cancelled "data" and deleted its unfinished folder .*out\.shoal-part$/m);
  await assert.rejects(Deno.lstat(staging), "the staging folder is deleted");
  assert.deepEqual(JSON.parse(await bobCli.ok(["downloads", "--json"])), []);
});

Deno.test("an output made by someone else while a folder is fetched is neither replaced nor written into: the whole folder waits in its staging folder until it is moved away", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using served = await servedSlowly(dir.path, aliceCli, tracker.address, 100);
  const { tree } = served;
  const output = join(dir.path, "out");
  const staging = `${output}.shoal-part`;
  const fetching = bobCli.run(["fetch", "data", "--output", output]);
  await eventually(() => finished(staging).length > 0, "a file written", { tries: 3000 });
  // Someone else's folder, at the output's name.
  await Deno.mkdir(output);
  await Deno.writeTextFile(join(output, "mine.txt"), "someone else's\n");
  const stopped = await fetching;
  assert.notEqual(stopped.code, 0);
  assert.match(
    stopped.stderr,
    /out appeared while the folder was fetched, and is not replaced; the whole folder is in .*out\.shoal-part\n/,
  );
  assert.match(
    stopped.stderr,
    /hint: move .*out away and run `.*fetch data --output .*out` again/,
  );
  assert.deepEqual([...Deno.readDirSync(output)].map((e) => e.name), ["mine.txt"]);

  // Run again as it is: refused, not resumed into the other folder (nor its files taken as fetched).
  const again = await bobCli.run(["fetch", "data", "--output", output, "--force"]);
  assert.match(again.stderr, /out appeared while "data" was fetched into .*out\.shoal-part/);
  assert.deepEqual([...Deno.readDirSync(output)].map((e) => e.name), ["mine.txt"]);
  const [row] = JSON.parse(await bobCli.ok(["downloads", "--json"]));
  assert.equal(row.partPath, staging);

  await Deno.rename(output, join(dir.path, "mine"));
  const placed = await bobCli.ok(["fetch", "data", "--output", output]);
  assert.match(placed, /fetched the folder "data" .*resumed from before/);
  assert.equal(await diffTree(tree, output), "");
  await assert.rejects(Deno.lstat(staging), Deno.errors.NotFound);
});

Deno.test("a killed folder fetch finished with a narrower --only puts in place exactly what --only selects, and says what it removed", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using served = await servedSlowly(dir.path, aliceCli, tracker.address, 150);
  const { tree } = served;
  const output = join(dir.path, "out");
  const staging = `${output}.shoal-part`;
  await killedWhenWritten(new TestPeer(bobCli.home, tracker.address), output, 2);
  // What a kill in the middle of writing one leaves: the file under its name, cut short.
  const [cut] = finished(staging);
  const whole = await Deno.readFile(join(tree, "sub", cut));
  await Deno.writeFile(join(staging, "sub", cut), whole.subarray(0, 100));

  const last = `f${String(FILES - 1).padStart(2, "0")}.bin`;
  const done = await bobCli.ok(["fetch", "data", "--output", output, "--only", `sub/${last}`]);
  assert.match(
    done,
    /; removed \d+ files? \(\d[^)]*\) it had fetched and \d+ partial files? outside --only, left by an earlier, wider fetch of it/,
  );
  // Nothing but the selection: no file of the earlier run, whole, cut short or partial.
  assert.deepEqual([...Deno.readDirSync(join(output, "sub"))].map((e) => e.name), [last]);
  assert.deepEqual(
    await Deno.readFile(join(output, "sub", last)),
    await Deno.readFile(join(tree, "sub", last)),
  );
  await assert.rejects(Deno.lstat(staging), Deno.errors.NotFound);
  assert.deepEqual(JSON.parse(await bobCli.ok(["downloads", "--json"])), []);
});

Deno.test("the same folder fetched twice at once from one home: the second stops before writing anything, naming the first; the first finishes", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using served = await servedSlowly(dir.path, aliceCli, tracker.address, 50);
  const { tree } = served;
  const output = join(dir.path, "out");
  const first = new TestPeer(bobCli.home, tracker.address)
    .spawn(["fetch", "data", "--output", output]);
  await eventually(
    () => finished(`${output}.shoal-part`).length > 0,
    "the first fetch writing",
    { tries: 3000 },
  );
  const second = await bobCli.run(["fetch", "data", "--output", output]);
  assert.notEqual(second.code, 0);
  assert.match(
    second.stderr,
    /"data" is being fetched from this home already \(pid \d+\); wait for that fetch to end/,
  );
  assert.equal(second.stdout, "", "refused before the owners are listed");
  const [status] = await Promise.all([
    first.status,
    first.stdout.cancel(),
    first.stderr.cancel(),
  ]);
  assert.equal(status.code, 0);
  assert.equal(await diffTree(tree, output), "");
  // Once it ended, the same fetch may run again (it finds the folder there).
  const again = await bobCli.run(["fetch", "data", "--output", output]);
  assert.match(again.stderr, /out already exists/);
});

Deno.test("a killed folder fetch typed again with another --output moves its staging folder there and resumes, instead of leaving it on disk forgotten", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using served = await servedSlowly(dir.path, aliceCli, tracker.address, 150);
  const first = join(dir.path, "first");
  await killedWhenWritten(new TestPeer(bobCli.home, tracker.address), first, 5);

  // An output that is there already: refused, naming where the unfinished fetch is.
  const taken = join(dir.path, "taken");
  await Deno.mkdir(taken);
  const refused = await bobCli.run(["fetch", "data", "--output", taken, "--force"]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /an unfinished fetch of "data" is in \S*first\.shoal-part; it cannot be moved here, as \S*taken is there\nhint: fetch with --output \S*first to finish it there, or `.*cancel data` to delete it first/,
  );

  const second = join(dir.path, "second");
  const resumed = await bobCli.ok(["fetch", "data", "--output", second]);
  assert.match(resumed, /resumed from before \(moved here from \S*first\.shoal-part\)/);
  assert.equal(await diffTree(served.tree, second), "");
  await assert.rejects(Deno.lstat(`${first}.shoal-part`), "nothing left behind");
  assert.deepEqual(JSON.parse(await bobCli.ok(["downloads", "--json"])), []);
});

Deno.test("a killed folder fetch typed again with another --output and a narrower --only moves its staging folder there and puts in place only the selection", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using served = await servedSlowly(dir.path, aliceCli, tracker.address, 150);
  const first = join(dir.path, "first");
  await killedWhenWritten(new TestPeer(bobCli.home, tracker.address), first, 3);
  const kept = whole(`${first}.shoal-part`)[0];

  const second = join(dir.path, "second");
  const resumed = await bobCli.ok(["fetch", "data", "--output", second, "--only", `sub/${kept}`]);
  assert.match(resumed, /resumed from before \(moved here from \S*first\.shoal-part\)/);
  assert.match(resumed, /; removed \d+ files? \(\d[^)]*\) it had fetched.* outside --only/);
  assert.deepEqual([...Deno.readDirSync(join(second, "sub"))].map((e) => e.name), [kept]);
  assert.deepEqual(
    await Deno.readFile(join(second, "sub", kept)),
    await Deno.readFile(join(served.tree, "sub", kept)),
  );
  await assert.rejects(Deno.lstat(`${first}.shoal-part`), "nothing left behind");
  assert.deepEqual(JSON.parse(await bobCli.ok(["downloads", "--json"])), []);
});
