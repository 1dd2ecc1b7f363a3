/**
 * `completions bash|zsh|fish` print scripts that parse and really complete:
 * bash is driven both through its completion variables and by pressing TAB
 * in a terminal; zsh and fish run where installed and are skipped elsewhere.
 * The scripts are printed by the programs run in this process; the shells
 * that load them are real.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers/processes.ts";
import { runPeerCli as runPeer, runTrackerCli as runTracker } from "../helpers/cli.ts";
import { hasCommand, TmuxPane } from "./_terminal.ts";

const HAS_TMUX = hasCommand("tmux");
const HAS_ZSH = hasCommand("zsh");
const HAS_FISH = hasCommand("fish");
for (const [present, what] of [[HAS_ZSH, "zsh"], [HAS_FISH, "fish"], [HAS_TMUX, "tmux"]] as const) {
  if (!present) {
    console.log(
      `skipped the ${what} tests of tests/cli/completions_test.ts: ${what} is not installed`,
    );
  }
}

type Program = "peer.ts" | "tracker.ts";

/** Writes `<program> completions <shell>` into `dir` and returns the file. */
async function script(program: Program, shell: string, dir: string): Promise<string> {
  const run = program === "peer.ts" ? runPeer : runTracker;
  const args = program === "peer.ts"
    ? ["--home", join(dir, "home"), "completions", shell]
    : ["completions", shell];
  const { code, stdout, stderr } = await run(args);
  assert.equal(code, 0, stderr);
  const path = join(dir, `${program}.${shell}`);
  await Deno.writeTextFile(path, stdout);
  return path;
}

async function shellCheck(shell: string, args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command(shell, { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    out: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

/**
 * Sources the bash script, sets COMP_WORDS/COMP_CWORD to `words` (the last
 * one being completed) and calls the function `complete -p <name>` names,
 * as bash does on TAB. Returns COMPREPLY.
 */
async function bashComplete(path: string, words: string[]): Promise<string[]> {
  const driver = `
    source "$1"; shift
    spec=$(complete -p "$1") || exit 3
    [[ $spec =~ -F\\ ([^ ]+) ]] || exit 4
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"; COMP_POINT=\${#COMP_LINE}
    COMPREPLY=()
    "\${BASH_REMATCH[1]}" "$1" "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\\n' "\${COMPREPLY[@]}"
  `;
  const { code, out } = await shellCheck("bash", ["--norc", "-c", driver, "bash", path, ...words]);
  assert.equal(code, 0, `bash completion of ${words.join(" ")}: ${out}`);
  return [...new Set(out.split("\n").filter(Boolean))].sort();
}

for (const program of ["peer.ts", "tracker.ts"] as const) {
  Deno.test(`${program} completions bash - the script passes bash -n`, async () => {
    await using dir = await tempDir("shoal-completions-");
    const path = await script(program, "bash", dir.path);
    const { code, out } = await shellCheck("bash", ["-n", path]);
    assert.equal(code, 0, out);
  });
}

Deno.test("peer.ts completions bash - completes commands, their options, and skips global option values", async () => {
  await using dir = await tempDir("shoal-completions-");
  const path = await script("peer.ts", "bash", dir.path);
  for (const name of ["peer.ts", "shoal-peer"]) {
    assert.deepEqual(await bashComplete(path, [name, "fe"]), ["fetch"]);
  }
  assert.deepEqual(await bashComplete(path, ["peer.ts", "pu"]), ["publish"]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "fetch", "--f"]), ["--force", "--from"]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "fetch", "notes", "--o"]), [
    "--only",
    "--output",
  ]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "--tracker", "h:1", "fe"]), ["fetch"]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "--home", "/tmp/x", "vi"]), ["view"]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "--tracker", "h:1", "view", "--"]), [
    "--help",
    "--json",
  ]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "--tr"]), ["--tracker"]);
  // A subcommand right after its command only: `config get <TAB>` once offered `set` again.
  assert.deepEqual(await bashComplete(path, ["peer.ts", "config", ""]), [
    "--help",
    "get",
    "list",
    "set",
    "unset",
  ]);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "config", "get", "s"]), []);
  assert.deepEqual(await bashComplete(path, ["peer.ts", "--home", "h", "sessions", "revoke", ""]), [
    "--help",
    "--json",
  ]);
  const all = await bashComplete(path, ["peer.ts", ""]);
  for (const command of ["register", "login", "publish", "view", "search", "fetch", "serve"]) {
    assert.ok(all.includes(command), `${command} in ${all}`);
  }
});

Deno.test("tracker.ts completions bash - completes commands and their options", async () => {
  await using dir = await tempDir("shoal-completions-");
  const path = await script("tracker.ts", "bash", dir.path);
  for (const name of ["tracker.ts", "shoal-tracker"]) {
    assert.deepEqual(await bashComplete(path, [name, "di"]), ["discover"]);
  }
  assert.deepEqual(await bashComplete(path, ["tracker.ts", "p"]), ["peers", "ping"]);
  assert.deepEqual(await bashComplete(path, ["tracker.ts", "discover", "--"]), [
    "--db",
    "--help",
    "--json",
  ]);
  assert.deepEqual(await bashComplete(path, ["tracker.ts", "serve", "--p"]), ["--port"]);
});

/** An interactive bash in a pane with the script loaded, its prompt `READY$ `. */
async function bashPane(dir: string, path: string): Promise<TmuxPane> {
  const rc = join(dir, "bashrc");
  await Deno.writeTextFile(rc, `source '${path}'\nPS1='READY$ '\n`);
  const pane = await TmuxPane.start(["bash", "--noprofile", "--rcfile", rc, "-i"], {
    env: { HOME: dir, INPUTRC: "/dev/null" },
    cwd: dir,
  });
  try {
    await pane.waitFor("READY$ ");
  } catch (error) {
    await pane[Symbol.asyncDispose]();
    throw error;
  }
  return pane;
}

Deno.test({
  name: "peer.ts completions bash - TAB in a real bash completes `peer.ts fe` to fetch",
  ignore: !HAS_TMUX,
  async fn() {
    await using dir = await tempDir("shoal-completions-");
    const path = await script("peer.ts", "bash", dir.path);
    await using pane = await bashPane(dir.path, path);
    await pane.keys("peer.ts fe", "Tab");
    await pane.waitFor("READY$ peer.ts fetch ");
    await pane.keys("C-u", "peer.ts --tracker example fetch --f", "Tab", "Tab");
    await pane.waitFor(/--force +--from/);
  },
});

Deno.test({
  // lib bug (issue 6): bash splits `127.0.0.1:5050` at the colon (COMP_WORDBREAKS), so the
  // script takes `:` for the command; lib/cli/completions.ts should read the words from
  // COMP_LINE instead of COMP_WORDS. Unignore once that is fixed.
  name: "TAB in a real bash after `--tracker host:port` completes the command",

  async fn() {
    await using dir = await tempDir("shoal-completions-");
    const path = await script("peer.ts", "bash", dir.path);
    await using pane = await bashPane(dir.path, path);
    await pane.keys("peer.ts --tracker 127.0.0.1:5050 fe", "Tab");
    await pane.waitFor("READY$ peer.ts --tracker 127.0.0.1:5050 fetch ", 1, 5_000);
  },
});

Deno.test({
  name: "completions zsh - the script passes zsh -n, and TAB in a real zsh completes fetch",
  ignore: !HAS_ZSH,
  async fn() {
    await using dir = await tempDir("shoal-completions-");
    for (const program of ["peer.ts", "tracker.ts"] as const) {
      const { code, out } = await shellCheck("zsh", ["-n", await script(program, "zsh", dir.path)]);
      assert.equal(code, 0, out);
    }
    if (!HAS_TMUX) {
      console.log("skipped the interactive zsh completion: tmux is not installed");
      return;
    }
    const path = await script("peer.ts", "zsh", dir.path);
    await Deno.writeTextFile(join(dir.path, ".zshrc"), `source '${path}'\nPROMPT='READY%% '\n`);
    await using pane = await TmuxPane.start(["zsh", "-d", "-i"], {
      env: { HOME: dir.path, ZDOTDIR: dir.path },
      cwd: dir.path,
    });
    await pane.waitFor("READY% ");
    await pane.keys("peer.ts fe", "Tab");
    await pane.waitFor("READY% peer.ts fetch");
    await pane.keys("C-u", "peer.ts fetch --f", "Tab");
    await pane.waitFor(/--force +--from/);
  },
});

Deno.test({
  name: "completions fish - the script passes fish -n, and complete -C offers fetch",
  ignore: !HAS_FISH,
  async fn() {
    await using dir = await tempDir("shoal-completions-");
    const env = { HOME: dir.path, XDG_CONFIG_HOME: dir.path, XDG_DATA_HOME: dir.path };
    const fish = async (path: string, line: string) => {
      const output = await new Deno.Command("fish", {
        args: ["--no-config", "-c", `source '${path}'; complete -C '${line}'`],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(output.success, new TextDecoder().decode(output.stderr));
      return new TextDecoder().decode(output.stdout).split("\n").filter(Boolean)
        .map((entry) => entry.split("\t")[0]).sort();
    };
    for (const program of ["peer.ts", "tracker.ts"] as const) {
      const { code, out } = await shellCheck("fish", [
        "-n",
        await script(program, "fish", dir.path),
      ]);
      assert.equal(code, 0, out);
    }
    const peer = await script("peer.ts", "fish", dir.path);
    assert.deepEqual(await fish(peer, "peer.ts fe"), ["fetch"]);
    assert.deepEqual(await fish(peer, "shoal-peer fe"), ["fetch"]);
    assert.deepEqual(await fish(peer, "peer.ts fetch --f"), ["--force", "--from"]);
    assert.deepEqual(await fish(peer, "peer.ts config s"), ["set"]);
    assert.deepEqual(await fish(peer, "peer.ts config get s"), []);
    const tracker = await script("tracker.ts", "fish", dir.path);
    assert.deepEqual(await fish(tracker, "tracker.ts di"), ["discover"]);
  },
});

Deno.test("completions tcsh - an unknown shell exits 2 and names the known ones", async () => {
  await using home = await tempDir("shoal-completions-");
  const peer = await runPeer(["--home", home.path, "completions", "tcsh"]);
  assert.equal(peer.code, 2);
  assert.match(peer.stderr, /unknown shell "tcsh".*bash, zsh, fish/);
  assert.equal(peer.stdout, "");
  const tracker = await runTracker(["completions", "tcsh"]);
  assert.equal(tracker.code, 2);
  assert.match(tracker.stderr, /unknown shell "tcsh"/);
});
