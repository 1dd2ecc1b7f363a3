/**
 * A tracker with its HTTP side (dashboard, /metrics, /api/v1) in the test's
 * own process, plain HTTP on port 0 unless given `tls`, and a browser-like
 * client that keeps cookies and logs in through the login form.
 */
import { EventFeed } from "../../lib/tracker/events.ts";
import { TrackerMetrics } from "../../lib/tracker/metrics.ts";
import {
  type HttpServer,
  type HttpServerOptions,
  startHttpServer,
} from "../../lib/tracker/http/server.ts";
import { LOGIN_CSRF_COOKIE } from "../../lib/tracker/http/login.ts";
import type { WebSessions } from "../../lib/tracker/http/web_sessions.ts";
import { issueApiToken } from "../../lib/tracker/admins.ts";
import type { TlsIdentity } from "../../lib/protocol/tls.ts";
import { startTestTracker, type TestTracker } from "./tracker.ts";

/** The password of every account {@link TestOperator.account} makes. */
export const OPERATOR_TEST_PASSWORD = "correct horse battery";

/** A running tracker with its HTTP side; disposing it stops both. */
export interface TestOperator extends AsyncDisposable {
  running: TestTracker;
  events: EventFeed;
  metrics: TrackerMetrics;
  http: HttpServer;
  /** `http://127.0.0.1:PORT` (https with `tls`). */
  url: string;
  /** Creates an account (if new) with {@link OPERATOR_TEST_PASSWORD}; admin if asked. */
  account(username: string, options?: { admin?: boolean }): Promise<void>;
  /** A new API token for an admin. */
  token(username: string): Promise<string>;
  /** A cookie-keeping client, not logged in. */
  browser(): WebClient;
  /** A client logged in through the login form as `username` (made an admin unless told). */
  loggedIn(username: string, options?: { admin?: boolean }): Promise<WebClient>;
}

/** A client that keeps the cookies the tracker sets, and never follows redirects. */
export class WebClient {
  readonly #base: string;
  readonly cookies = new Map<string, string>();
  /** The raw Set-Cookie headers seen, newest last. */
  readonly setCookies: string[] = [];

  constructor(base: string) {
    this.#base = base;
  }

  /** Fetches `path` with the kept cookies; the body is read by the caller. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set("Cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const response = await fetch(`${this.#base}${path}`, { ...init, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair] = line.split(";");
      const at = pair.indexOf("=");
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      if (value === "" || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** Fetches JSON: status and body (checked by the tests' assertions, not by types). */
  // deno-lint-ignore no-explicit-any
  async json(path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
    const response = await this.fetch(path, init);
    return { status: response.status, body: await response.json() };
  }

  /** Logs in through the form; returns where the tracker redirected to. */
  async login(username: string, password = OPERATOR_TEST_PASSWORD): Promise<string> {
    await (await this.fetch("/login")).body?.cancel();
    const form = new URLSearchParams({
      username,
      password,
      csrf: this.cookies.get(LOGIN_CSRF_COOKIE) ?? "",
    });
    const response = await this.fetch("/login", { method: "POST", body: form });
    await response.body?.cancel();
    return response.headers.get("Location") ?? "";
  }

  /** The session's CSRF token, from GET /api/v1/session. */
  async csrfToken(): Promise<string> {
    const { body } = await this.json("/api/v1/session");
    return body.csrfToken;
  }
}

/**
 * Starts a tracker and its HTTP side.
 *
 * @example
 * ```ts
 * await using op = await startTestOperator();
 * const admin = await op.loggedIn("alice");
 * const { body } = await admin.json("/api/v1/summary");
 * ```
 */
export async function startTestOperator(
  options: {
    tls?: TlsIdentity;
    capacity?: number;
    sessions?: WebSessions;
    door?: HttpServerOptions["door"];
    warn?: (line: string) => void;
  } = {},
): Promise<TestOperator> {
  const events = new EventFeed({ capacity: options.capacity });
  // The tracker reports queries to the metrics, which need the tracker's store: made after it.
  const late: { metrics?: TrackerMetrics } = {};
  const running = await startTestTracker({
    events,
    tls: options.tls,
    onQuery: (method, seconds) => late.metrics?.observeQuery(method, seconds),
  });
  const metrics = new TrackerMetrics(
    running.store,
    events,
    () => running.tracker.connectionCount,
  );
  late.metrics = metrics;
  let http: HttpServer;
  try {
    http = await startHttpServer({
      store: running.store,
      events,
      metrics,
      checkPassword: (username, password, address) =>
        running.tracker.checkPassword(username, password, address),
      address: { host: "127.0.0.1", port: 0 },
      tls: options.tls,
      warn: options.warn ?? (() => {}),
      sessions: options.sessions,
      door: options.door,
    });
  } catch (error) {
    // The tracker is stopped too: a test that fails here leaves no port or store open.
    metrics[Symbol.dispose]();
    await running[Symbol.asyncDispose]();
    throw error;
  }
  const account = async (username: string, { admin = false } = {}) => {
    if (!await running.store.getUser(username)) {
      await running.store.createUser(
        username,
        await running.passwords.hash(OPERATOR_TEST_PASSWORD),
      );
    }
    if (admin) await running.store.setAdmin(username, true);
  };
  const operator: TestOperator = {
    running,
    events,
    metrics,
    http,
    url: http.url,
    account,
    async token(username) {
      await account(username, { admin: true });
      return (await issueApiToken(running.store, username)).token;
    },
    browser: () => new WebClient(http.url),
    async loggedIn(username, { admin = true } = {}) {
      await account(username, { admin });
      const client = new WebClient(http.url);
      const location = await client.login(username);
      if (location !== "/") throw new Error(`login of ${username} went to ${location}`);
      return client;
    },
    async [Symbol.asyncDispose]() {
      await http.close();
      metrics[Symbol.dispose]();
      await running[Symbol.asyncDispose]();
    },
  };
  return operator;
}
