/**
 * `peer.ts fetch` on a real terminal (a tmux pane): Ctrl-C in the middle of
 * a download gives the terminal back with its cursor shown, keeps the
 * verified pieces, and says how many and the command that resumes them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually } from "../helpers/eventually.ts";
import { heldSource, localPeer, startLocalTracker } from "../helpers/local_peers.ts";
import { PEER_TS, tempDir, writeRandomFile } from "../helpers/processes.ts";
import { CliPeer } from "../helpers/cli.ts";
import { denoRun, hasCommand, TmuxPane } from "./_terminal.ts";

const HAS_TMUX = hasCommand("tmux");
if (!HAS_TMUX) console.log("skipped tests/cli/fetch_terminal_test.ts: tmux is not installed");

/** A wait on the terminal polls every 50 ms for about 30 s. */
const TERMINAL_WAIT = { tries: 600, everyMs: 50 };

Deno.test({
  name:
    "fetch on a terminal - Ctrl-C shows the cursor again and says how many pieces are kept and how to resume",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-fetch-terminal-");
    const tracker = await startLocalTracker(dir.path);
    try {
      const original = join(dir.path, "original.bin");
      await writeRandomFile(original, 4 * 1024 * 1024);
      using alice = await localPeer(dir.path, "alice", tracker.address);
      // Two pieces, then nothing until the test ends: the download is stuck in its middle.
      await using _source = await heldSource(alice, original, "notes", 2);
      const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
      await bob.signUp("bob");
      const downloads = join(dir.path, "downloads");
      await Deno.mkdir(downloads);

      // Typed at an interactive shell, which runs it as a job of its own: Ctrl-C reaches the
      // fetch, not the shell, as on a person's terminal.
      await using pane = await TmuxPane.start(["bash", "--norc", "--noprofile"], {
        cwd: downloads,
        columns: 250,
      });
      const command = denoRun(
        PEER_TS,
        "--tracker",
        tracker.address,
        "--home",
        bob.home,
        "fetch",
        "notes",
        "--from",
        "alice",
      ).map((word) => `'${word}'`).join(" ");
      await pane.type(`${command}; echo "[fetch exited $?]"`);
      const partPath = join(downloads, "notes.bin.shoal-part");
      await eventually(
        () => Deno.stat(partPath).then((info) => info.size > 0, () => false),
        "a piece in the partial file",
        TERMINAL_WAIT,
      );
      // The progress bar hides the cursor while it draws.
      await eventually(
        async () => !await pane.cursorVisible(),
        "the progress bar hiding the cursor",
        TERMINAL_WAIT,
      );

      await pane.keys("C-c");

      const text = await pane.waitFor(/\[fetch exited \d+\]/);
      assert.match(text, /\[fetch exited 130\]/);
      const kept = /interrupted: (\d+) of (\d+) pieces kept in (\S+); run `([^`]+)` to resume/
        .exec(text);
      assert.ok(kept, text);
      assert.ok(Number(kept[1]) > 0 && Number(kept[1]) < Number(kept[2]), text);
      assert.equal(kept[3], partPath);
      // The command as it was typed, so that pasting it resumes.
      assert.match(kept[4], /^deno run -A \S*peer\.ts .*fetch notes --from alice$/);
      assert.ok(await pane.cursorVisible(), "the cursor is still hidden after the fetch ended");
    } finally {
      await tracker.stop();
    }
  },
});
