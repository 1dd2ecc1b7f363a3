/**
 * `deno task install` and `deno task uninstall`: the commands `shoal` (the
 * peer) and `shoal-tracker` on PATH, through `deno install -g`, which works
 * offline (unlike `deno compile`, which downloads its runtime). Each command
 * gets exactly the Deno flags of its task in deno.json (`peer`, `tracker`),
 * read from there so the two never drift, and the repository's deno.json for
 * its imports. The script runs from the repository, so a change to the code
 * reaches the command at once; deno install keeps a copy of deno.json, so a
 * change there (a dependency) needs another install. The first argument of each installed script
 * (`--installed-as=PATH`) tells the program the name it is run by, for its
 * hints, help and completions.
 */
import { Command } from "commander";
import { fileURLToPath } from "node:url";
import { runProgram } from "./run.ts";
import { delimiter, join, resolve } from "node:path";
import { INSTALLED_AS_FLAG } from "../invocation.ts";
import { ShoalError } from "../protocol/errors.ts";

/** What is installed: each command, the task whose flags it takes, and the script it runs. */
export const COMMANDS = [
  { name: "shoal", task: "peer", script: "peer.ts" },
  { name: "shoal-tracker", task: "tracker", script: "tracker.ts" },
] as const;

/**
 * The Deno flags a task runs its script with: the words between `deno run`
 * and the script. A task of another shape (or none) is INVALID_INPUT.
 */
export function taskFlags(task: string | undefined, script: string): string[] {
  const words = (task ?? "").trim().split(/\s+/);
  const at = words.indexOf(script);
  if (words[0] !== "deno" || words[1] !== "run" || at < 0) {
    throw new ShoalError(
      "INVALID_INPUT",
      task === undefined
        ? `deno.json has no task that runs ${script}`
        : `the task "${task}" is not \`deno run FLAGS ${script}\``,
      {
        hint:
          "restore the repository's deno.json tasks (git checkout deno.json), then install again",
      },
    );
  }
  return words.slice(2, at);
}

/**
 * Where `deno install` puts commands: `--root`, else DENO_INSTALL_ROOT, else
 * ~/.deno; `variable` reads the environment (tests give their own).
 */
export function installRoot(
  root: string | undefined,
  variable: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string {
  const chosen = root ?? variable("DENO_INSTALL_ROOT") ??
    join(variable("HOME") ?? variable("USERPROFILE") ?? ".", ".deno");
  return resolve(chosen);
}

/** The `deno install` arguments that install one command from the repository at `repo`. */
export function installArgs(
  repo: string,
  root: string,
  command: typeof COMMANDS[number],
  flags: string[],
): string[] {
  return [
    "install",
    "--global",
    "--force",
    "--root",
    root,
    "--name",
    command.name,
    "--config",
    join(repo, "deno.json"),
    ...flags,
    join(repo, command.script),
    // Without `--`, deno install reads a word starting with `--` as its own flag.
    "--",
    `${INSTALLED_AS_FLAG}=${join(root, "bin", command.name)}`,
  ];
}

/** Runs `deno ARGS`, its output kept and shown only if it fails. */
async function runDeno(args: string[]): Promise<{ ok: boolean; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { ok: result.success, output: text.decode(result.stdout) + text.decode(result.stderr) };
}

/** Whether a folder is on PATH. */
function onPath(dir: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(delimiter).some((entry) =>
    entry !== "" && resolve(entry) === dir
  );
}

/** `--allow-all` in place of a task's permission flags, keeping its other flags (V8's). */
export function allowAll(flags: string[]): string[] {
  return ["--allow-all", ...flags.filter((flag) => !/^--(allow|deny)-/.test(flag))];
}

async function install(repo: string, options: InstallOptions): Promise<void> {
  const root = installRoot(options.root);
  const tasks = JSON.parse(await Deno.readTextFile(join(repo, "deno.json"))).tasks;
  for (const command of COMMANDS) {
    const taken = taskFlags(tasks[command.task], command.script);
    const flags = options.allowAll ? allowAll(taken) : taken;
    const { ok, output } = await runDeno(installArgs(repo, root, command, flags));
    if (!ok) {
      throw new ShoalError("IO", `deno install of ${command.name} failed:\n${output.trim()}`);
    }
    console.log(
      `installed ${command.name} in ${join(root, "bin")} (the flags of deno task ${command.task})`,
    );
  }
  const bin = join(root, "bin");
  if (!onPath(bin)) {
    console.log(`${bin} is not on PATH; add it, e.g. in ~/.profile: export PATH="${bin}:$PATH"`);
  }
  console.log(completionsLine(bin, onPath(bin)));
}

/**
 * How to install the bash completions, as a command that runs when pasted:
 * with the command's path while its folder is not on PATH (a bare `shoal`
 * would not be found yet).
 */
export function completionsLine(bin: string, binOnPath: boolean): string {
  const shoal = binOnPath ? "shoal" : join(bin, "shoal");
  return "completions: mkdir -p ~/.local/share/bash-completion/completions && " +
    `${shoal} completions bash > ~/.local/share/bash-completion/completions/shoal ` +
    "(zsh and fish too; the same for shoal-tracker)";
}

async function uninstall(rootFlag: string | undefined): Promise<void> {
  const root = installRoot(rootFlag);
  let removed = 0;
  for (const command of COMMANDS) {
    const { ok, output } = await runDeno(["uninstall", "--global", "--root", root, command.name]);
    if (ok) {
      removed++;
      console.log(`removed ${command.name} from ${join(root, "bin")}`);
    } else if (/No installation found/i.test(output)) {
      console.log(`${command.name} is not installed in ${join(root, "bin")}`);
    } else {
      throw new ShoalError("IO", `deno uninstall of ${command.name} failed:\n${output.trim()}`);
    }
  }
  if (removed === 0 && rootFlag === undefined) {
    console.log("(installed elsewhere? pass the same --root, or DENO_INSTALL_ROOT, as to install)");
  }
}

interface InstallOptions {
  root?: string;
  allowAll?: boolean;
}

/** The installer's command line; `repo` is the repository's folder. */
export function buildInstallProgram(repo: string): Command {
  const program = new Command("install.ts")
    .description("install or remove the commands shoal and shoal-tracker (deno install -g)")
    .showSuggestionAfterError(true)
    .exitOverride();
  const root = "--root <dir>";
  const rootHelp =
    "installation root (default: DENO_INSTALL_ROOT, else ~/.deno); commands go in DIR/bin";
  program.command("install")
    .description(
      "install shoal and shoal-tracker with the permissions of deno task peer and tracker",
    )
    .option(root, rootHelp)
    .option(
      "--allow-all",
      "grant every permission instead (Deno opens files under /dev, such as /dev/shm, only so)",
    )
    .action((options: InstallOptions) => install(repo, options));
  program.command("uninstall")
    .description("remove shoal and shoal-tracker")
    .option(root, rootHelp)
    .action((options: { root?: string }) => uninstall(options.root));
  return program;
}

// `deno task install` and `deno task uninstall` run this module; the repository is two folders up.
if (import.meta.main) {
  await runProgram(() => buildInstallProgram(fileURLToPath(new URL("../../", import.meta.url))));
}
