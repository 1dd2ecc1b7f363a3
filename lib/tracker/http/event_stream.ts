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
          const event = queue.shift();
          if (event === undefined) {
            await new Promise<void>((resolve) => wake = resolve);
            wake = null;
            continue;
          }
          await stream.writeSSE({
            event: "shoal",
            id: String(event.seq),
            data: JSON.stringify(event),
          });
        }
      } finally {
        clearInterval(pinger);
        unsubscribe();
        deps.closing.removeEventListener("abort", end);
      }
    });
  });
}
