/**
 * The tracker's HTTP side on `Deno.serve`: HTTPS with the tracker's own
 * certificate (or the operator's), or plain HTTP under --insecure-plaintext.
 * The port itself is a {@link FrontDoor} (connection limits and a header
 * deadline, which `Deno.serve` lacks); `Deno.serve` listens on loopback
 * behind it.
 */
import {
  type Address,
  formatAddress,
  isAddressInUse,
  isAddressNotAvailable,
  notAvailableHere,
} from "../../protocol/address.ts";
import { ShoalError, toShoalError } from "../../protocol/errors.ts";
import type { TlsIdentity } from "../../protocol/tls.ts";
import type { EventFeed } from "../events.ts";
import type { TrackerMetrics } from "../metrics.ts";
import type { TrackerStore } from "../store.ts";
import { buildHttpApp } from "./app.ts";
import { FrontDoor, type FrontDoorOptions } from "./front_door.ts";
import { History, recordHistory } from "./history.ts";
import { WEB_SESSION_SWEEP_MS, WebSessions } from "./web_sessions.ts";

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  store: TrackerStore;
  events: EventFeed;
  metrics: TrackerMetrics;
  /** The protocol login's password check (the tracker's `checkPassword`). */
  checkPassword(username: string, password: string, address: string): Promise<string>;
  /** Where to listen; port 0 picks a free one. */
  address: Address;
  /** HTTPS with this certificate and key; without it, plain HTTP. */
  tls?: TlsIdentity;
  /** Where request errors go. @default {console.error} */
  warn?: (line: string) => void;
  /** Dashboard sessions; tests pass their own clock. @default {new WebSessions()} */
  sessions?: WebSessions;
  /** The port's limits and deadlines (tests shorten them); see {@link FrontDoorOptions}. */
  door?: Pick<
    FrontDoorOptions,
    | "maxConnections"
    | "maxConnectionsPerAddress"
    | "headerTimeoutMs"
    | "idleTimeoutMs"
    | "maxHeaderBytes"
  >;
}

/** A running HTTP side. */
export interface HttpServer extends AsyncDisposable {
  address: Address;
  /** `https://host:port` or `http://host:port`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the HTTP side.
 *
 * @example
 * ```ts
 * await using http = await startHttpServer({ store, events, metrics, checkPassword, address });
 * console.log(`dashboard on ${http.url}`);
 * ```
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const closing = new AbortController();
  const warn = options.warn ?? ((line: string) => console.error(line));
  const history = new History(options.events);
  const sessions = options.sessions ?? new WebSessions();
  // Once a minute: idle sessions end, and this process records its history's counts in the
  // store and takes the store's count of peers online (on a shared store, every process's).
  const sample = () => recordHistory(history, options.store).catch(() => {});
  let sampling = sample();
  const sweeper = setInterval(() => {
    sessions.endIdle();
    sampling = sample();
  }, WEB_SESSION_SWEEP_MS);
  const app = buildHttpApp({
    store: options.store,
    events: options.events,
    sessions,
    checkPassword: options.checkPassword,
    secureCookies: options.tls !== undefined,
    startedAt: new Date(),
    closing: closing.signal,
  }, { metrics: options.metrics, history, warn });
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  let server: Deno.HttpServer<Deno.NetAddr>;
  let door: FrontDoor;
  const stopSampling = async () => {
    clearInterval(sweeper);
    await sampling;
    history[Symbol.dispose]();
  };
  try {
    // On loopback only: every connection reaches it through the door, which says whose it is.
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: closing.signal,
      onListen: (addr: Deno.NetAddr) => resolve(addr),
      onError: (error: unknown) => {
        warn(`http: ${toShoalError(error).message}`);
        return new Response("internal error", { status: 500 });
      },
    }, (request, info) => {
      const client = door?.clientOf(info.remoteAddr);
      if (!client) {
        return new Response("connect to the tracker's HTTP port\n", { status: 403 });
      }
      // Over HTTPS the client's requests are https: ones (HTTP/2 says so itself, not HTTP/1.1).
      const secured = options.tls && request.url.startsWith("http:")
        ? new Request(`https:${request.url.slice("http:".length)}`, request)
        : request;
      // Only the client: `info`'s fields are getters (a spread copies none), and reading
      // `completed` makes a promise that rejects, uncaught, when an answer is not delivered.
      return app.fetch(secured, { remoteAddr: client });
    });
  } catch (error) {
    await stopSampling();
    throw new ShoalError("IO", `cannot serve HTTP: ${toShoalError(error).message}`);
  }
  const inner = await listening;
  try {
    door = await FrontDoor.open({
      ...options.door,
      address: options.address,
      tls: options.tls,
      inner: { host: inner.hostname, port: inner.port },
      warn,
    });
  } catch (error) {
    closing.abort();
    await server.finished;
    await stopSampling();
    const why = isAddressInUse(error)
      ? "the port is in use (pass another --http-port, 0 for a free one, or off)"
      : isAddressNotAvailable(error)
      ? `${notAvailableHere(options.address.host)} (pass --http-host one of its addresses, ` +
        "or 0.0.0.0 for all of them)"
      : toShoalError(error).message;
    throw new ShoalError("IO", `cannot serve HTTP on ${formatAddress(options.address)}: ${why}`);
  }
  const address = door.address;
  const close = async () => {
    if (!closing.signal.aborted) closing.abort();
    await door.close();
    await server.finished;
    await stopSampling();
  };
  return {
    address,
    url: `${options.tls ? "https" : "http"}://${formatAddress(address)}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
