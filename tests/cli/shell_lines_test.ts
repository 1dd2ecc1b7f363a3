/**
 * The shells' line loop in process, fed by a stream as by a pipe: every line
 * runs, in order, including those that arrive together or while a command
 * runs; and the real peer shell with its stdin piped.
 */
import assert from "node:assert/strict";
import { PassThrough, Readable, Writable } from "node:stream";
import { join } from "node:path";
import { runShell } from "../../lib/cli/shell.ts";
import { tempDir } from "../helpers/processes.ts";
import { runPeer } from "./_terminal.ts";
import { PeerHome } from "../../lib/peer/home.ts";

/** An output that keeps what the shell prints. */
function transcript(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

Deno.test("runShell - piped lines that arrive at once all run, in order", async () => {
  const ran: string[] = [];
  const out = transcript();
  await runShell({
    prompt: () => "shoal> ",
    commands: [],
    input: Readable.from(["view\ndownloads\nsearch x\n"]),
    output: out.stream,
    run: async (words) => {
      await Promise.resolve();
      ran.push(words.join(" "));
    },
  });
  assert.deepEqual(ran, ["view", "downloads", "search x"]);
  assert.match(out.text(), /shoal> view\nshoal> downloads\nshoal> search x\n/);
});

Deno.test("runShell - `clear` is the shell's own, as in a terminal's shell: not run as an unknown command", async () => {
  const ran: string[] = [];
  const out = transcript();
  await runShell({
    prompt: () => "shoal> ",
    commands: [],
    input: Readable.from(["clear\nview\n"]),
    output: out.stream,
    run: (words) => {
      ran.push(words.join(" "));
      return Promise.resolve();
    },
  });
  assert.deepEqual(ran, ["view"]);
  // Piped, there is no screen to clear: nothing is written for it.
  assert.ok(!out.text().includes("\x1b[2J"), out.text());
});

Deno.test("runShell - a last line without a newline still runs", async () => {
  const ran: string[] = [];
  await runShell({
    prompt: () => "> ",
    commands: [],
    input: Readable.from(["view\nsearch 'two words'"]),
    output: transcript().stream,
    run: (words) => {
      ran.push(words.join("|"));
      return Promise.resolve();
    },
  });
  assert.deepEqual(ran, ["view", "search|two words"]);
});

Deno.test("runShell - lines that arrive while a command runs run after it, in order", async () => {
  const input = new PassThrough();
  const ran: string[] = [];
  const { promise: firstStarted, resolve: startFirst } = Promise.withResolvers<void>();
  const { promise: release, resolve: finishFirst } = Promise.withResolvers<void>();
  const shell = runShell({
    prompt: () => "> ",
    commands: [],
    input,
    output: transcript().stream,
    run: async (words) => {
      ran.push(`start ${words[0]}`);
      if (words[0] === "slow") {
        startFirst();
        await release;
      }
      ran.push(`end ${words[0]}`);
    },
  });
  input.write("slow\n");
  await firstStarted;
  input.write("second\nthi");
  input.write("rd\n");
  finishFirst();
  input.end("quit\nnever\n");
  await shell;
  assert.deepEqual(ran, [
    "start slow",
    "end slow",
    "start second",
    "end second",
    "start third",
    "end third",
  ]);
});

Deno.test("peer shell - `printf 'view\\ndownloads\\nsearch x\\n' | peer.ts shell` runs all three", async () => {
  await using dir = await tempDir("shoal-shell-lines-");
  const { code, stdout, stderr } = await runPeer(
    ["--home", join(dir.path, "home"), "--tracker", "127.0.0.1:1", "shell"],
    { stdin: "view\ndownloads\nsearch x\n" },
  );
  assert.equal(code, 0, stderr);
  const ran = stdout.split("\n").filter((line) => line.startsWith("shoal (not logged in)> "));
  assert.deepEqual(ran, [
    "shoal (not logged in)> view",
    "shoal (not logged in)> downloads",
    "shoal (not logged in)> search x",
  ]);
  // None of them can work without a login: each says so, so each ran.
  assert.equal(stderr.match(/^error: not logged in$/gm)?.length, 3, stderr);
});

Deno.test("peer shell - hints name commands as typed in the shell, without `peer.ts`", async () => {
  await using dir = await tempDir("shoal-shell-lines-");
  const { code, stderr } = await runPeer(
    ["--home", join(dir.path, "home"), "--tracker", "127.0.0.1:1", "shell"],
    { stdin: "search x\n" },
  );
  assert.equal(code, 0, stderr);
  assert.match(
    stderr,
    /^hint: run `login <username>` first \(with no account yet, `register <username>` makes one\)$/m,
  );
});

Deno.test("peer shell - a tracker that does not answer: the hint says to start the shell again with --tracker, which a line there cannot take", async () => {
  await using dir = await tempDir("shoal-shell-lines-");
  const home = join(dir.path, "home");
  // A session saved as a login leaves it, so that search goes to the tracker (none at port 1).
  {
    using opened = PeerHome.open(home);
    opened.saveSession({ username: "bob", token: "0".repeat(64) });
  }
  const { code, stderr } = await runPeer(
    ["--home", home, "--tracker", "127.0.0.1:1", "shell"],
    { stdin: "search x\n" },
  );
  assert.equal(code, 0, stderr);
  assert.match(stderr, /^error: cannot reach 127\.0\.0\.1:1/m);
  assert.match(
    stderr,
    /^hint: is the tracker running\? .* name the running one by starting the shell again with --tracker HOST:PORT/m,
  );
});
