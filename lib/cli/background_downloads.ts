/**
 * The downloads the peer shell runs in the background, by name: started,
 * listed, paused, and a notice when each ends. A download paused by `pause`
 * (or `cancel`) is said once, by that command, with what it kept, not a
 * second time by a notice.
 */
import { deadline } from "../async/deadline.ts";
import { toShoalError } from "../protocol/errors.ts";
import { matchingNames } from "../peer/name_match.ts";
import { escapeForTerminal } from "./output.ts";

/** How one ended: its summary line, or its error's message (escaped). */
interface Outcome {
  kind: "done" | "failed" | "paused";
  line: string;
}

interface Running {
  controller: AbortController;
  ended: Promise<Outcome>;
  /** Set as soon as it ends. */
  outcome?: Outcome;
  /** A pause command waits to say how it stopped: no notice then. */
  claimed: boolean;
}

/**
 * The shell's background downloads.
 *
 * @example
 * ```ts
 * const downloads = new BackgroundDownloads((line) => console.log(line));
 * downloads.start("course", (signal) => fetchIt(signal));
 * console.log(await downloads.pause("course"));
 * ```
 */
export class BackgroundDownloads {
  readonly #running = new Map<string, Running>();
  readonly #notify: (line: string) => void;

  /** `notify` says how each download ended (but one a pause has said). */
  constructor(notify: (line: string) => void) {
    this.#notify = notify;
  }

  /** Runs `work` in the background under `name`; its summary line, or error, is announced. */
  start(name: string, work: (signal: AbortSignal) => Promise<string>): void {
    const controller = new AbortController();
    const running: Running = {
      controller,
      claimed: false,
      ended: work(controller.signal).then(
        (summary): Outcome => ({ kind: "done", line: summary }),
        (error): Outcome => ({
          kind: controller.signal.aborted ? "paused" : "failed",
          line: escapeForTerminal(toShoalError(error).message),
        }),
      ),
    };
    this.#running.set(name, running);
    running.ended.then((outcome) => {
      running.outcome = outcome;
      if (this.#running.get(name) === running) this.#running.delete(name);
      if (outcome.kind === "done") return this.#notify(`[done] ${outcome.line}`);
      if (outcome.kind === "paused" && running.claimed) return;
      this.#notify(`[${outcome.kind}] "${name}": ${outcome.line}`);
    });
  }

  /** The names of the downloads running (a paused one lingers until it stops: not running). */
  active(): string[] {
    return [...this.#running].filter(([, running]) => !running.controller.signal.aborted)
      .map(([name]) => name);
  }

  /**
   * Stops the background download `name` (in any case), keeping its partial
   * files, and waits up to `patienceMs` for it to stop. Returns the one line
   * that says so, with what it kept, or undefined when none (or several)
   * run by that name. One that stops later is announced when it does.
   */
  async pause(name: string, patienceMs = 5_000): Promise<string | undefined> {
    const [found, ...others] = matchingNames([...this.#running.keys()], name, (key) => key);
    const running = found === undefined ? undefined : this.#running.get(found);
    if (!running || others.length > 0) return undefined;
    running.claimed = true;
    running.controller.abort();
    const outcome = await deadline(running.ended, patienceMs).catch(() => running.outcome);
    if (!outcome) {
      running.claimed = false;
      return `pausing "${escapeForTerminal(found)}": it says what it kept once it stops`;
    }
    if (outcome.kind !== "paused") {
      return `"${escapeForTerminal(found)}" ended before it was paused`;
    }
    return `paused "${escapeForTerminal(found)}": ${outcome.line.replace(/^interrupted: /, "")}`;
  }

  /** Stops every download (the shell is leaving); each says what it kept. */
  stopAll(): void {
    for (const running of this.#running.values()) running.controller.abort();
  }
}
