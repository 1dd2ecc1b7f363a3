/**
 * The serving peer's log: one line per upload it served (who, which share,
 * bytes, rate, duration), written when the downloader's connection ends, and
 * one per refusal (a bad ticket, over a limit), as text or JSON lines.
 */
import { formatLogLine, type LogFormat } from "../log_line.ts";
import type { ErrorCode } from "../protocol/errors.ts";

/** What a refusal line tells. */
export interface Refusal {
  /** The downloader's account, when its ticket named it; null otherwise. */
  user: string | null;
  /** Where the request came from, `host:port`. */
  address: string;
  /** The content asked for. */
  contentId: string;
  /** The share's name, when known. */
  share?: string | null;
  /** The error code answered: TICKET_INVALID, TICKET_EXPIRED, QUEUED, BUSY, ... */
  code: ErrorCode;
  /** Why, in words: "bad ticket", "over limits", ... */
  reason: string;
}

interface Upload {
  user: string;
  address: string;
  contentId: string;
  share: string | null;
  bytes: number;
  pieces: number;
  startedAt: number;
  lastAt: number;
}

/**
 * Counts what each connection downloads and logs it when the connection
 * ends; logs refusals at once. The piece server calls {@link served},
 * {@link refusal} and {@link closed}; other limits may call {@link refusal}.
 *
 * @example
 * ```ts
 * const log = new UploadLog({ format: "json" });
 * log.served(connection, { user: "bob", address: "10.0.0.2:50000", contentId, share: "a.iso", bytes: 1 << 20 });
 * log.closed(connection); // {"msg":"upload","user":"bob","share":"a.iso","bytes":1048576,...}
 * ```
 */
export class UploadLog {
  readonly #format: LogFormat;
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  readonly #open = new Map<object, Map<string, Upload>>();

  constructor(
    options: {
      /** @default {"text"} */ format?: LogFormat;
      /** @default {console.error} */ write?: (line: string) => void;
      /** Milliseconds, for durations. @default {performance.now} */ now?: () => number;
    } = {},
  ) {
    this.#format = options.format ?? "text";
    this.#write = options.write ?? ((line) => console.error(line));
    this.#now = options.now ?? (() => performance.now());
  }

  /** Counts `bytes` of `contentId` sent on `connection` (started before the piece was read). */
  served(
    connection: object,
    piece: {
      user: string;
      address: string;
      contentId: string;
      share: string | null;
      bytes: number;
      /** Pieces these bytes are (a batch of small files counts each). @default {1} */
      pieces?: number;
      startedAt?: number;
    },
  ): void {
    const now = this.#now();
    let uploads = this.#open.get(connection);
    if (!uploads) this.#open.set(connection, uploads = new Map());
    const upload = uploads.get(piece.contentId) ?? {
      user: piece.user,
      address: piece.address,
      contentId: piece.contentId,
      share: piece.share,
      bytes: 0,
      pieces: 0,
      startedAt: piece.startedAt ?? now,
      lastAt: now,
    };
    upload.bytes += piece.bytes;
    upload.pieces += piece.pieces ?? 1;
    upload.lastAt = now;
    uploads.set(piece.contentId, upload);
  }

  /** The moment a piece request began, for {@link served}'s `startedAt`. */
  now(): number {
    return this.#now();
  }

  /** Logs the uploads of a connection that ended, one line per content. */
  closed(connection: object): void {
    const uploads = this.#open.get(connection);
    if (!uploads) return;
    this.#open.delete(connection);
    for (const upload of uploads.values()) {
      const durationMs = Math.max(0, upload.lastAt - upload.startedAt);
      const seconds = durationMs / 1000;
      this.#line("info", "upload", {
        user: upload.user,
        address: upload.address,
        share: upload.share ?? upload.contentId.slice(0, 16),
        contentId: upload.contentId,
        bytes: upload.bytes,
        pieces: upload.pieces,
        durationMs: Math.round(durationMs),
        bytesPerSecond: seconds > 0 ? Math.round(upload.bytes / seconds) : null,
      }, upload);
    }
  }

  /** Logs a refused request. */
  refusal(refusal: Refusal): void {
    this.#line("warn", "refused", {
      user: refusal.user,
      address: refusal.address,
      share: refusal.share ?? null,
      contentId: refusal.contentId,
      code: refusal.code,
      reason: refusal.reason,
    });
  }

  #line(
    level: "info" | "warn",
    msg: string,
    fields: Record<string, unknown>,
    upload?: Upload,
  ): void {
    const time = new Date().toISOString();
    if (this.#format === "json" || !upload) {
      this.#write(formatLogLine(this.#format, level, time, msg, fields));
      return;
    }
    // Text is for people: sizes, durations and rates in their units.
    const { bytesPerSecond: _rate, durationMs: _ms, ...rest } = fields;
    const ms = Math.max(0, upload.lastAt - upload.startedAt);
    this.#write(formatLogLine("text", level, time, msg, {
      ...rest,
      duration: `${(ms / 1000).toFixed(2)}s`,
      rate: ms > 0 ? `${(upload.bytes / ms / 1000).toFixed(2)}MB/s` : "-",
    }));
  }
}
