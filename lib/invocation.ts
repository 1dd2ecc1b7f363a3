/**
 * How the user started this program, so that a hint names a command they can
 * run as typed. Messages are written with the canonical `peer.ts` and
 * `tracker.ts`; {@link asTyped} turns those into what the user really ran:
 * `deno task peer --home alice`, `shoal-peer`, or nothing inside the shell,
 * where commands are typed bare.
 *
 * @example
 * ```ts
 * setInvocation("peer", Deno.args);
 * console.error(asTyped("run `peer.ts login <username>` first"));
 * ```
 */
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The programs whose commands messages name. */
export type Program = "peer" | "tracker";

/** Global options a hint must repeat so it means the same home and tracker. */
const GLOBAL_WITH_VALUE = new Set(["--home", "--tracker"]);
const GLOBAL_FLAGS = new Set(["--insecure-plaintext"]);

const typed: Record<Program, string | undefined> = { peer: undefined, tracker: undefined };

/**
 * The words that start a program the way the user started it: the compiled
 * binary's name, `deno task NAME` under deno task (which sets INIT_CWD), or
 * `deno run -A` and the script's path from the current folder.
 */
export function launcher(program: Program): string {
  const exe = Deno.execPath();
  const name = basename(exe).replace(/\.exe$/, "");
  // A compiled binary: its bare name where PATH finds it, else its path.
  if (name !== "deno") return onPath(basename(exe)) ? name : quoteWord(nearest(exe));
  if (Deno.env.get("INIT_CWD")) return program === "peer" ? "deno task peer" : "deno task admin";
  const main = Deno.mainModule.startsWith("file:") ? fileURLToPath(Deno.mainModule) : "";
  const script = basename(main) === `${program}.ts` ? nearest(main) : `${program}.ts`;
  return `deno run -A ${quoteWord(script)}`;
}

/** A path from the folder the user is in (`../peer.ts`), or the absolute one if shorter. */
function nearest(path: string): string {
  const near = relative(Deno.cwd(), path);
  return near.length <= path.length ? near : path;
}

/** Whether a command of that file name is found on PATH (then the user can type it bare). */
function onPath(file: string): boolean {
  const separator = Deno.build.os === "windows" ? ";" : ":";
  return (Deno.env.get("PATH") ?? "").split(separator).some((dir) => {
    try {
      return dir !== "" && Deno.statSync(join(dir, file)).isFile;
    } catch {
      return false;
    }
  });
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
  typed[program] = prefix ??
    [launcher(program), ...splitGlobals(args).globals.map(quoteWord)].join(" ");
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
  const served = commandPrefix("tracker").startsWith("deno task admin")
    ? text.replace(/(^|[\s`(:])tracker\.ts serve\b/g, "$1deno task tracker")
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
