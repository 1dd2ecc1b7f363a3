/** A live progress bar for a download, on a terminal only. */
import process from "node:process";
import cliProgress from "cli-progress";
import type { QueuedAt, SwarmProgress } from "../peer/swarm.ts";
import { formatSize, plural } from "./output.ts";

/** "queued: 3rd at alice": this download's place in a source's queue for an upload slot. */
export function queueNote({ owner, place }: QueuedAt): string {
  return `queued: ${ordinal(place)} at ${owner}`;
}

/** 7s, 2m05s, 1h02m: a time left, as the bar shows it. */
export function formatSeconds(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

/** 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st. */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

/** The escape that shows the cursor again (DECTCEM). */
const SHOW_CURSOR = "\x1b[?25h";

/**
 * Gives the terminal back as a shell expects it: cursor shown, stdin out of
 * raw mode. Safe to call when neither was changed, and more than once.
 */
export function restoreTerminal(): void {
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(new TextEncoder().encode(SHOW_CURSOR));
  if (Deno.stdin.isTerminal()) {
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Not a terminal we may change (e.g. already closed): nothing to give back.
    }
  }
}

/**
 * How many columns the bar itself takes: 40, less on a terminal too narrow
 * for 40 and `text` (the columns the rest of the line takes at most), so
 * that the figures after it (rate, ETA) stay on the line instead of being
 * cut off at its edge; 10 at the least.
 */
export function barWidth(columns: number | null, text: number): number {
  if (columns === null) return 40;
  return Math.max(10, Math.min(40, columns - text - 1));
}

/** The width of stderr's terminal, or null where it reports none. */
function stderrColumns(): number | null {
  try {
    const { columns } = Deno.consoleSize();
    return columns > 0 ? columns : null;
  } catch {
    return null;
  }
}

/**
 * Draws a download's progress on stderr; a no-op where stderr is not a
 * terminal. {@link DownloadProgress.stop} restores the terminal, so call it
 * on every way out (success, error, Ctrl-C).
 */
export class DownloadProgress {
  readonly #bar: cliProgress.SingleBar | null;
  readonly #started = performance.now();
  #startBytes: number | null = null;
  #running = false;

  constructor(label: string, enabled = Deno.stderr.isTerminal()) {
    this.#bar = enabled
      ? new cliProgress.SingleBar({
        format:
          `${label} {bar} {percentage}% | {done} of {size}{files} | {rate}/s | ETA {left} | {sources}`,
        // "100% | 1023 MiB of 1023 MiB | 9999 of 9999 files | 1023 KiB/s | ETA 59m59s | 1 source"
        barsize: barWidth(stderrColumns(), label.length + 86),
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic)
      : null;
  }

  /** A folder's progress has its files too: `3 of 57 files` beside the bytes. */
  update(
    { verifiedBytes, totalBytes, activeSources, queued, filesDone, totalFiles }:
      & SwarmProgress
      & { filesDone?: number; totalFiles?: number },
  ): void {
    if (!this.#bar) return;
    this.#startBytes ??= verifiedBytes;
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? (verifiedBytes - this.#startBytes) / seconds : 0;
    const payload = {
      // Worked out here: the bar's own estimate shows "NFs" while a queued download gains nothing.
      left: rate > 0 ? formatSeconds((totalBytes - verifiedBytes) / rate) : "-",
      done: formatSize(verifiedBytes),
      size: formatSize(totalBytes),
      files: totalFiles === undefined
        ? ""
        : ` | ${filesDone ?? 0} of ${plural(totalFiles, "file")}`,
      rate: formatSize(rate),
      sources: [plural(activeSources, "source"), ...queued.map(queueNote)].join(" | "),
    };
    if (this.#running) return this.#bar.update(verifiedBytes, payload);
    this.#bar.start(totalBytes, verifiedBytes, payload);
    this.#running = true;
  }

  /** Clears the bar and restores the terminal; safe to call more than once. */
  stop(): void {
    if (this.#running) this.#bar?.stop();
    this.#running = false;
    if (this.#bar) restoreTerminal();
  }
}

/**
 * Draws the hashing of a folder (files, bytes, rate), or with `oneFile` of a
 * single file (bytes, rate), being published, on stderr's terminal.
 */
export class HashProgress {
  readonly #bar: cliProgress.SingleBar | null;
  readonly #started = performance.now();
  #running = false;

  constructor(label: string, enabled = Deno.stderr.isTerminal(), oneFile = false) {
    const files = oneFile ? "" : " | {files} files";
    this.#bar = enabled
      ? new cliProgress.SingleBar({
        format: `hashing ${label} {bar} {percentage}%${files} | {done} of {size} | {rate}/s`,
        barsize: barWidth(stderrColumns(), label.length + 70),
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic)
      : null;
  }

  update(progress: { files: number; totalFiles: number; bytes: number; totalBytes: number }) {
    if (!this.#bar) return;
    const seconds = (performance.now() - this.#started) / 1000;
    const payload = {
      files: `${progress.files} of ${progress.totalFiles}`,
      done: formatSize(progress.bytes),
      size: formatSize(progress.totalBytes),
      rate: formatSize(seconds > 0 ? progress.bytes / seconds : 0),
    };
    if (this.#running) return this.#bar.update(progress.bytes, payload);
    this.#bar.start(Math.max(1, progress.totalBytes), progress.bytes, payload);
    this.#running = true;
  }

  stop(): void {
    if (this.#running) this.#bar?.stop();
    this.#running = false;
    if (this.#bar) restoreTerminal();
  }
}
