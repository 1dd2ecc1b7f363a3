/** The line loop both interactive shells share: prompt, parse, run, report, repeat. */
import { createInterface, type Interface } from "node:readline/promises";
import { clearLine, cursorTo } from "node:readline";
import process from "node:process";
import { parse } from "shell-quote";
import { abortable } from "../async/abortable.ts";
import { reportError, wantsJson } from "./errors.ts";

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
  /**
   * Where lines come from.
   * @default {process.stdin}
   */
  input?: NodeJS.ReadableStream;
  /**
   * Where prompts go.
   * @default {process.stdout}
   */
  output?: NodeJS.WritableStream;
  /**
   * Said when Ctrl-C is pressed at an empty prompt, where it does nothing:
   * how to leave (a newcomer presses Ctrl-C to stop a program).
   */
  leaveHint?: string;
}

/** What a running shell lends its commands. */
export interface ShellHandle {
  /**
   * Prints a line above the prompt (e.g. "download finished") and redraws the
   * prompt with what was being typed; to `stream` if given (a log line to stderr).
   */
  notify(line: string, stream?: NodeJS.WritableStream): void;
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
 * Reads commands until `quit`, `exit` or the end of input (Ctrl-D), with
 * history (kept across sessions in `historyFile`) and TAB completion of
 * command names. Every line runs, in order: lines that arrive together (a
 * paste, a pipe) or while a command runs wait their turn instead of being
 * dropped. On a terminal the line reader is closed while a command runs, so
 * the command's own prompts (passwords, choices) own the terminal and Ctrl-C
 * aborts the command, not the shell.
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
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const lines = new LineSource(input, output, options);
  started?.({
    notify(line, stream = output) {
      const reader = lines.prompting;
      if (reader) {
        clearLine(output, 0);
        cursorTo(output, 0);
        stream.write(`${line}\n`);
        reader.prompt(true);
      } else {
        stream.write(`${line}\n`);
      }
    },
  });
  while (true) {
    const line = await lines.next();
    if (line === null) {
      // Ctrl-D: end the prompt's line, so what follows starts on its own.
      if (lines.onTerminal) output.write("\n");
      return;
    }
    const trimmed = line.trim();
    if (trimmed === "") continue;
    appendHistory(options.historyFile, trimmed);
    if (trimmed === "quit" || trimmed === "exit") {
      lines.close();
      return;
    }
    // What a terminal's own shell does with it (as Ctrl-L does here), not an unknown command.
    if (trimmed === "clear") {
      if (lines.onTerminal) output.write("\x1b[H\x1b[2J");
      continue;
    }
    await runOne(options, trimmed);
  }
}

/**
 * The lines a person gives the shell, handed out one at a time. A reader may
 * deliver several at once (a paste, a pipe, lines typed while a command ran):
 * they queue, and each runs in turn.
 */
class LineSource {
  readonly #input: NodeJS.ReadableStream;
  readonly #output: NodeJS.WritableStream;
  readonly #options: ShellOptions;
  readonly #terminal: boolean;
  readonly #history: string[];
  readonly #queue: string[] = [];
  #reader: Interface | null = null;
  #ended = false;
  #interrupted = false;
  /** The Ctrl-C was pressed with nothing typed. */
  #interruptedEmpty = false;
  /** The head of the queue was typed at a prompt on screen, so it shows already. */
  #headShown = false;
  /** What was typed of the next line when the reader closed for a command. */
  #draft = "";
  #wake: (() => void) | null = null;

  constructor(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, options: ShellOptions) {
    this.#input = input;
    this.#output = output;
    this.#options = options;
    const tty = (stream: unknown) => (stream as { isTTY?: boolean }).isTTY === true;
    this.#terminal = tty(input) && tty(output);
    this.#history = loadHistory(options.historyFile);
  }

  /** Whether the lines come from a person at a terminal (else from a pipe or a file). */
  get onTerminal(): boolean {
    return this.#terminal;
  }

  /** The reader showing a prompt on a terminal, if one does now. */
  get prompting(): Interface | null {
    return this.#terminal ? this.#reader : null;
  }

  /** The next line to run, or null at the end of input (Ctrl-D, the end of a pipe). */
  async next(): Promise<string | null> {
    while (this.#queue.length === 0) {
      if (this.#ended) return null;
      const reader = this.#reader ?? this.#open();
      if (this.#terminal) {
        reader.setPrompt(this.#options.prompt());
        reader.prompt();
        if (this.#draft) reader.write(this.#draft);
        this.#draft = "";
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
      this.#headShown = this.#terminal && this.#queue.length > 0;
      if (this.#interrupted) {
        this.#interrupted = false;
        this.#output.write("\n");
        if (this.#interruptedEmpty && this.#options.leaveHint) {
          this.#output.write(`${this.#options.leaveHint}\n`);
        }
      }
    }
    const line = this.#queue.shift()!;
    // A line nobody saw at a prompt is shown with one, so the transcript reads in order.
    if (!this.#headShown) this.#output.write(`${this.#options.prompt()}${line}\n`);
    this.#headShown = false;
    // On a terminal the command owns it until it returns; a pipe keeps being read.
    if (this.#terminal) this.#release(true);
    return line;
  }

  /** Stops reading, for good. */
  close(): void {
    this.#release(false);
  }

  #open(): Interface {
    const reader = createInterface({
      input: this.#input,
      output: this.#output,
      terminal: this.#terminal,
      history: this.#history,
      historySize: HISTORY_SIZE,
      removeHistoryDuplicates: true,
      completer: (line: string): [string[], string] => {
        if (line.includes(" ")) return [[], line];
        const hits = this.#options.commands.filter((name) => name.startsWith(line));
        return [hits.length ? hits : this.#options.commands, line];
      },
    });
    reader.on("line", (line: string) => {
      this.#queue.push(line);
      this.#wake?.();
    });
    // Ctrl-C at the prompt abandons the line, as in a login shell.
    reader.on("SIGINT", () => {
      this.#interrupted = true;
      this.#interruptedEmpty = reader.line === "";
      this.#release(false);
      this.#wake?.();
    });
    // Closed by anyone but us: the input ended (Ctrl-D, or the end of a pipe).
    reader.on("close", () => {
      if (this.#reader === reader) {
        this.#reader = null;
        this.#ended = true;
      }
      this.#wake?.();
    });
    this.#reader = reader;
    return reader;
  }

  #release(keepDraft: boolean): void {
    const reader = this.#reader;
    if (!reader) return;
    this.#reader = null;
    if (keepDraft) this.#draft = reader.line;
    reader.close();
  }
}

/** Runs one command line; Ctrl-C meanwhile aborts it and comes back to the prompt. */
async function runOne(options: ShellOptions, line: string): Promise<void> {
  const controller = new AbortController();
  const interrupt = () => controller.abort(new CancelledError());
  let words: string[] = [];
  Deno.addSignalListener("SIGINT", interrupt);
  try {
    words = splitLine(line);
    // A command that ignores the signal finishes unobserved; abortable catches its failure.
    await abortable(options.run(words, controller.signal), controller.signal);
  } catch (error) {
    if (error instanceof CancelledError) console.error("cancelled");
    else reportError(error, { json: wantsJson(words) });
  } finally {
    Deno.removeSignalListener("SIGINT", interrupt);
  }
}

/** A command stopped by Ctrl-C. */
class CancelledError extends Error {}
