/**
 * How the user started this program, so that a hint names a command they can
 * run as typed. Messages are written with the canonical `peer.ts` and
 * `tracker.ts`; {@link asTyped} turns those into what the user really ran:
 * `deno task peer --home alice`, the installed `shoal` (see
 * {@link takeInstalledAs}), `shoal-peer`, or nothing inside the shell, where
 * commands are typed bare.
 *
 * @example
 * ```ts
 * setInvocation("peer", Deno.args);
 * console.error(asTyped("run `peer.ts login <username>` first"));
 * ```
 */
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The programs whose commands messages name. */
export type Program = "peer" | "tracker";

/** Global options a hint must repeat so it means the same home and tracker. */
const GLOBAL_WITH_VALUE = new Set(["--home", "--tracker"]);
const GLOBAL_FLAGS = new Set(["--insecure-plaintext"]);

const typed: Record<Program, string | undefined> = { peer: undefined, tracker: undefined };

/**
 * The flag `deno task install` puts first in an installed command's script
 * (`shoal`, `shoal-tracker`), with the script's path: how the program knows
 * the name it was run by.
 */
export const INSTALLED_AS_FLAG = "--installed-as";

/** The installed command's script this process runs as, if it is one. */
let installedScript: string | undefined;

/**
 * Takes the installed command's marker off a command line (it is always
 * first) and remembers it; returns the user's arguments.
 */
export function takeInstalledAs(args: readonly string[]): string[] {
  const first = args[0] ?? "";
  if (!first.startsWith(`${INSTALLED_AS_FLAG}=`)) return [...args];
  installedScript = first.slice(INSTALLED_AS_FLAG.length + 1);
  return args.slice(1);
}

/** Whether this process is an installed command (`shoal`), not `deno task` or `deno run`. */
export function isInstalled(): boolean {
  return installedScript !== undefined;
}

/**
 * The name a program goes by for the user, as completions and `--help` show
 * it: the installed command's (`shoal`), else the compiled binary's, else the
 * script's (`peer.ts`).
 */
export function commandName(program: Program): string {
  if (installedScript !== undefined) return basename(installedScript);
  const name = basename(Deno.execPath()).replace(/\.exe$/, "");
  return name === "deno" ? `${program}.ts` : name;
}

/** The names completions are written for: the installed command's, else the script's and binary's. */
export function completionNames(program: Program): string[] {
  return installedScript !== undefined
    ? [basename(installedScript)]
    : [`${program}.ts`, `shoal-${program}`];
}

/** Reads the process's environment, or (tests) the variables {@link readEnvironmentFrom} gave. */
let variable = (name: string): string | undefined => Deno.env.get(name);

/**
 * Tests only: the launcher reads `INIT_CWD` and `PATH` from `variables`
 * (null: the process's again). Changing the process's own environment
 * instead would reach the programs other tests start meanwhile.
 */
export function readEnvironmentFrom(variables: Record<string, string> | null): void {
  variable = variables ? (name) => variables[name] : (name) => Deno.env.get(name);
}

/**
 * The words that start a program the way the user started it: the compiled
 * binary's name, `deno task NAME` under deno task (which sets INIT_CWD), or
 * `deno run -A` and the script's path from the current folder.
 */
export function launcher(program: Program): string {
  // An installed command: its bare name where PATH finds that script, else its path.
  if (installedScript !== undefined) {
    const name = basename(installedScript);
    return onPath(name) === installedScript ? name : quoteWord(nearest(installedScript));
  }
  const exe = Deno.execPath();
  const name = basename(exe).replace(/\.exe$/, "");
  // A compiled binary: its bare name where PATH finds it, else its path.
  if (name !== "deno") return onPath(basename(exe)) ? name : quoteWord(nearest(exe));
  if (variable("INIT_CWD")) return taskLauncher(program);
  const main = Deno.mainModule.startsWith("file:") ? fileURLToPath(Deno.mainModule) : "";
  const script = basename(main) === `${program}.ts` ? nearest(main) : `${program}.ts`;
  return `deno run -A ${quoteWord(script)}`;
}

/**
 * The words that start the other program, said in this one's hints (the
 * tracker's "they register first", the peer's "start a tracker"): the
 * installed `shoal`/`shoal-tracker` beside this installed command, the
 * compiled `shoal-peer`/`shoal-tracker` beside this binary, its task under
 * deno task, else `deno run -A` and its script beside this one.
 */
export function launcherBeside(program: Program): string {
  const script = `${program}.ts`;
  if (installedScript !== undefined) {
    const sibling = join(dirname(installedScript), program === "peer" ? "shoal" : "shoal-tracker");
    return onPath(basename(sibling)) === sibling ? basename(sibling) : quoteWord(nearest(sibling));
  }
  const exe = Deno.execPath();
  const name = basename(exe).replace(/\.exe$/, "");
  if (name !== "deno") {
    const sibling = join(dirname(exe), `shoal-${program}${exe.endsWith(".exe") ? ".exe" : ""}`);
    return onPath(basename(sibling)) === sibling ? `shoal-${program}` : quoteWord(nearest(sibling));
  }
  if (variable("INIT_CWD")) return taskLauncher(program);
  const main = Deno.mainModule.startsWith("file:") ? fileURLToPath(Deno.mainModule) : "";
  return `deno run -A ${quoteWord(main === "" ? script : nearest(join(dirname(main), script)))}`;
}

/**
 * `deno task peer` (or `admin`) as the user can type it again where they are:
 * deno task looks for deno.json only in that folder and above, so from
 * outside the repository the task needs `--config` and the file's path.
 */
function taskLauncher(program: Program): string {
  const task = program === "peer" ? "peer" : "admin";
  const from = variable("INIT_CWD") ?? Deno.cwd();
  const root = fileURLToPath(new URL("../", import.meta.url));
  const within = relative(root, from);
  if (!within.startsWith("..") && !isAbsolute(within)) return `deno task ${task}`;
  const config = join(root, "deno.json");
  const near = relative(from, config);
  return `deno task --config ${quoteWord(near.length <= config.length ? near : config)} ${task}`;
}

/** A path from the folder the user is in (`../peer.ts`), or the absolute one if shorter. */
function nearest(path: string): string {
  const near = relative(Deno.cwd(), path);
  return near.length <= path.length ? near : path;
}

/**
 * Where PATH finds a command of that file name (then the user can type it
 * bare), or undefined.
 */
function onPath(file: string): string | undefined {
  const separator = Deno.build.os === "windows" ? ";" : ":";
  for (const dir of (variable("PATH") ?? "").split(separator)) {
    try {
      if (dir !== "" && Deno.statSync(join(dir, file)).isFile) return join(dir, file);
    } catch {
      // Not in this folder, or a folder we may not read.
    }
  }
  return undefined;
}

/** Splits a command line into its global options (home, tracker, plaintext) and the rest. */
export function splitGlobals(args: readonly string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const flag = arg.split("=", 1)[0];
    if (GLOBAL_WITH_VALUE.has(arg) && i + 1 < args.length) globals.push(arg, args[++i]);
    else if (GLOBAL_WITH_VALUE.has(flag) || GLOBAL_FLAGS.has(arg)) globals.push(arg);
    else rest.push(arg);
  }
  return { globals, rest };
}

/**
 * Records how a program was started (from its command line), or, with
 * `prefix`, what to write instead of `peer.ts` (the shell passes "").
 */
export function setInvocation(program: Program, args: readonly string[], prefix?: string): void {
  // The tracker has no global options: its --insecure-plaintext is serve's, not every command's.
  const globals = program === "peer" ? splitGlobals(args).globals : [];
  typed[program] = prefix ?? [launcher(program), ...globals.map(quoteWord)].join(" ");
}

/** What `peer.ts` (or `tracker.ts`) stands for in a message: the command as the user runs it. */
export function commandPrefix(program: Program): string {
  return typed[program] ?? `${program}.ts`;
}

/**
 * Rewrites `peer.ts CMD` and `tracker.ts CMD` in a message into the command
 * the user runs. Only a name followed by a command word is rewritten, never a
 * file that happens to be called `peer.ts`.
 */
export function asTyped(text: string): string {
  // `deno task tracker` is serve (with its V8 flag); `deno task admin` runs the other commands.
  // (From outside the repository the task names its deno.json: `deno task --config X admin`.)
  const task = /^(deno task (?:--config (?:'[^']*'|\S+) )?)admin$/.exec(commandPrefix("tracker"));
  const served = task
    ? text.replace(/(^|[\s`(:])tracker\.ts serve\b/g, (_, before) => `${before}${task[1]}tracker`)
    : text;
  return served.replace(/(^|[\s`(:])(peer|tracker)\.ts (?=[\w-])/g, (_, before, name: Program) => {
    const prefix = commandPrefix(name);
    return prefix === "" ? before : `${before}${prefix} `;
  });
}

/** A word in single quotes, as a POSIX shell reads it back whatever it holds. */
export function singleQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A word as a POSIX shell reads it back: quoted only when it must be. */
export function quoteWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : singleQuote(word);
}

/** Words as a POSIX shell reads them back, each quoted only when it must be. */
export function quoteWords(words: readonly string[]): string {
  return words.map(quoteWord).join(" ");
}
