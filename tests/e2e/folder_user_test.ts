/**
 * Folder fetches as a user meets them: a `--only` glob that takes nothing,
 * Ctrl-C in the middle (what is kept, the command that resumes, how far
 * `downloads` says it got), and a disk too small, each refused or stopped
 * with one line that says what to do, nothing written that should not be.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { signedUpCliPeers } from "../helpers/cli.ts";
import { fetchCaughtMidway } from "../helpers/folders.ts";
import { mountTmpfs } from "../helpers/tmpfs.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir, writeRandomFile } from "../helpers/processes.ts";
import { PeerHome } from "../../lib/peer/home.ts";

Deno.test("folder fetch: --only naming a glob that takes nothing, --from one owner, an output in the way, ls", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(join(tree, "slides"), { recursive: true });
  await writeRandomFile(join(tree, "slides", "a.pdf"), 1_000);
  await Deno.writeTextFile(join(tree, "readme.md"), "hi\n");
  await Deno.mkdir(join(tree, "later", "still empty"), { recursive: true });
  await alice.ok(["publish", tree]);
  const single = join(dir.path, "single");
  await Deno.mkdir(single);
  await Deno.writeTextFile(join(single, "only.txt"), "one\n");
  assert.match(await alice.ok(["publish", single]), /published the folder "single" \(1 file, /);
  await using _serving = await servePeer(alice.home, tracker.address);

  // Pinned to one owner (--from), each file's pieces come with a ticket that lets them.
  const pinned = join(dir.path, "pinned");
  await bob.ok(["fetch", "course", "--from", "alice", "--output", pinned]);
  assert.equal(await Deno.readTextFile(join(pinned, "readme.md")), "hi\n");
  assert.deepEqual(
    await Deno.readFile(join(pinned, "slides", "a.pdf")),
    await Deno.readFile(join(tree, "slides", "a.pdf")),
  );

  // ls shows the empty folders a fetch makes, not only the files.
  const listed = await bob.ok(["ls", "course"]);
  assert.match(listed, /later\/still empty\/ +│ empty folder/);
  assert.doesNotMatch(listed, /│ later\/ /);
  assert.match(listed, /2 files, .*; 1 empty folder/);

  const output = join(dir.path, "out");
  // One glob takes files, the other (a typo) takes nothing: refused, not half done.
  const typo = await bob.run([
    "fetch",
    "course",
    "--output",
    output,
    "--only",
    "slides/**",
    "--only",
    "*.mdd",
  ]);
  assert.notEqual(typo.code, 0);
  assert.match(typo.stderr, /nothing in "course" matches --only '\*\.mdd'/);
  assert.match(typo.stderr, /ls course` lists its files and empty folders/);
  assert.doesNotMatch(typo.stderr, /slides/);
  await assert.rejects(Deno.lstat(output), Deno.errors.NotFound);

  const none = await bob.run(["fetch", "course", "--output", output, "--only", "nope/**"]);
  assert.match(none.stderr, /nothing in "course" matches --only 'nope\/\*\*'/);
  await assert.rejects(Deno.lstat(output), Deno.errors.NotFound);

  // An output in the way is refused before the owners are listed (or asked for).
  const file = join(dir.path, "a file");
  await Deno.writeTextFile(file, "mine\n");
  const onFile = await bob.run(["fetch", "course", "--output", file, "--force"]);
  assert.match(onFile.stderr, /a file is not a folder; fetch to another place with --output PATH/);
  assert.equal(onFile.stdout, "");
  assert.equal(await Deno.readTextFile(file), "mine\n");
  // A file above the output: said so, and no download is left recorded for it.
  const under = await bob.run(["fetch", "course", "--output", join(file, "sub", "out")]);
  assert.match(under.stderr, /a part of that path is a file, not a folder/);
  assert.deepEqual(JSON.parse(await bob.ok(["downloads", "--json"])), []);
  await Deno.mkdir(output);
  const there = await bob.run(["fetch", "course", "--output", output]);
  assert.match(
    there.stderr,
    /out already exists; fetch to another folder with --output PATH, or into/,
  );
  assert.equal(there.stdout, "");
});

Deno.test("Ctrl-C in a folder fetch says what is kept and the command that resumes; downloads counts its verified pieces", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using fetching = await fetchCaughtMidway({
    dir: dir.path,
    tracker: tracker.address,
    owner: aliceCli,
    fetcher: bobCli,
    delayMs: 300,
  });
  const { tree, output, child, serving } = fetching;
  child.kill("SIGINT");
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    child.stdout.cancel(),
  ]);
  assert.equal(status.code, 130, stderr);
  assert.match(
    stderr,
    /interrupted: 0 of 1 file done, .* verified, kept in .*out\.shoal-part; run `.*fetch data --output .*out` to resume/,
  );
  assert.match(stderr, /cancel data` deletes the partial files/);
  const [row] = JSON.parse(await bobCli.ok(["downloads", "--json"]));
  assert.equal(row.folder, true);
  // The one file is unfinished: what is done is its verified pieces, not 0.
  assert.ok(row.verified > 0, `verified ${row.verified}`);
  await serving.stop();

  // Meanwhile its owner changes the folder: the unfinished fetch there is of another version.
  await Deno.writeTextFile(join(tree, "added.txt"), "new\n");
  await aliceCli.ok(["publish", tree]);
  await using _again = await servePeer(aliceCli.home, tracker.address);
  const other = await bobCli.run(["fetch", "data", "--output", output]);
  assert.match(
    other.stderr,
    /out\.shoal-part already exists, with an unfinished fetch of another version of "data" in it; .*--force/,
  );
  assert.equal(other.stdout, "", "refused before the owners are listed");
  const forced = await bobCli.ok(["fetch", "data", "--output", output, "--force"]);
  assert.match(forced, /fetched the folder "data" .*: 2 files, .* resumed from before/);
  assert.equal(await Deno.readTextFile(join(output, "added.txt")), "new\n");
  assert.deepEqual(JSON.parse(await bobCli.ok(["downloads", "--json"])), []);
});

Deno.test("a folder larger than the disk is refused before anything is made (tmpfs)", async () => {
  if (Deno.uid() !== 0) {
    console.log("skipped: mounting a tmpfs needs root");
    return;
  }
  await using dir = await tempDir();
  const small = join(dir.path, "small");
  const mounted = await mountTmpfs(small, "1m");
  if (!mounted) {
    console.log("skipped: cannot mount a tmpfs here");
    return;
  }
  // Unmounted after everything below has let go of it.
  await using _mounted = mounted;
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "data");
  await Deno.mkdir(join(tree, "sub", "deeper"), { recursive: true });
  await writeRandomFile(join(tree, "sub", "big.bin"), 3_000_000);
  await Deno.writeFile(join(tree, "empty"), new Uint8Array());
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  const output = join(small, "data");
  const refused = await bob.run(["fetch", "data", "--output", output]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /not enough disk space in .*small\/data: 2\.9 MiB needed/);
  assert.match(refused.stderr, /fetch to another disk with --output/);
  // Nothing made: not the output folder, not its empty folders or files.
  assert.deepEqual([...Deno.readDirSync(small)], []);
  assert.deepEqual(JSON.parse(await bob.ok(["downloads", "--json"])), []);
});

Deno.test("a file its owner deleted after publishing: the fetch ends naming it, and does not hang", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(tree);
  await writeRandomFile(join(tree, "kept.bin"), 5_000);
  await writeRandomFile(join(tree, "gone.bin"), 5_000);
  await alice.ok(["publish", tree]);
  await Deno.remove(join(tree, "gone.bin"));
  await using _serving = await servePeer(alice.home, tracker.address);
  const output = join(dir.path, "out");
  // The source answers at once that it lacks the file: that used to start the looking over
  // and over, and the fetch never ended.
  const result = await bob.run(["fetch", "course", "--output", output]);
  assert.notEqual(result.code, 0);
  assert.match(
    result.stderr,
    /no source left for 1 file: gone\.bin; their online owners no longer have them/,
  );
  // Running it again alone would meet the same owner: what changed must be published first.
  assert.match(
    result.stderr,
    /^hint: ask the owner to publish the folder again \(it changed since\), then run `.*fetch course --output .*out` again to resume/m,
  );
  // The folder is not whole: it stays in its staging folder, which the message names.
  assert.match(result.stderr, /the files fetched so far are kept in .*out\.shoal-part$/m);
  await assert.rejects(Deno.lstat(output), Deno.errors.NotFound);
  const kept = join(`${output}.shoal-part`, "kept.bin");
  assert.equal(await Deno.readTextFile(kept).then((t) => t.length > 0), true);
});

Deno.test("one name, a folder by one owner and a file by another: ls and --only take the folder, fetch names both", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, carol, bob] = await signedUpCliPeers(
    dir.path,
    tracker.address,
    "alice",
    "carol",
    "bob",
  );
  const tree = join(dir.path, "course");
  await Deno.mkdir(join(tree, "slides"), { recursive: true });
  await Deno.writeTextFile(join(tree, "slides", "one.txt"), "one\n");
  await alice.ok(["publish", tree]);
  const file = join(dir.path, "notes.txt");
  await Deno.writeTextFile(file, "a file\n");
  await carol.ok(["publish", "course", file]);
  await using _alice = await servePeer(alice.home, tracker.address);
  await using _carol = await servePeer(carol.home, tracker.address);

  const ambiguous = await bob.run(["fetch", "course", "--output", join(dir.path, "x")]);
  assert.match(
    ambiguous.stderr,
    /2 owners share different contents named "course": (alice \(folder\), carol \(txt\)|carol \(txt\), alice \(folder\)); choose one with --from/,
  );
  assert.match(await bob.ok(["ls", "course"]), /slides\/one\.txt/);
  const onFile = await bob.run(["ls", "course", "--from", "carol"]);
  assert.match(onFile.stderr, /"course" is a file, not a folder/);
  assert.match(onFile.stderr, /fetch course --from carol` fetches it/);
  const part = join(dir.path, "part");
  const fetched = await bob.ok(["fetch", "course", "--only", "slides/**", "--output", part]);
  assert.match(
    fetched,
    /fetched the folder "course" .*: 1 file, .* from 1 source: alice 1 piece$/m,
  );
  assert.equal(await Deno.readTextFile(join(part, "slides", "one.txt")), "one\n");
});

Deno.test("publish of a tree no fetcher could write (two names one on macOS) says what to change here", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice] = await signedUpCliPeers(dir.path, tracker.address, "alice");
  const tree = join(dir.path, "course");
  await Deno.mkdir(tree);
  await Deno.writeTextFile(join(tree, "caf\u00e9.txt"), "nfc\n");
  await Deno.writeTextFile(join(tree, "cafe\u0301.txt"), "nfd\n");
  const refused = await alice.run(["publish", tree]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /cannot publish .*course: the path "caf.*\.txt" differs from /);
  assert.match(refused.stderr, /hint: rename or move it, then publish again/);
  assert.doesNotMatch(refused.stderr, /its owner published/);
});

Deno.test("a folder of empty folders only is fetched (its tree made), whole or by --only", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "skeleton");
  await Deno.mkdir(join(tree, "week 1", "labs"), { recursive: true });
  await Deno.mkdir(join(tree, "week 2"));
  assert.match(await alice.ok(["publish", tree]), /\(0 files, 0 B, /);
  await using _serving = await servePeer(alice.home, tracker.address);
  const whole = join(dir.path, "whole");
  assert.match(await bob.ok(["fetch", "skeleton", "--output", whole]), /: 0 files, 0 B in /);
  assert.ok((await Deno.stat(join(whole, "week 1", "labs"))).isDirectory);
  assert.ok((await Deno.stat(join(whole, "week 2"))).isDirectory);
  const part = join(dir.path, "part");
  await bob.ok(["fetch", "skeleton", "--output", part, "--only", "week 2"]);
  assert.ok((await Deno.stat(join(part, "week 2"))).isDirectory);
  await assert.rejects(Deno.stat(join(part, "week 1")), Deno.errors.NotFound);
});

Deno.test("ls of a folder only you share lists your own, from the manifest in your home, with no source to ask", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice] = await signedUpCliPeers(dir.path, tracker.address, "alice");
  const tree = join(dir.path, "course");
  await Deno.mkdir(join(tree, "empty"), { recursive: true });
  await Deno.writeTextFile(join(tree, "readme.md"), "hi\n");
  await alice.ok(["publish", tree]);

  const listing = await alice.run(["ls", "course"]);
  assert.equal(listing.code, 0, listing.stderr);
  const listed = listing.stdout;
  assert.match(listing.stderr, /^listing your own "course" \(\S*course\): nobody else shares it$/m);
  assert.match(listed, /readme\.md/);
  assert.match(listed, /1 file, 3 B; 1 empty folder/);
  const json = JSON.parse(await alice.ok(["ls", "course", "--json"]));
  assert.deepEqual(json.files, [{ path: "readme.md", size: 3 }]);
  // One file of it cannot be withdrawn: the folder is shared whole, and the error says so.
  const one = await alice.run(["unpublish", "course/readme.md"]);
  assert.equal(one.code, 1);
  assert.match(
    one.stderr,
    /^error: "course\/readme\.md" is inside your folder "course", which is shared whole$/m,
  );
  assert.match(
    one.stderr,
    /^hint: move the file out of \S*course and `.*publish course \S*course` again, or `.*unpublish course`$/m,
  );
  // Fetching it is another matter: there is nobody to fetch it from, and it says where yours is.
  const fetched = await alice.run(["fetch", "course", "--output", join(dir.path, "copy")]);
  assert.equal(fetched.code, 1);
  assert.match(fetched.stderr, /you are the only one sharing "course": yours is \S*course; /);
  // The folder's name as the shell completes it (`cou<Tab>`: `course/`) names the folder itself.
  assert.match(await alice.ok(["unpublish", "course/"]), /course/);
  assert.deepEqual(JSON.parse(await alice.ok(["view", "--json"])), []);
});

Deno.test("a folder fetched while you share another version under its name says it is not shared, where yours is, and the publish that shares this one", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(tree);
  await Deno.writeTextFile(join(tree, "readme.md"), "one\n");
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  const first = join(dir.path, "first");
  assert.doesNotMatch(await bob.ok(["fetch", "course", "--output", first]), /not shared/);

  await Deno.writeTextFile(join(tree, "readme.md"), "two\n");
  await alice.ok(["publish", tree]);
  const second = join(dir.path, "second");
  const said = await bob.ok(["fetch", "course", "--output", second]);
  assert.match(
    said,
    new RegExp(
      `; not shared: you already share another "course" \\(${RegExp.escape(first)}; ` +
        `\`.*publish course ${RegExp.escape(second)}\` shares this one instead\\)$`,
      "m",
    ),
  );
  const json = JSON.parse(
    await bob.ok(["fetch", "course", "--output", join(dir.path, "third"), "--json"]),
  );
  assert.equal(json.shared, false);
  assert.equal(json.sharedElsewhere, first);
  assert.equal(JSON.parse(await bob.ok(["view", "--json"]))[0].path, first);
});

Deno.test("a folder fetch running in another terminal: downloads marks it running, and cancel refuses to delete under it, naming the process", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using fetching = await fetchCaughtMidway({
    dir: dir.path,
    tracker: tracker.address,
    owner: aliceCli,
    fetcher: bobCli,
    delayMs: 300,
  });
  const { child, part } = fetching;

  const [row] = JSON.parse(await bobCli.ok(["downloads", "--json"]));
  assert.equal(row.running, true);
  // The table shows it running, and its place as a folder.
  assert.match(await bobCli.ok(["downloads"]), /│ data \(running\) │.*out\.shoal-part\/ /);
  const refused = await bobCli.run(["cancel", "data"]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /^error: "data" is being fetched right now \(pid \d+\); stop that fetch \(Ctrl-C, or `pause` in the shell\), then cancel it$/m,
  );
  assert.ok((await Deno.stat(part)).isFile, "nothing deleted under the running fetch");

  child.kill("SIGINT");
  await Promise.all([child.status, child.stdout.cancel(), child.stderr.cancel()]);
  assert.equal(JSON.parse(await bobCli.ok(["downloads", "--json"]))[0].running, false);
  assert.match(
    await bobCli.ok(["cancel", "data"]),
    /^cancelled "data" and deleted its unfinished folder/,
  );
});

Deno.test("a folder fetched while the tracker goes away: it finishes, and its line says it is shared here but not published, with the publish to run", async () => {
  await using dir = await tempDir();
  const tracker = await startLocalTracker(dir.path);
  let stopped = false;
  await using _tracker = {
    [Symbol.asyncDispose]: async () => {
      if (!stopped) await tracker.stop();
    },
  };
  const [aliceCli, bobCli] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  await using fetching = await fetchCaughtMidway({
    dir: dir.path,
    tracker: tracker.address,
    owner: aliceCli,
    fetcher: bobCli,
    delayMs: 100,
  });
  const { child, output } = fetching;
  await tracker.stop();
  stopped = true;
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  assert.equal(status.code, 0, stderr);
  assert.match(
    stdout,
    new RegExp(
      `^fetched the folder "data" .*; shared here but not published: cannot reach .*; ` +
        `\`.*publish data ${RegExp.escape(output)}\` publishes it once the tracker is back$`,
      "m",
    ),
  );
  assert.equal(JSON.parse(await bobCli.ok(["view", "--json"]))[0].path, output);
});

Deno.test("folder fetch --force over an earlier version takes only what changed: a file already there with its content (size, then every piece's hash) is kept", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(join(tree, "week 1"), { recursive: true });
  await Deno.writeTextFile(join(tree, "readme.md"), "version one\n");
  await Deno.writeTextFile(join(tree, "week 1", "notes.txt"), "unchanged notes\n");
  await Deno.writeTextFile(join(tree, "empty.txt"), "");
  // Several pieces: checked piece by piece.
  await writeRandomFile(join(tree, "week 1", "slides.pdf"), 700_000);
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  const output = join(dir.path, "out");
  await bob.ok(["fetch", "course", "--output", output]);

  // Version two: one file of the same size with other bytes, one new; the rest as they were.
  await Deno.writeTextFile(join(tree, "readme.md"), "version two\n");
  await Deno.writeTextFile(join(tree, "week 1", "lab.txt"), "new this week\n");
  assert.match(await alice.ok(["publish", tree]), /republished the folder "course"/);
  const again = JSON.parse(
    await bob.ok(["fetch", "course", "--output", output, "--force", "--json"]),
  );
  assert.deepEqual(again.kept, { files: 3, bytes: 16 + 700_000 });
  // Only the changed and the new file came, a piece each.
  assert.equal(
    again.sources.reduce((sum: number, source: { pieces: number }) => sum + source.pieces, 0),
    2,
  );
  for (const path of ["readme.md", "week 1/lab.txt", "week 1/notes.txt", "week 1/slides.pdf"]) {
    assert.deepEqual(
      await Deno.readFile(join(output, path)),
      await Deno.readFile(join(tree, path)),
    );
  }
  // Said in the summary line too.
  await Deno.writeTextFile(join(tree, "readme.md"), "version 3!!\n");
  await alice.ok(["publish", tree]);
  assert.match(
    await bob.ok(["fetch", "course", "--output", output, "--force"]),
    /; 4 files \(.*\) already there with the same content, kept/,
  );
  assert.equal(await Deno.readTextFile(join(output, "readme.md")), "version 3!!\n");
});

Deno.test("a --force fetch over an earlier version, stopped before a file was replaced, resumed: the old file of the same size is not taken as fetched", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(tree);
  await Deno.writeTextFile(join(tree, "readme.md"), "version one\n");
  await Deno.writeTextFile(join(tree, "notes.txt"), "unchanged notes\n");
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  const output = join(dir.path, "out");
  await bob.ok(["fetch", "course", "--output", output]);

  // Version two: readme.md of the same size, other bytes.
  await Deno.writeTextFile(join(tree, "readme.md"), "version two\n");
  await alice.ok(["publish", tree]);
  const [share] = JSON.parse(await alice.ok(["view", "--json"]));
  // What a `fetch --force` over version one leaves when killed before readme.md was replaced.
  {
    using home = PeerHome.open(bob.home);
    const now = new Date().toISOString();
    home.saveFolderDownload({
      contentId: share.contentId,
      name: "course",
      output,
      only: [],
      size: share.size,
      files: 2,
      doneBytes: 0,
      staged: false,
      startedAt: now,
      updatedAt: now,
    });
  }
  await bob.ok(["fetch", "course", "--output", output]);
  assert.equal(await Deno.readTextFile(join(output, "readme.md")), "version two\n");
  assert.equal(await Deno.readTextFile(join(output, "notes.txt")), "unchanged notes\n");
});

Deno.test("fetch --force of a new version over an old one needs room only for what changed, not for the whole folder again (tmpfs)", async () => {
  if (Deno.uid() !== 0) {
    console.log("skipped: mounting a tmpfs needs root");
    return;
  }
  await using dir = await tempDir();
  const small = join(dir.path, "small");
  const mounted = await mountTmpfs(small, "4m");
  if (!mounted) {
    console.log("skipped: cannot mount a tmpfs here");
    return;
  }
  // Unmounted after everything below has let go of it.
  await using _mounted = mounted;
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "data");
  await Deno.mkdir(tree);
  await writeRandomFile(join(tree, "big.bin"), 3_000_000);
  await Deno.writeTextFile(join(tree, "readme.md"), "version one\n");
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  const output = join(small, "data");
  await bob.ok(["fetch", "data", "--output", output]);

  // Version two changes the small file only: the disk holds the old one and has room for that.
  await Deno.writeTextFile(join(tree, "readme.md"), "version two\n");
  await alice.ok(["publish", tree]);
  const again = JSON.parse(
    await bob.ok(["fetch", "data", "--output", output, "--force", "--json"]),
  );
  assert.deepEqual(again.kept, { files: 1, bytes: 3_000_000 });
  assert.equal(await Deno.readTextFile(join(output, "readme.md")), "version two\n");

  // Version three adds more than the disk has left: refused, naming what is needed, nothing kept.
  await writeRandomFile(join(tree, "more.bin"), 2_000_000);
  await alice.ok(["publish", tree]);
  const refused = await bob.run(["fetch", "data", "--output", output, "--force"]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /not enough disk space in .*small\/data: 1\.9 MiB needed/);
  assert.deepEqual(JSON.parse(await bob.ok(["downloads", "--json"])), []);
});

Deno.test("folder fetch --force --only into a staging folder that was there before it leaves that folder's other files alone, as in an output fetched into", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  const [alice, bob] = await signedUpCliPeers(dir.path, tracker.address, "alice", "bob");
  const tree = join(dir.path, "course");
  await Deno.mkdir(join(tree, "week 1"), { recursive: true });
  await Deno.writeTextFile(join(tree, "readme.md"), "read me\n");
  await Deno.writeTextFile(join(tree, "week 1", "notes.txt"), "the owner's notes\n");
  await alice.ok(["publish", tree]);
  await using _serving = await servePeer(alice.home, tracker.address);
  // Not made by this fetch: bob's own (or an unfinished fetch's of another version), with a file
  // at a path of the folder's that --only leaves out.
  const output = join(dir.path, "out");
  await Deno.mkdir(join(`${output}.shoal-part`, "week 1"), { recursive: true });
  await Deno.writeTextFile(join(`${output}.shoal-part`, "week 1", "notes.txt"), "bob's notes\n");

  const done = await bob.ok(["fetch", "course", "--output", output, "--force", "--only", "*.md"]);
  assert.doesNotMatch(done, /removed/);
  assert.equal(await Deno.readTextFile(join(output, "readme.md")), "read me\n");
  assert.equal(await Deno.readTextFile(join(output, "week 1", "notes.txt")), "bob's notes\n");
});
