/**
 * `peer.ts fetch` as a newcomer meets it: stopped with Ctrl-C and typed
 * again in another folder, its partial file listed and cancelled from
 * anywhere, and a tracker that dies before the download ends. The fetcher is
 * a real subprocess (signals, exit codes, what it prints, the folder it runs
 * in); bob's other commands, where the folder does not matter, run the peer's
 * program in this process (`bobCli`); the tracker and the source run in the test, the source holding its pieces back until the
 * test lets them go, so "mid-download" is a state, not a moment.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { delay } from "../../lib/async/delay.ts";
import { CliPeer } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { heldSource, localPeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, TestPeer, writeRandomFile } from "../helpers/processes.ts";

const MIB = 1024 * 1024;

/** A tracker, alice sharing `notes` (4 MiB, 16 pieces) but holding all but two pieces back, and bob. */
async function world(dir: string) {
  const tracker = await startLocalTracker(dir);
  const original = join(dir, "original.bin");
  await writeRandomFile(original, 4 * MIB);
  const alice = await localPeer(dir, "alice", tracker.address);
  const source = await heldSource(alice, original, "notes", 2);
  const bob = new TestPeer(join(dir, "bob"), tracker.address);
  const bobCli = new CliPeer(bob.home, tracker.address);
  await bobCli.signUp("bob");
  const folder = async (name: string) => {
    await Deno.mkdir(join(dir, name));
    return join(dir, name);
  };
  return {
    tracker,
    source,
    original,
    bob,
    bobCli,
    folder,
    async [Symbol.asyncDispose]() {
      await source[Symbol.asyncDispose]();
      alice[Symbol.dispose]();
      await tracker.stop();
    },
  };
}

/** Waits until some piece has been verified and written into `partPath`. */
async function untilAPieceIsIn(partPath: string, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  await eventually(
    async () => {
      const size = await Deno.stat(partPath).then((info) => info.size, () => 0);
      if (size > 0) return true;
      if (exited) throw new Error("the fetch ended before any piece arrived");
      return false;
    },
    `a piece written into ${partPath}`,
    { tries: 600, everyMs: 50 },
  );
}

/**
 * Sends `signal` again and again until the child exits: every moment of its
 * way out (its listeners gone, its message half-built) meets a copy, as one
 * Ctrl-C under `deno task` arrives twice.
 */
async function keepSending(child: Deno.ChildProcess, signal: Deno.Signal) {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 2000 && !exited; i++) {
    try {
      child.kill(signal);
    } catch {
      return; // it has exited
    }
    await delay(2);
  }
}

/** Starts `fetch notes` in `cwd`, stops it with `signal` once a piece is kept, and returns what it said. */
async function fetchThenInterrupt(
  bob: TestPeer,
  cwd: string,
  signal: Deno.Signal = "SIGINT",
  { repeated = false } = {},
) {
  const child = bob.spawn(["fetch", "notes"], { cwd });
  await untilAPieceIsIn(join(cwd, "notes.bin.shoal-part"), child);
  child.kill(signal);
  if (repeated) await keepSending(child, signal);
  const result = await deadline(child.output(), 30_000, { what: "the interrupted fetch" });
  const stderr = new TextDecoder().decode(result.stderr);
  const kept = /interrupted: (\d+) of (\d+) pieces kept in (\S+); run `([^`]+)` to resume/.exec(
    stderr,
  );
  assert.ok(kept, stderr);
  return { code: result.code, stderr, pieces: Number(kept[1]), total: Number(kept[2]), kept };
}

Deno.test("fetch - interrupted in one folder, typed again in another: it resumes there from the kept pieces", async () => {
  await using dir = await tempDir();
  await using w = await world(dir.path);
  const [a, b] = [await w.folder("a"), await w.folder("b")];

  const stopped = await fetchThenInterrupt(w.bob, a);
  assert.equal(stopped.code, 130);
  assert.ok(stopped.pieces > 0 && stopped.pieces < stopped.total, stopped.stderr);
  assert.equal(stopped.kept[3], join(a, "notes.bin.shoal-part"));
  assert.match(stopped.kept[4], /^deno run -A \S*peer\.ts .*fetch notes$/);

  // `downloads`, from another folder (this process's), names the real file by its absolute path.
  const listed = JSON.parse(await w.bobCli.ok(["downloads", "--json"]));
  assert.equal(listed.length, 1);
  assert.equal(listed[0].partPath, join(a, "notes.bin.shoal-part"));
  assert.equal(listed[0].onDisk, true);
  assert.match(await w.bobCli.ok(["downloads"]), /\/a\/notes\.bin\.shoal-part/);

  w.source.release();
  const resumed = await w.bob.run(["fetch", "notes", "--json"], { cwd: b });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(
    resumed.stderr,
    new RegExp(
      `resuming "notes" from ${RegExp.escape(join(a, "notes.bin.shoal-part"))} \\(\\d+ of`,
    ),
  );
  const summary = JSON.parse(resumed.stdout);
  assert.ok(summary.resumed > 0, resumed.stdout);
  assert.equal(summary.path, join(b, "notes.bin"));
  assert.equal(await sha256File(join(b, "notes.bin")), await sha256File(w.original));
  await assert.rejects(Deno.stat(join(a, "notes.bin.shoal-part")), Deno.errors.NotFound);
  assert.match(await w.bobCli.ok(["downloads"]), /no unfinished downloads/);
});

Deno.test("fetch - one Ctrl-C delivered more than once, as `deno task` does (the terminal's and the task's copy): it still says what it kept", async () => {
  await using dir = await tempDir();
  await using w = await world(dir.path);
  const stopped = await fetchThenInterrupt(w.bob, await w.folder("a"), "SIGINT", {
    repeated: true,
  });
  assert.equal(stopped.code, 130);
  assert.ok(stopped.pieces > 0, stopped.stderr);
  assert.match(stopped.stderr, /cancel notes` deletes them/);
});

Deno.test("fetch - stopped by SIGTERM, then cancelled from another folder (the name in another case): cancel deletes the real partial file, not a namesake there", async () => {
  await using dir = await tempDir();
  await using w = await world(dir.path);
  const [a, b] = [await w.folder("a"), await w.folder("b")];
  // SIGTERM (a service manager, `kill`) stops a fetch as Ctrl-C does.
  const stopped = await fetchThenInterrupt(w.bob, a, "SIGTERM");
  assert.equal(stopped.code, 130);
  assert.ok(stopped.pieces > 0, stopped.stderr);
  await Deno.writeTextFile(join(b, "notes.bin.shoal-part"), "not shoal's");

  const cancelled = await w.bob.ok(["cancel", "NOTES"], { cwd: b });

  assert.match(
    cancelled,
    /^cancelled "notes" and deleted its partial file .*\/a\/notes\.bin\.shoal-part/,
  );
  await assert.rejects(Deno.stat(join(a, "notes.bin.shoal-part")), Deno.errors.NotFound);
  assert.equal(await Deno.readTextFile(join(b, "notes.bin.shoal-part")), "not shoal's");
  assert.match(await w.bobCli.ok(["downloads"]), /no unfinished downloads/);
});

Deno.test("fetch - downloads notices a partial file that vanished from disk", async () => {
  await using dir = await tempDir();
  await using w = await world(dir.path);
  const a = await w.folder("a");
  await fetchThenInterrupt(w.bob, a);
  await Deno.remove(join(a, "notes.bin.shoal-part"));

  const listed = await w.bobCli.ok(["downloads"]);

  assert.match(listed, /notes\.bin\.shoal-part \(missing\)/);
  assert.match(
    listed,
    /the partial file of "notes" is gone: `deno run -A \S*peer\.ts .*cancel notes` forgets it/,
  );
  assert.equal(JSON.parse(await w.bobCli.ok(["downloads", "--json"]))[0].onDisk, false);
});

Deno.test("fetch - the tracker dying mid-download: exit 0, the file is whole, and it is published once the tracker is back", async () => {
  await using dir = await tempDir();
  await using w = await world(dir.path);
  const folder = await w.folder("downloads");
  const child = w.bob.spawn(["fetch", "notes"], { cwd: folder });
  await untilAPieceIsIn(join(folder, "notes.bin.shoal-part"), child);
  await w.tracker.stop();
  w.source.release();
  const result = await deadline(child.output(), 60_000, { what: "the fetch" });
  const [stdout, stderr] = [result.stdout, result.stderr].map((b) => new TextDecoder().decode(b));

  assert.equal(result.code, 0, stderr);
  assert.equal(await sha256File(join(folder, "notes.bin")), await sha256File(w.original));
  assert.match(
    stdout,
    new RegExp(
      `^fetched "notes" to notes\\.bin: .*; the tracker at ${
        RegExp.escape(w.tracker.address)
      } is unreachable, so it will be published there when \`deno run -A \\S*peer\\.ts .*serve\``,
      "m",
    ),
  );
  assert.match(await w.bobCli.ok(["view"]), /notes/);

  // The tracker comes back on its address; bob's next command publishes the share.
  const back = await startLocalTracker(dir.path, w.tracker.port);
  try {
    const search = await w.bobCli.run(["search", "notes"]);
    assert.equal(search.code, 0, search.stderr);
    assert.match(search.stderr, /published "notes" at the tracker/);
    assert.match(search.stdout, /│ bob /);
  } finally {
    await back.stop();
  }
});

Deno.test("fetch - a file being fetched in another terminal: downloads marks it running, and cancel refuses to delete its partial file under it", async () => {
  await using dir = await tempDir();
  await using w = await world(dir.path);
  const a = await w.folder("a");
  const child = w.bob.spawn(["fetch", "notes"], { cwd: a });
  const part = join(a, "notes.bin.shoal-part");
  await untilAPieceIsIn(part, child);

  assert.equal(JSON.parse(await w.bobCli.ok(["downloads", "--json"]))[0].running, true);
  const refused = await w.bobCli.run(["cancel", "notes"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error: "notes" is being fetched right now \(pid \d+\)/m);
  assert.ok((await Deno.stat(part)).isFile, "nothing deleted under the running fetch");

  child.kill("SIGINT");
  await deadline(child.output(), 30_000, { what: "the interrupted fetch" });
  assert.match(await w.bobCli.ok(["cancel", "notes"]), /^cancelled "notes"/);
});
