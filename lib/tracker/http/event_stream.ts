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

/** One event as a server-sent message (its JSON holds no line break). */
const sseMessage = (event: TrackerEvent) =>
  `event: shoal\nid: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;

/** Adds /events and /events/stream to the API router. */
export function addEventRoutes(api: Hono<HttpEnv>, deps: HttpDeps): void {
  api.get("/events", (c) => {
    const text = c.req.query("limit");
    if (text !== undefined && !/^\d+$/.test(text)) {
      return apiError(c, 400, "INVALID_INPUT", "limit: expected a whole number");
    }
    const limit = text === undefined ? undefined : Number(text);
    return c.json({ events: deps.events.recent({ limit }) });
  });

  api.get("/events/stream", (c) => {
    const lastId = Number(c.req.header("Last-Event-ID") ?? "");
    const after = Number.isSafeInteger(lastId) && lastId > 0 ? lastId : deps.events.lastSeq;
    return streamSSE(c, async (stream) => {
      const queue: TrackerEvent[] = deps.events.recent({ afterSeq: after });
      let wake: (() => void) | null = null;
      const unsubscribe = deps.events.subscribe((event) => {
        queue.push(event);
        wake?.();
      });
      const ended = new AbortController();
      const end = () => {
        ended.abort();
        wake?.();
      };
      stream.onAbort(end);
      deps.closing.addEventListener("abort", end, { once: true });
      const pinger = setInterval(() => {
        stream.write(": ping\n\n").catch(end);
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
          await stream.write(batch.map(sseMessage).join(""));
        }
      } finally {
        clearInterval(pinger);
        unsubscribe();
        deps.closing.removeEventListener("abort", end);
      }
    });
  });
}
