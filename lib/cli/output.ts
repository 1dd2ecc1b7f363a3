/** Everything the CLIs print: tables, sizes, JSON. */
import Table from "cli-table3";

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

/** A table with a header row, drawn in box characters. */
export function renderTable(head: string[], rows: (string | number)[][]): string {
  const colour = useColour();
  const table = new Table({
    head,
    style: colour ? { head: ["cyan"], border: ["grey"] } : { head: [], border: [] },
  });
  for (const row of rows) table.push(row.map(String));
  return table.toString();
}

/** Prints a value as indented JSON, for scripts. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}
