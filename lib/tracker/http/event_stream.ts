/**
 * The event feed over HTTP: GET /events (the ring buffer as JSON) and GET
 * /events/stream (server-sent events, resuming after Last-Event-ID, with a
 * comment every 15 s so proxies keep the connection).
 */
import type { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { TrackerEvent } from "../events.ts";
import { apiError, type HttpDeps, type HttpEnv } from "./context.ts";

/** How often an idle stream sends a comment. */
export const STREAM_PING_MS = 15_000;

/** The most events one write to a stream carries. */
const MAX_EVENTS_PER_WRITE = 256;

/** Event streams open at once; the next is answered 503 BUSY. */
export const MAX_EVENT_STREAMS = 32;

/**
 * Events waiting for a stream whose client stopped reading; past this the
 * stream ends (the browser reconnects with Last-Event-ID and catches up).
 */
export const MAX_EVENTS_BEHIND = 4096;

/** One event as a server-sent message (its JSON holds no line break). */
const sseMessage = (event: TrackerEvent) =>
  `event: shoal\nid: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;

/** Adds /events and /events/stream to the API router. */
export function addEventRoutes(api: Hono<HttpEnv>, deps: HttpDeps): void {
  /** Streams open now. */
  let openStreams = 0;
  api.get("/events", (c) => {
    const text = c.req.query("limit");
    if (text !== undefined && !/^\d+$/.test(text)) {
      return apiError(c, 400, "INVALID_INPUT", "limit: expected a whole number");
    }
    const limit = text === undefined ? undefined : Number(text);
    return c.json({ events: deps.events.recent({ limit }) });
  });

  api.get("/events/stream", (c) => {
    if (openStreams >= MAX_EVENT_STREAMS) {
      return apiError(
        c,
        503,
        "BUSY",
        `${MAX_EVENT_STREAMS} event streams are open already; close a dashboard tab or try later`,
      );
    }
    const caller = c.get("caller")!;
    // The role is checked again before every write, so a revoked admin's open stream ends at
    // the next event or ping (15 s), not when the browser closes. The stream is no use of the
    // session: it ends with it (see WEB_SESSION_IDLE_MS).
    const stillAllowed = async () =>
      !deps.closing.aborted && !(caller.session?.ended ?? false) &&
      await deps.store.isAdmin(caller.username).catch(() => false);
    const lastId = Number(c.req.header("Last-Event-ID") ?? "");
    const after = Number.isSafeInteger(lastId) && lastId > 0 ? lastId : deps.events.lastSeq;
    openStreams++;
    return streamSSE(c, async (stream) => {
      // Counted from before the stream starts to after it ends, whatever ends it.
      using _open = { [Symbol.dispose]: () => openStreams-- };
      const queue: TrackerEvent[] = deps.events.recent({ afterSeq: after });
      let wake: (() => void) | null = null;
      const ended = new AbortController();
      const end = () => {
        ended.abort();
        wake?.();
      };
      const unsubscribe = deps.events.subscribe((event) => {
        queue.push(event);
        if (queue.length > MAX_EVENTS_BEHIND) end();
        wake?.();
      });
      stream.onAbort(end);
      deps.closing.addEventListener("abort", end, { once: true });
      // A session's end (logout, idle, evicted) ends its stream at once, not at the next write.
      caller.session?.closed.addEventListener("abort", end, { once: true });
      if (caller.session?.closed.aborted) end();
      const pinger = setInterval(async () => {
        try {
          if (!await stillAllowed()) return end();
          await stream.write(": ping\n\n");
        } catch {
          end();
        }
      }, STREAM_PING_MS);
      try {
        while (!ended.signal.aborted) {
          if (queue.length === 0) {
            await new Promise<void>((resolve) => wake = resolve);
            wake = null;
            continue;
          }
          // What piled up goes out in one write: a chunk per event cost the tracker more
          // than the events themselves during a burst of publishes.
          const batch = queue.splice(0, MAX_EVENTS_PER_WRITE);
          if (!await stillAllowed()) break;
          await stream.write(batch.map(sseMessage).join(""));
        }
      } finally {
        clearInterval(pinger);
        unsubscribe();
        deps.closing.removeEventListener("abort", end);
        caller.session?.closed.removeEventListener("abort", end);
      }
    });
  });
}
