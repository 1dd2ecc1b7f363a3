/**
 * The tracker's HTTP port: a listener of our own in front of `Deno.serve`.
 * `Deno.serve` keeps a connection for as long as its client likes (it has no
 * header timeout and no connection limit: denoland/deno#3515), so one host
 * that opened thousands of silent connections could use up the descriptors
 * the protocol port shares. Here, as on the protocol port, one address holds
 * a bounded number of connections and everyone together a bounded number; a
 * connection must finish its TLS handshake and send its first request's
 * headers within a deadline, and one silent both ways for long is closed.
 * What passes is piped to the HTTP server on loopback, which learns each
 * request's real client from {@link FrontDoor.clientOf}.
 */
import type { Address } from "../../protocol/address.ts";
import { acceptEach } from "../../protocol/accept_backoff.ts";
import { AddressCounts } from "../../protocol/address_counts.ts";
import { writeAll } from "../../protocol/frame.ts";
import {
  closeQuietly,
  listenTls,
  type ServerConn,
  type ServerListener,
} from "../../protocol/tls_listener.ts";
import type { TlsIdentity } from "../../protocol/tls.ts";
import { WarningLimiter } from "../../protocol/warning_limiter.ts";
import { toShoalError } from "../../protocol/errors.ts";

/** Options of {@link FrontDoor.open}. */
export interface FrontDoorOptions {
  /** Where to listen; port 0 picks a free one. */
  address: Address;
  /** HTTPS with this certificate and key (offering HTTP/2); without it, plain HTTP. */
  tls?: TlsIdentity;
  /** The HTTP server admitted connections are piped to, on loopback. */
  inner: Address;
  /** Connections open at once, from everyone; one more is closed as it is accepted. @default {1024} */
  maxConnections?: number;
  /**
   * Connections one address may hold open at once, as on the protocol port;
   * one more is closed as it is accepted. A browser opens six at most; users
   * behind one NAT share the rest.
   * @default {64}
   */
  maxConnectionsPerAddress?: number;
  /**
   * A connection must finish its TLS handshake and the headers of its first
   * request within this long, or it is answered 408 and closed.
   * @default {10000}
   */
  headerTimeoutMs?: number;
  /**
   * A connection that sends and receives nothing for this long is closed
   * (an event stream sends a comment every 15 s, so it is never idle).
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /** The most bytes of headers a first request may have before it is answered 431. @default {65536} */
  maxHeaderBytes?: number;
  /** Where one-line warnings go, at most five of a kind a minute. @default {console.error} */
  warn?: (line: string) => void;
}

/** The end of a request's headers. */
const HEADERS_END = new Uint8Array([13, 10, 13, 10]);
/** The room first made for a request's headers (grown, by doubling, up to the limit). */
const HEAD_START_BYTES = 4 * 1024;
/**
 * How long a connection whose client ended its sending is kept once nothing
 * moves: long enough for an answer being made, and no longer (such a client
 * reads until the connection closes, which a kept-alive one would not).
 */
const ENDED_IDLE_MS = 5_000;
/** Bytes moved at a time each way. */
const PIPE_CHUNK_BYTES = 32 * 1024;

/** One admitted connection, and the one to the HTTP server once it has one. */
interface Passage {
  client: ServerConn;
  who: string;
  inner: Deno.TcpConn | null;
  /** When a byte last went either way (or the connection opened). */
  activeAt: number;
  /** The client ended its sending (half-close): it awaits only the answer to what it sent. */
  clientEnded: boolean;
}

/**
 * The tracker's HTTP port, in front of an HTTP server listening on loopback.
 *
 * @example
 * ```ts
 * const door = await FrontDoor.open({ address: { host: "0.0.0.0", port: 8080 }, inner });
 * // In the inner server's handler:
 * const client = door.clientOf(info.remoteAddr as Deno.NetAddr);
 * // ... later
 * await door.close();
 * ```
 */
export class FrontDoor {
  /** The address the port is bound to. */
  readonly address: Address;
  readonly #listener: ServerListener;
  readonly #options: FrontDoorOptions;
  readonly #warnings: WarningLimiter;
  readonly #passages = new Set<Passage>();
  readonly #perAddress = new AddressCounts();
  /**
   * Each passage's client, by the local address of its connection to the HTTP
   * server (`host:port`): the port alone would not do, as anyone on this
   * machine may connect to the server from another loopback address (say,
   * 127.0.0.2) with the port of a passage's connection.
   */
  readonly #clients = new Map<string, Deno.NetAddr>();
  readonly #served = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  readonly #accepting: Promise<void>;
  readonly #sweeper: ReturnType<typeof setInterval>;

  private constructor(listener: ServerListener, options: FrontDoorOptions) {
    this.#listener = listener;
    this.#options = options;
    const warn = options.warn ?? ((line: string) => console.error(line));
    this.#warnings = new WarningLimiter((line) => warn(`warning: http: ${line}`));
    const bound = listener.addr as Deno.NetAddr;
    this.address = { host: bound.hostname, port: bound.port };
    this.#accepting = acceptEach(listener, (client) => this.#admit(client), {
      signal: this.#closing.signal,
      warn: (line) => this.#warnings.warn("accept", line),
    });
    const idleMs = this.#idleTimeoutMs;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(idleMs / 4, 1000));
  }

  /** Listens on `options.address`; throws IO, naming the address, when it cannot. */
  static async open(options: FrontDoorOptions): Promise<FrontDoor> {
    const listener = options.tls
      ? await listenTls(options.address, options.tls, {
        alpnProtocols: ["h2", "http/1.1"],
        allowHalfOpen: true,
      })
      : Deno.listen({ hostname: options.address.host, port: options.address.port });
    return new FrontDoor(listener, options);
  }

  /**
   * The client of the request that reached the HTTP server from `remote` (the
   * remote address it sees): undefined for a connection that did not come
   * through this door.
   */
  clientOf(remote: Deno.NetAddr): Deno.NetAddr | undefined {
    return this.#clients.get(`${remote.hostname}:${remote.port}`);
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.#passages.size;
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    clearInterval(this.#sweeper);
    closeQuietly(this.#listener);
    for (const passage of this.#passages) this.#shut(passage);
    await this.#accepting;
    await Promise.allSettled(this.#served);
  }

  get #idleTimeoutMs(): number {
    return this.#options.idleTimeoutMs ?? 60_000;
  }

  /** Serves a new connection, or closes it at once if there are too many. */
  #admit(client: ServerConn): void {
    const host = (client.remoteAddr as Deno.NetAddr).hostname;
    const most = this.#options.maxConnections ?? 1024;
    if (this.#passages.size >= most) {
      this.#warnings.warn(
        "full",
        `${host}: ${most} connections open, the most the HTTP port keeps; closed one more`,
      );
      closeQuietly(client);
      return;
    }
    const open = this.#perAddress.of(host);
    const limit = this.#options.maxConnectionsPerAddress ?? 64;
    if (open >= limit) {
      this.#warnings.warn(
        "refused",
        `${host}: ${limit} connections open, the most one address may hold; closed one more`,
      );
      closeQuietly(client);
      return;
    }
    this.#perAddress.add(host);
    const passage: Passage = {
      client,
      who: host,
      inner: null,
      activeAt: performance.now(),
      clientEnded: false,
    };
    this.#passages.add(passage);
    const served = this.#serve(passage).catch(() => {}).finally(() => {
      this.#shut(passage);
      this.#passages.delete(passage);
      this.#served.delete(served);
      this.#perAddress.remove(host);
    });
    this.#served.add(served);
  }

  /**
   * Takes the first request's headers within the deadline, then pipes the
   * connection to the HTTP server both ways until either side ends it.
   */
  async #serve(passage: Passage): Promise<void> {
    const { client } = passage;
    const timeoutMs = this.#options.headerTimeoutMs ?? 10_000;
    let secured = !client.handshake;
    const late = setTimeout(() => {
      this.#warnings.warn(
        "headers",
        `${passage.who}: no ${secured ? "request headers" : "TLS handshake"} within ` +
          `${timeoutMs} ms, closed`,
      );
      if (secured) void answer(client, 408, "Request Timeout");
      else closeQuietly(client);
    }, timeoutMs);
    let head: Uint8Array | null;
    try {
      if (client.handshake) {
        await client.handshake();
        secured = true;
      }
      head = await this.#readHead(passage);
    } finally {
      clearTimeout(late);
    }
    if (head === null || this.#closing.signal.aborted) return;
    const { host, port } = this.#options.inner;
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: host, port });
    } catch (error) {
      // Not the client's doing: every connection fails so until the tracker is restarted (or
      // the server is closing with the door, which needs no warning).
      if (this.#closing.signal.aborted) throw error;
      this.#warnings.warn(
        "inner",
        `${passage.who}: cannot reach the HTTP server behind the port (${host}:${port}): ` +
          `${toShoalError(error).message}; closed (restart the tracker if this goes on)`,
      );
      throw error;
    }
    passage.inner = inner;
    const from = inner.localAddr as Deno.NetAddr;
    const key = `${from.hostname}:${from.port}`;
    const who = client.remoteAddr as Deno.NetAddr;
    this.#clients.set(key, who);
    try {
      // A closing door may have shut the passage while it connected.
      if (this.#closing.signal.aborted) return;
      await writeAll(inner, head);
      // The server closing its side (after a `Connection: close` answer, say) ends the passage.
      const toClient = this.#pipe(passage, inner, client).finally(() => this.#shut(passage));
      await this.#pipe(passage, client, inner);
      // The client sent all it will, and awaits its answer. Not passed on: Deno.serve would drop
      // an answer still being made. The passage ends when the server closes, or once quiet.
      passage.clientEnded = true;
      passage.activeAt = performance.now();
      await toClient;
    } finally {
      // Unless the port was taken again already, by a newer passage.
      if (this.#clients.get(key) === who) this.#clients.delete(key);
    }
  }

  /**
   * Reads until the end of the first request's headers: all that was read,
   * or null when the client ended, or sent more headers than allowed (then
   * answered 431).
   */
  async #readHead(passage: Passage): Promise<Uint8Array | null> {
    const most = this.#options.maxHeaderBytes ?? 64 * 1024;
    // Grown by doubling, not by each read: a client sending a byte at a time would otherwise
    // have the whole head copied at every byte. One byte over the limit is room enough to say so.
    let head = new Uint8Array(Math.min(HEAD_START_BYTES, most + 1));
    let length = 0;
    // Each read takes at least one byte, and past `most` bytes the loop ends.
    while (length <= most) {
      if (length === head.byteLength) {
        const grown = new Uint8Array(Math.min(head.byteLength * 2, most + 1));
        grown.set(head);
        head = grown;
      }
      const read = await passage.client.read(head.subarray(length)).catch(() => null);
      if (read === null) return null;
      passage.activeAt = performance.now();
      const searchFrom = Math.max(0, length - (HEADERS_END.byteLength - 1));
      length += read;
      const end = indexOf(head.subarray(0, length), HEADERS_END, searchFrom);
      // Headers that ended within the limit pass; over it, even in the read that ended them, not.
      if (end >= 0 && end + HEADERS_END.byteLength <= most) return head.subarray(0, length);
      if (end >= 0) break;
    }
    this.#warnings.warn("large", `${passage.who}: request headers over ${most} bytes, closed`);
    await answer(passage.client, 431, "Request Header Fields Too Large");
    return null;
  }

  /** Moves bytes from `from` to `to` until `from` ends or either fails. */
  async #pipe(
    passage: Passage,
    from: { read(into: Uint8Array): Promise<number | null> },
    to: { write(bytes: Uint8Array): Promise<number>; writable?: WritableStream<Uint8Array> },
  ): Promise<void> {
    const buffer = new Uint8Array(PIPE_CHUNK_BYTES);
    // Ends when either side closes: the idle sweep and `close` close both.
    while (true) {
      const read = await from.read(buffer).catch(() => null);
      if (read === null) return;
      passage.activeAt = performance.now();
      try {
        await writeAll(to, buffer.subarray(0, read));
      } catch {
        return;
      }
      passage.activeAt = performance.now();
    }
  }

  /** Closes connections that moved no byte either way for the idle timeout. */
  #sweep(): void {
    const idleMs = this.#idleTimeoutMs;
    const now = performance.now();
    for (const passage of this.#passages) {
      // Before the headers, the header deadline applies.
      if (passage.inner === null) continue;
      const quietMs = passage.clientEnded ? Math.min(idleMs, ENDED_IDLE_MS) : idleMs;
      if (now - passage.activeAt <= quietMs) continue;
      // No warning: a browser leaves its kept-alive connections idle as a matter of course.
      this.#shut(passage);
    }
  }

  /** Closes both sides of a passage. */
  #shut(passage: Passage): void {
    closeQuietly(passage.client);
    if (passage.inner) closeQuietly(passage.inner);
  }
}

/** Answers `status` with a connection's last bytes, then closes it. */
async function answer(conn: ServerConn, status: number, reason: string): Promise<void> {
  const body = `${reason}\n`;
  const response = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
  try {
    await writeAll(conn, new TextEncoder().encode(response));
  } catch {
    // Gone already.
  } finally {
    closeQuietly(conn);
  }
}

/** Where `needle` first occurs in `haystack` at or after `from`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const last = haystack.byteLength - needle.byteLength;
  outer: for (let at = from; at <= last; at++) {
    for (let i = 0; i < needle.byteLength; i++) {
      if (haystack[at + i] !== needle[i]) continue outer;
    }
    return at;
  }
  return -1;
}
