/** Everything the CLIs print: tables, sizes, JSON, and text from the network made safe. */
import Table from "cli-table3";
import { escapeHidden, HIDDEN_CHARACTER } from "../protocol/validate.ts";

const HIDDEN = new RegExp(HIDDEN_CHARACTER.source, "gu");

/**
 * Text from the network made safe for a terminal: every character that
 * would not show as itself ({@link HIDDEN_CHARACTER}: C0 and C1 controls,
 * ESC, DEL, newlines, bidi and other format characters) is shown as a
 * `\u{..}` escape, so a hostile peer's error message or file name can
 * neither drive the terminal (colours, cursor moves, titles) nor disguise
 * itself (`report\u{200b}.pdf`, a reversed `\u{202e}` ending). Apply it to
 * anything a tracker or a peer sent before it is printed.
 *
 * @example
 * ```ts
 * escapeForTerminal("bad\x1b[2Jpiece"); // "bad\\u{1b}[2Jpiece"
 * ```
 */
export function escapeForTerminal(text: string): string {
  return escapeHidden(text);
}

/** Colours only on a terminal, and never with NO_COLOR set. */
export function useColour(): boolean {
  return Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** A human-readable size: `1.5 MiB`. Exact bytes belong in `--json`. */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${Math.round(bytes)} B`
    : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** The terminal's width, or null when stdout is not a terminal (then nothing wraps). */
function terminalColumns(): number | null {
  if (!Deno.stdout.isTerminal()) return null;
  try {
    // Some terminals (under `script`, a serial console) report no width at all.
    const { columns } = Deno.consoleSize();
    return columns > 0 ? columns : null;
  } catch {
    return null;
  }
}

/**
 * Column widths that fit `columns`: the widest column gives way first, down
 * to a floor, and its cells wrap. Null when the natural widths already fit.
 */
export function fitColumns(natural: number[], columns: number): number[] | null {
  const borders = natural.length + 1;
  const widths = [...natural];
  const total = () => widths.reduce((sum, width) => sum + width, 0) + borders;
  if (total() <= columns) return null;
  const floor = 8;
  while (total() > columns) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest] <= floor) break;
    widths[widest]--;
  }
  return widths;
}

/**
 * A table with a header row, drawn in box characters, as wide as the terminal
 * at most (`columns`: the terminal's width, null for no limit).
 */
export function renderTable(
  head: string[],
  rows: (string | number)[][],
  columns: number | null = terminalColumns(),
): string {
  const colour = useColour();
  // Names and owners come from the network.
  const cells = rows.map((row) => row.map((cell) => escapeForTerminal(String(cell))));
  // Each cell has one space of padding on either side.
  const natural = head.map((title, i) =>
    Math.max(title.length, ...cells.map((row) => row[i]?.length ?? 0)) + 2
  );
  const widths = columns === null ? null : fitColumns(natural, columns);
  const table = new Table({
    head,
    style: colour ? { head: ["cyan"], border: ["grey"] } : { head: [], border: [] },
    ...(widths ? { colWidths: widths, wordWrap: true } : {}),
  });
  // A word longer than its column (a path, a timestamp) is broken across lines, not cut off
  // with "…": cli-table3 wraps at spaces only, and truncates what does not fit.
  const wrap = (cell: string, i: number) =>
    widths && cell.split(/\s+/).some((word) => word.length > widths[i] - 2)
      ? { content: cell, wrapOnWordBoundary: false }
      : cell;
  for (const row of cells) table.push(row.map(wrap));
  // One line under the header, none between rows: a folder's `ls` of hundreds of files would
  // otherwise take twice as many lines, each other one a rule. Cut to the terminal, a cell may
  // wrap over lines: then the rules tell the rows apart.
  if (widths) return table.toString();
  let rules = 0;
  return table.toString().split("\n").filter((line) =>
    !stripAnsi(line).startsWith("├") || rules++ === 0
  ).join("\n");
}

/** A line without its colour codes. */
function stripAnsi(line: string): string {
  // deno-lint-ignore no-control-regex
  return line.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * What a publish line adds when the name stood for something else before: a
 * re-publish of another file or folder under a name already shared replaces
 * that share, which the user should hear about, not only "republished".
 * Empty when nothing was shared under the name, or it was the same path.
 */
export function replacedNote(
  before: { path: string; size: number; files?: number; kind?: string } | null,
  now: { path: string },
): string {
  if (!before || before.path === now.path) return "";
  const what = before.kind === "folder"
    ? `the folder ${before.path} (${plural(before.files ?? 0, "file")}, ${formatSize(before.size)})`
    : `${before.path} (${formatSize(before.size)})`;
  return `; it replaces ${what}, which is no longer shared under that name`;
}

/** A count and its noun, singular for one: `1 source`, `3 sources`. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/**
 * Prints a value as indented JSON, for scripts. JSON escapes C0 controls
 * itself; the other hidden characters are escaped as `\uXXXX` too, which
 * parses back to the same string but cannot act on a terminal.
 */
export function printJson(value: unknown): void {
  const escape = (char: string) =>
    // A raw newline can only be the indentation's: JSON escapes those in strings.
    char === "\n" ? char : [...Array(char.length).keys()]
      .map((i) => `\\u${char.charCodeAt(i).toString(16).padStart(4, "0")}`).join("");
  console.log(JSON.stringify(value, null, 2).replace(HIDDEN, escape));
}
