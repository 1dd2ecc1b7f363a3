/**
 * The password prompts at a terminal (tmux): what a mistake there says.
 */
import assert from "node:assert/strict";
import { PEER_TS, tempDir } from "../helpers/processes.ts";
import { denoRun, hasCommand, TmuxPane } from "./_terminal.ts";

if (!hasCommand("tmux")) {
  console.log("skipped tests/cli/password_prompt_test.ts: tmux is not installed");
}

Deno.test({
  name: "register at a terminal - two different passwords: nothing is sent, and how to go on",
  ignore: !hasCommand("tmux"),
  async fn() {
    await using home = await tempDir("shoal-register-");
    // No tracker answers at port 1: a password that reached the network would say so instead.
    await using pane = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "--tracker", "127.0.0.1:1", "register", "zed"),
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
    // No tracker answers at port 1: the test ends at the second prompt, before any network.
    await using pane = await TmuxPane.start(
      denoRun(PEER_TS, "--home", home.path, "--tracker", "127.0.0.1:1", "register", "zed"),
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
