/**
 * The tracker's log: one line per event of the feed (and per warning) to
 * stderr, as text for people or JSON lines for log shippers, filtered by level.
 */
import type { EventFeed, TrackerEvent } from "./events.ts";
import { formatLogLine, LOG_LEVELS, type LogFormat, type LogLevel } from "../log_line.ts";

export { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log_line.ts";

/** How severe each event is: failures to log in are warnings, the rest information. */
export function levelOf(event: TrackerEvent): LogLevel {
  return event.type === "login.failed" ? "warn" : "info";
}

/**
 * Writes the feed's events, and warnings, at or above `level` as lines.
 *
 * @example
 * ```ts
 * using log = new EventLog(feed, { format: "json", level: "info" });
 * log.warn("something odd"); // {"time":...,"level":"warn","msg":"something odd"}
 * ```
 */
export class EventLog implements Disposable {
  readonly #format: LogFormat;
  readonly #threshold: number;
  readonly #write: (line: string) => void;
  readonly #unsubscribe: () => void;

  constructor(
    feed: EventFeed,
    options: {
      /** @default {"text"} */ format?: LogFormat;
      /** @default {"info"} */ level?: LogLevel;
      /** @default {console.error} */ write?: (line: string) => void;
    } = {},
  ) {
    this.#format = options.format ?? "text";
    this.#threshold = LOG_LEVELS.indexOf(options.level ?? "info");
    this.#write = options.write ?? ((line) => console.error(line));
    this.#unsubscribe = feed.subscribe((event) => this.event(event));
  }

  #enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#threshold;
  }

  /** Logs one event. */
  event(event: TrackerEvent): void {
    const level = levelOf(event);
    if (!this.#enabled(level)) return;
    const { seq: _seq, time, type, ...fields } = event;
    this.#write(formatLogLine(this.#format, level, time, type, fields));
  }

  /**
   * Logs a warning. As text, the line is written as it is (the way the
   * tracker has always printed warnings), escaped by the caller.
   */
  warn(line: string): void {
    if (!this.#enabled("warn")) return;
    this.#write(
      this.#format === "text"
        ? line
        : formatLogLine("json", "warn", new Date().toISOString(), line, {}),
    );
  }

  [Symbol.dispose](): void {
    this.#unsubscribe();
  }
}
