/**
 * The tracker's log: one line per event of the feed (and per warning) to
 * stderr, as text for people or JSON lines for log shippers, filtered by level.
 */
import type { EventFeed, TrackerEvent } from "./events.ts";

/** The log levels, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** The log formats. */
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = typeof LOG_FORMATS[number];

/** How severe each event is: failures to log in are warnings, the rest information. */
export function levelOf(event: TrackerEvent): LogLevel {
  return event.type === "login.failed" ? "warn" : "info";
}

/** A value as a text line shows it: bare when plain, else quoted with its escapes. */
function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /^[\w.:/@+\-\[\]]+$/.test(text) ? text : JSON.stringify(text);
}

/**
 * One log line: `TIME LEVEL TYPE key=value ...` as text, or the record as
 * one JSON object (`time`, `level`, `msg` = the event type, the fields).
 * Control characters never reach the terminal raw: text quotes them, JSON escapes them.
 */
export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  time: string,
  msg: string,
  fields: Record<string, unknown>,
): string {
  if (format === "json") return JSON.stringify({ time, level, msg, ...fields });
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value === null ? "-" : textValue(value)}`);
  return [time, level.toUpperCase().padEnd(5), textValue(msg), ...pairs].join(" ");
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
