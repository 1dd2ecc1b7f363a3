/**
 * One log line, the same on the tracker and the peer: text for people
 * (`TIME LEVEL MSG key=value ...`) or a JSON object per line for log shippers.
 */

/** The log levels, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** The log formats. */
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = typeof LOG_FORMATS[number];

/** A value as a text line shows it: bare when plain, else quoted with its escapes. */
function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /^[\w.:/@+\-\[\]]+$/.test(text) ? text : JSON.stringify(text);
}

/**
 * One log line: `TIME LEVEL MSG key=value ...` as text, or the record as one
 * JSON object (`time`, `level`, `msg`, the fields). Control characters never
 * reach a terminal raw: text quotes them, JSON escapes them.
 *
 * @example
 * ```ts
 * formatLogLine("text", "info", new Date().toISOString(), "upload", { user: "bob", bytes: 42 });
 * // 2026-11-30T05:00:00.000Z INFO  upload user=bob bytes=42
 * ```
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
