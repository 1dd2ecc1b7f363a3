/** The line loop both interactive shells share: prompt, parse, run, report, repeat. */
import { createInterface, type Interface } from "node:readline/promises";
import { clearLine, cursorTo } from "node:readline";
import process from "node:process";
import { parse } from "shell-quote";
import { reportError } from "./errors.ts";

/** Options of {@link runShell}. */
export interface ShellOptions {
  /** The prompt, recomputed before each line (e.g. to show who is logged in). */
  prompt: () => string;
  /**
   * Runs one line's words; errors are reported and the shell goes on. The
   * signal aborts when the user presses Ctrl-C while the command runs.
   */
  run: (words: string[], signal: AbortSignal) => Promise<void>;
  /** Command names, for TAB completion of the first word. */
  commands: string[];
  /** Where the history is kept across sessions; none if unset. */
  historyFile?: string;
}

/** What a running shell lends its commands. */
export interface ShellHandle {
  /** Prints a line above the prompt (e.g. "download finished") and redraws the prompt. */
  notify(line: string): void;
}

const HISTORY_SIZE = 500;

/** Splits a line as a POSIX shell would (quotes, escapes); operators are refused. */
export function splitLine(line: string): string[] {
  return parse(line).map((entry) => {
    if (typeof entry !== "string") throw new Error("shell operators are not supported here");
    return entry;
  });
}

function loadHistory(path: string | undefined): string[] {
  if (!path) return [];
  try {
    // readline keeps the newest line first.
    return Deno.readTextFileSync(path).split("\n").filter(Boolean).slice(-HISTORY_SIZE).reverse();
  } catch {
    return [];
  }
}

function appendHistory(path: string | undefined, line: string): void {
  if (!path) return;
  try {
    Deno.writeTextFileSync(path, `${line}\n`, { append: true, mode: 0o600 });
  } catch {
    // History is a convenience: a read-only home must not break the shell.
  }
}

/**
 * Reads commands until `quit`, `exit` or Ctrl-D, with history (kept across
 * sessions in `historyFile`) and TAB completion of command names. The line
 * reader is closed while a command runs, so the command's own prompts
 * (passwords, choices) own the terminal; Ctrl-C then aborts the command, not
 * the shell.
 *
 * @example
 * ```ts
 * await runShell({ prompt: () => "> ", commands: ["help"], run: async (words) => {} });
 * ```
 */
export async function runShell(
  options: ShellOptions,
  started?: (handle: ShellHandle) => void,
): Promise<void> {
  const history = loadHistory(options.historyFile);
  let current: Interface | null = null;
  started?.({
    notify(line) {
      if (current) {
        clearLine(process.stdout, 0);
        cursorTo(process.stdout, 0);
        console.log(line);
        current.prompt(true);
      } else {
        console.log(line);
      }
    },
  });
  const completer = (line: string): [string[], string] => {
    if (line.includes(" ")) return [[], line];
    const hits = options.commands.filter((name) => name.startsWith(line));
    return [hits.length ? hits : options.commands, line];
  };
  while (true) {
    const reader = createInterface({
      input: process.stdin,
      output: process.stdout,
      history,
      historySize: HISTORY_SIZE,
      removeHistoryDuplicates: true,
      completer,
    });
    current = reader;
    let line: string | null;
    let interrupted = false;
    // Ctrl-C at the prompt abandons the line, as in a login shell; Ctrl-D leaves.
    reader.on("SIGINT", () => {
      interrupted = true;
      reader.close();
    });
    try {
      const closed = new Promise<null>((resolve) => reader.once("close", () => resolve(null)));
      line = await Promise.race([reader.question(options.prompt()), closed]);
    } catch {
      line = null;
    } finally {
      current = null;
      reader.close();
    }
    if (interrupted) {
      console.log();
      continue;
    }
    if (line === null) {
      // Ctrl-D: end the prompt's line, so the next prompt starts on its own.
      console.log();
      return;
    }
    const trimmed = line.trim();
    if (trimmed === "") continue;
    appendHistory(options.historyFile, trimmed);
    if (trimmed === "quit" || trimmed === "exit") return;
    await runOne(options, trimmed);
  }
}

/** Runs one command line; Ctrl-C meanwhile aborts it and comes back to the prompt. */
async function runOne(options: ShellOptions, line: string): Promise<void> {
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  Deno.addSignalListener("SIGINT", interrupt);
  try {
    const aborted = new Promise<never>((_, reject) =>
      controller.signal.addEventListener("abort", () => reject(new CancelledError()), {
        once: true,
      })
    );
    const running = options.run(splitLine(line), controller.signal);
    // A command that ignores the signal finishes unobserved; its failure must not go unhandled.
    running.catch(() => {});
    await Promise.race([running, aborted]);
  } catch (error) {
    if (error instanceof CancelledError) console.error("cancelled");
    else reportError(error);
  } finally {
    Deno.removeSignalListener("SIGINT", interrupt);
  }
}

/** A command stopped by Ctrl-C. */
class CancelledError extends Error {}
