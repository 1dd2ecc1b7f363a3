/**
 * The one place where errors become what a user sees: one `error:` line,
 * a hint where one helps, and an exit status (0 ok, 1 operational, 2 usage).
 */
import { CommanderError } from "commander";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { escapeForTerminal } from "./output.ts";
import { asTyped } from "../invocation.ts";
import { releaseInterrupts } from "./interrupts.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** The shell's convention for a command ended by Ctrl-C. */
export const EXIT_CANCELLED = 130;

/** A mistake in how a command was called (exit status 2). */
export class UsageError extends Error {}

/** A failure the command has already reported in its output: exit 1, print nothing more. */
export class ReportedFailure extends Error {}

/** Hints that hold for a code wherever it comes from; others come with the error. */
const HINTS: Partial<Record<ShoalError["code"], string>> = {
  AUTH_FAILED: "check the username and type the password again; " +
    "without an account yet, `peer.ts register <username>` makes one",
  // A fresh home's first command (serve, search) lands here before any account exists.
  AUTH_REQUIRED: "run `peer.ts login <username>` first " +
    "(with no account yet, `peer.ts register <username>` makes one)",
  USERNAME_TAKEN: "choose another name, or run `peer.ts login <username>` if it is yours",
  VERSION_MISMATCH: "upgrade the older of the two programs",
};

/** The hint shown under an error, if any: the error's own, else its code's. */
export function hintFor(error: ShoalError): string | undefined {
  return error.hint ?? HINTS[error.code];
}

/** Options of {@link reportError}. */
export interface ReportOptions {
  /** The command was given `--json`: the error is one JSON object on stdout. */
  json?: boolean;
}

/** An error as `--json` prints it. */
export interface JsonError {
  error: { code: string; message: string; hint?: string };
}

/** Whether a command line asks for JSON (`--json` before any `--`). */
export function wantsJson(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).includes("--json");
}

/**
 * Prints an error as one line (plus an optional hint), or with `json` as one
 * `{"error": {code, message, hint}}` object on stdout, and returns its exit
 * status. The Ctrl-C listeners an interrupted operation left to hear the
 * copy of its Ctrl-C go once it is said (see lib/cli/interrupts.ts).
 */
export function reportError(caught: unknown, options: ReportOptions = {}): number {
  try {
    return report(caught, options);
  } finally {
    releaseInterrupts();
  }
}

function report(caught: unknown, options: ReportOptions): number {
  const print = (status: number, code: string, said: string, hinted?: string): number => {
    // Hints name commands as `peer.ts ...`: say them the way this user runs them.
    const message = asTyped(said);
    const hint = hinted && asTyped(hinted);
    if (options.json) {
      const error: JsonError["error"] = { code, message };
      if (hint) error.hint = hint;
      console.log(JSON.stringify({ error } satisfies JsonError));
    } else {
      console.error(`error: ${escapeForTerminal(message)}`);
      if (hint) console.error(`hint: ${escapeForTerminal(hint)}`);
    }
    return status;
  };
  if (caught instanceof CommanderError) {
    // Commander has already printed its message (or the help / version) on stderr.
    if (caught.exitCode === 0) return EXIT_OK;
    if (options.json) print(EXIT_USAGE, "USAGE", caught.message.replace(/^error: /, ""));
    return EXIT_USAGE;
  }
  // The prompt library's errors for Ctrl-C and Ctrl-D at a question.
  if (caught instanceof Error && /^(ExitPromptError|AbortPromptError)$/.test(caught.name)) {
    if (options.json) return print(EXIT_CANCELLED, "CANCELLED", "cancelled");
    console.error("cancelled");
    return EXIT_CANCELLED;
  }
  if (caught instanceof ReportedFailure) return EXIT_FAILURE;
  if (caught instanceof UsageError) return print(EXIT_USAGE, "USAGE", caught.message);
  const error = specialPathError(caught) ?? toShoalError(caught);
  const status = error.code === "CANCELLED" ? EXIT_CANCELLED : EXIT_FAILURE;
  return print(status, error.code, error.message, hintFor(error));
}

/**
 * Deno opens nothing under /dev, /proc or /sys (a RAM disk such as /dev/shm,
 * say) without `--allow-all`, whatever paths --allow-read and --allow-write
 * name, and any --deny flag or revocation takes that away again: the tasks'
 * and installed commands' narrow flags cannot allow it. Said as what it is,
 * with the ways round it.
 */
export function specialPathError(caught: unknown): ShoalError | undefined {
  const message = caught instanceof Error ? caught.message : String(caught);
  const path = /Requires all access to "([^"]+)"/.exec(message)?.[1];
  if (path === undefined) return undefined;
  return new ShoalError(
    "IO",
    `cannot use ${path}: Deno opens files under /dev, /proc and /sys only for a program run ` +
      "with --allow-all, and this one runs with narrower permissions",
    {
      cause: caught,
      hint: "use a file elsewhere (a tmpfs such as /tmp or $XDG_RUNTIME_DIR works), or run it " +
        "with `deno run --allow-all`, or install the commands with `deno task install --allow-all`",
    },
  );
}
