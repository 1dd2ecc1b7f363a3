/**
 * What an open dashboard and a Prometheus server cost a tracker: one
 * subscriber on its event stream (SSE) and `/metrics` scraped every second,
 * kept up while a load runs against it.
 */
import { createHash, randomBytes } from "node:crypto";
import { SqliteTrackerStore } from "../lib/tracker/sqlite_store.ts";

/** What a watch saw. */
export interface WatchFigures {
  /** Events received on the stream. */
  events: number;
  /** Scrapes answered with 200. */
  scrapes: number;
  /** Scrapes that failed. */
  scrapeErrors: number;
}

/** A running watch; disposing it stops it. */
export interface DashboardWatch extends AsyncDisposable {
  figures: WatchFigures;
}

/**
 * Makes `username` an admin with an API token, straight in the database
 * (before the tracker starts); returns the token.
 */
export async function seedAdminToken(db: string, username: string): Promise<string> {
  using store = SqliteTrackerStore.open(db);
  const token = `shoal_api_${randomBytes(32).toString("base64url")}`;
  await store.setAdmin(username, true);
  await store.createApiToken(createHash("sha256").update(token).digest("hex"), username);
  return token;
}

/** Opens the event stream of the tracker at `url` and scrapes its /metrics every second. */
export async function watchDashboard(url: string, token: string): Promise<DashboardWatch> {
  const figures: WatchFigures = { events: 0, scrapes: 0, scrapeErrors: 0 };
  const stop = new AbortController();
  const headers = { Authorization: `Bearer ${token}` };
  const stream = await fetch(`${url}/api/v1/events/stream`, { headers, signal: stop.signal });
  if (!stream.ok || !stream.body) throw new Error(`event stream: HTTP ${stream.status}`);
  const reading = (async () => {
    try {
      for await (const chunk of stream.body!.pipeThrough(new TextDecoderStream())) {
        figures.events += chunk.match(/^data: /gm)?.length ?? 0;
      }
    } catch {
      // Aborted at the end of the watch.
    }
  })();
  const scrape = async () => {
    try {
      const response = await fetch(`${url}/metrics`, { signal: stop.signal });
      await response.text();
      if (response.ok) figures.scrapes++;
      else figures.scrapeErrors++;
    } catch {
      if (!stop.signal.aborted) figures.scrapeErrors++;
    }
  };
  const scraper = setInterval(scrape, 1000);
  return {
    figures,
    async [Symbol.asyncDispose]() {
      clearInterval(scraper);
      stop.abort();
      await reading;
    },
  };
}
