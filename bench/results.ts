/**
 * Benchmark results: one entry per figure, the machine they were taken on,
 * the table printed at the end, and `bench/results/latest.json`.
 */
import { cpus, totalmem } from "node:os";

/**
 * What a figure must reach. `on: "ratio"` compares the ratio to the baseline
 * taken in the same run; `on: "value"` compares the figure itself.
 */
export interface Target {
  on: "ratio" | "value";
  /** The figure must be at least this. */
  min?: number;
  /** The figure must be below this. */
  max?: number;
}

/** One measured figure. `ratio` is `value / baseline` when there is a baseline. */
export interface Entry {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  target: Target | null;
  /** Whether the target is met; null when the figure has no target. */
  met: boolean | null;
  /** How it was measured, or why it is missing, in a few words. */
  note?: string;
  /**
   * The runtime's own figure for the same work (the plainest Deno program
   * doing it), in the same unit and against the same baseline, where one was
   * measured in the same run: how far the target is within reach.
   */
  floor?: number;
}

/** The machine a run was taken on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  deno: string;
  v8: string;
  date: string;
  quick: boolean;
  /** 1, 5 and 15 minute load averages when the run started and ended: the machines are shared. */
  loadAverageStart: number[];
  loadAverageEnd?: number[];
}

export interface Results {
  machine: Machine;
  entries: Entry[];
}

/** Builds an entry, working out the ratio and whether the target is met. */
export function entry(
  name: string,
  value: number,
  unit: string,
  options: {
    baseline?: number | null;
    target?: Target | null;
    note?: string;
    floor?: number | null;
  } = {},
): Entry {
  const baseline = options.baseline ?? null;
  const ratio = baseline !== null && baseline > 0 ? value / baseline : null;
  const target = options.target ?? null;
  let met: boolean | null = null;
  if (target) {
    const figure = target.on === "ratio" ? ratio : value;
    met = figure !== null && Number.isFinite(figure) &&
      (target.min === undefined || figure >= target.min) &&
      (target.max === undefined || figure < target.max);
  }
  const floor = options.floor ?? undefined;
  return {
    name,
    value,
    unit,
    baseline,
    ratio,
    target,
    met,
    note: options.note,
    ...(floor !== undefined && Number.isFinite(floor) ? { floor } : {}),
  };
}

/** Describes this machine from /proc and Deno, with a fallback where /proc is missing. */
export function describeMachine(quick: boolean): Machine {
  let kernel = `${Deno.build.os} ${Deno.osRelease()}`;
  try {
    kernel = Deno.readTextFileSync("/proc/version").split(" ").slice(0, 3).join(" ");
  } catch {
    // Not Linux: the OS release is enough.
  }
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryBytes: totalmem(),
    kernel,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    date: new Date().toISOString(),
    quick,
    loadAverageStart: loadAverage(),
  };
}

/** The 1, 5 and 15 minute load averages, to two decimals. */
export function loadAverage(): number[] {
  return Deno.loadavg().map((load) => Math.round(load * 100) / 100);
}

/** A figure with as many digits as it deserves. */
export function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "-";
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** The target as a person reads it: `≥ 0.8× baseline`, `< 20 ms`. */
export function formatTarget(target: Target | null, unit: string): string {
  if (!target) return "";
  const suffix = target.on === "ratio" ? "× baseline" : ` ${unit}`;
  const parts = [];
  if (target.min !== undefined) parts.push(`≥ ${target.min}${suffix}`);
  if (target.max !== undefined) parts.push(`< ${target.max}${suffix}`);
  return parts.join(", ");
}

/** The results as a plain-text table, one row per entry. */
export function renderTable(entries: Entry[]): string {
  const header = ["benchmark", "value", "unit", "baseline", "ratio", "target", "met"];
  const rows = entries.map((e) => [
    e.name,
    formatNumber(e.value),
    e.unit,
    formatNumber(e.baseline),
    formatNumber(e.ratio),
    formatTarget(e.target, e.unit),
    e.met === null ? "" : e.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === 0 || i === 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
      .join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Writes the JSON next to a temporary name first, so a reader never sees half a file. */
export async function writeResults(path: string, results: Results): Promise<void> {
  const temporary = `${path}.tmp`;
  await Deno.writeTextFile(temporary, JSON.stringify(results, null, 2) + "\n");
  await Deno.rename(temporary, path);
}

/** What every benchmark is given. */
export interface BenchContext {
  /** Small sizes for a smoke run. */
  quick: boolean;
  /** Progress lines, for the person watching. */
  log: (line: string) => void;
}

/** One benchmark: a name for `--only`, and a run that returns its figures. */
export interface Benchmark {
  name: string;
  description: string;
  run(context: BenchContext): Promise<Entry[]>;
}
