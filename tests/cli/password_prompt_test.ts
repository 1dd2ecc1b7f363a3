/**
 * The password prompts at a terminal (tmux): what a mistake there says.
 */
import assert from "node:assert/strict";
import { PEER_TS, tempDir } from "../helpers/processes.ts";
import { startLocalTracker } from "../helpers/local_peers.ts";
import { denoRun, hasCommand, TmuxPane } from "./_terminal.ts";

if (!hasCommand("tmux")) {
  console.log("skipped tests/cli/password_prompt_test.ts: tmux is not installed");
}

Deno.test({
  name: "register at a terminal - two different passwords: nothing is sent, and how to go on",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using home = await tempDir("shoal-register-");
    await using tracker = await startLocalTracker(home.path);
    await using pane = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "--tracker", tracker.address, "register", "zed"),
    );
    await pane.waitFor("Password:");
    await pane.type("first-password");
    await pane.waitFor("Password again:");
    await pane.type("other-password");
    await pane.waitFor(/^hint: nothing was sent; run the same command again/m);
    await pane.waitFor("[exited 1]");
    assert.match(await pane.capture(), /^error: the two passwords do not match$/m);
  },
});

Deno.test({
  name:
    "register at a terminal - a password too short is said at the first prompt, which asks again",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using home = await tempDir("shoal-register-");
    await using tracker = await startLocalTracker(home.path);
    await using pane = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "--tracker", tracker.address, "register", "zed"),
    );
    await pane.waitFor("Password:");
    await pane.type("short");
    // Said before "Password again:", so that it is not typed twice for nothing.
    await pane.waitFor("a password needs at least 8 characters; type another");
    assert.doesNotMatch(await pane.capture(), /Password again:/);
    // A fresh prompt: what is typed now is the whole password, not added to the refused one.
    await pane.waitFor("Password:", 2);
    await pane.type("long-enough");
    await pane.waitFor("Password again:");
    await pane.type("short" + "long-enough");
    await pane.waitFor(/^error: the two passwords do not match$/m);
    await pane.waitFor("[exited 1]");
  },
});

Deno.test({
  name:
    "register and login at a terminal - the tracker is reached first: its fingerprint is shown before a password is typed, and one that cannot be reached asks for none",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using home = await tempDir("shoal-register-");
    await using tracker = await startLocalTracker(home.path);
    await using first = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "--tracker", tracker.address, "register", "zed"),
    );
    await first.waitFor("Password:");
    // The first contact's fingerprint is on the screen above the prompt, to compare before typing.
    const screen = await first.capture();
    assert.match(screen, /first contact with the tracker at .*certificate fingerprint is SHA256:/s);
    assert.ok(
      screen.indexOf("first contact with the tracker") < screen.indexOf("Password:"),
      screen,
    );
    await first.type("zed-password");
    await first.waitFor("Password again:");
    await first.type("zed-password");
    await first.waitFor("registered zed");
    await first.waitFor("[exited 0]");

    // Nobody at port 1: said at once, no password asked for nothing.
    await using nowhere = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "--tracker", "127.0.0.1:1", "login", "zed"),
    );
    await nowhere.waitFor("[exited 1]");
    const said = await nowhere.capture();
    assert.match(said, /^error: cannot reach 127\.0\.0\.1:1/m);
    assert.doesNotMatch(said, /Password:/);
  },
});
