/** A live progress bar for a download, on a terminal only. */
import process from "node:process";
import cliProgress from "cli-progress";
import type { SwarmProgress } from "../peer/swarm.ts";
import { formatSize, plural } from "./output.ts";

/** Draws a download's progress on stderr; a no-op where stderr is not a terminal. */
export class DownloadProgress {
  readonly #bar: cliProgress.SingleBar | null;
  readonly #started = performance.now();
  #startBytes: number | null = null;
  #running = false;

  constructor(label: string, enabled = Deno.stderr.isTerminal()) {
    this.#bar = enabled
      ? new cliProgress.SingleBar({
        format:
          `${label} {bar} {percentage}% | {done} of {size} | {rate}/s | ETA {eta_formatted} | {sources}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic)
      : null;
  }

  update({ verifiedBytes, totalBytes, activeSources }: SwarmProgress): void {
    if (!this.#bar) return;
    this.#startBytes ??= verifiedBytes;
    const seconds = (performance.now() - this.#started) / 1000;
    const payload = {
      done: formatSize(verifiedBytes),
      size: formatSize(totalBytes),
      rate: formatSize(seconds > 0 ? (verifiedBytes - this.#startBytes) / seconds : 0),
      sources: plural(activeSources, "source"),
    };
    if (this.#running) return this.#bar.update(verifiedBytes, payload);
    this.#bar.start(totalBytes, verifiedBytes, payload);
    this.#running = true;
  }

  stop(): void {
    if (this.#running) this.#bar?.stop();
    this.#running = false;
  }
}
