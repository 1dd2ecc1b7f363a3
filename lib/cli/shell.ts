/** The line loop both interactive shells share: prompt, parse, run, report, repeat. */
import { createInterface } from "node:readline/promises";
import process from "node:process";
import { parse } from "shell-quote";
import { reportError } from "./errors.ts";

/** Options of {@link runShell}. */
export interface ShellOptions {
  /** The prompt, recomputed before each line (e.g. to show who is logged in). */
  prompt: () => string;
  /** Runs one line's words; errors are reported and the shell goes on. */
  run: (words: string[]) => Promise<void>;
}

/** Splits a line as a POSIX shell would (quotes, escapes); operators are refused. */
export function splitLine(line: string): string[] {
  return parse(line).map((entry) => {
    if (typeof entry !== "string") throw new Error("shell operators are not supported here");
    return entry;
  });
}

/**
 * Reads commands until `quit`, `exit` or Ctrl-D. The line reader is closed
 * while a command runs, so the command's own prompts (passwords, choices)
 * own the terminal; the history is kept across commands.
 */
export async function runShell(options: ShellOptions): Promise<void> {
  const history: string[] = [];
  while (true) {
    const reader = createInterface({
      input: process.stdin,
      output: process.stdout,
      history,
      historySize: 500,
      removeHistoryDuplicates: true,
    });
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
    if (trimmed === "quit" || trimmed === "exit") return;
    try {
      await options.run(splitLine(trimmed));
    } catch (error) {
      reportError(error);
    }
  }
}
