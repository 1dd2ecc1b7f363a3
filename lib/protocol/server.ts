import { acceptEach } from "./accept_backoff.ts";
import { AddressCounts } from "./address_counts.ts";
import {
  type Address,
  formatAddress,
  isAddressInUse,
  isAddressNotAvailable,
  notAvailableHere,
} from "./address.ts";
import type { TlsIdentity } from "./tls.ts";
import { ShoalError, toShoalError } from "./errors.ts";
import { encodeFrame, FrameReader, MAX_FRAME_BYTES, writeAll } from "./frame.ts";
import {
  type MethodTable,
  type ParamsOf,
  parseRequest,
  PROTOCOL_VERSION,
  RequestError,
  type ResultOf,
} from "./messages.ts";
import { closeQuietly, listenTls, type ServerConn, type ServerListener } from "./tls_listener.ts";
import { WarningLimiter } from "./warning_limiter.ts";

/** A result followed on the wire by raw bytes (see `METHODS_WITH_BODY`). */
export class WithBody<R> {
  constructor(
    readonly result: R,
    readonly body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    /** Called once the body is on the wire or abandoned, e.g. to reuse its buffer. */
    readonly written?: () => void,
  ) {}
}

/** What a handler knows of the connection it serves. */
export interface Connection<S> {
  readonly remote: Address;
  readonly local: Address;
  /** Per-connection state, e.g. the logged-in user. */
  state: S;
  /**
   * How the client has read what was written to it: the bytes of the writes
   * done, and the milliseconds writes have waited for it (the one under way
   * too, to now; on `performance.now`'s clock). A write waits only while the
   * sockets' buffers are full, for the client to read, so bytes per such
   * millisecond are the pace it reads at (a client reading fast never waits).
   * `writing`: the write under way, its size and wait so far (its bytes are
   * counted once it is done).
   */
  readonly wrote: { bytes: number; ms: number; writing?: { bytes: number; ms: number } };
  /** Closes the connection from the server side. */
  close(): void;
}

/** One handler per request type except `hello`, which the server answers itself. */
export type Handlers<T extends MethodTable, S> = {
  [K in Exclude<keyof T & string, "hello">]: (
    params: ParamsOf<T, K>,
    connection: Connection<S>,
  ) => Promise<ResultOf<T, K> | WithBody<ResultOf<T, K>>>;
};

/** Options of a {@link ProtocolServer}. */
export interface ProtocolServerOptions<S> {
  /** What this server answers `hello` with. */
  kind: "tracker" | "peer";
  /** Creates the state of a new connection. */
  initialState: () => S;
  /** Called once when a connection ends, however it ends. */
  onClose?: (connection: Connection<S>) => void;
  /**
   * Where one-line warnings about bad clients go. At most five of each kind
   * (refused, idle, no handshake, failed accept, ...) are written a minute;
   * the next one says how many were held back.
   * @default {console.error}
   */
  warn?: (line: string) => void;
  /**
   * A connection must finish its TLS handshake and send its `hello` within
   * this long, or it is closed (its socket really gone).
   * @default {10000}
   */
  handshakeTimeoutMs?: number;
  /**
   * TLS handshakes in progress at once. One more closes the oldest pending
   * one, so clients from many addresses that never handshake cannot use up
   * the process's file descriptors; the server never stops accepting.
   * @default {256}
   */
  maxPendingHandshakes?: number;
  /**
   * A connection that sends no complete request for this long is dropped,
   * which also ends slow-loris clients.
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /** @default {MAX_FRAME_BYTES} */
  maxFrameBytes?: number;
  /** Serve TLS with this identity; without it, plaintext. */
  tls?: TlsIdentity;
  /**
   * Connections one address may hold open at once; the next few are refused
   * with BUSY, and past those a new connection is closed as soon as it is
   * accepted (before any TLS), so one host cannot exhaust the server.
   * @default {64}
   */
  maxConnectionsPerAddress?: number;
  /**
   * Connections open at once, from everyone; one more is closed as soon as
   * it is accepted, so the process keeps descriptors for its database, its
   * files and its other ports instead of failing there.
   * @default {Infinity}
   */
  maxConnections?: number;
  /**
   * Requests of one connection handled at once. Replies still go out in
   * request order; more than one lets the next handler (say, a disk read)
   * run while a reply is being written. Only for methods whose effects do
   * not depend on each other's order.
   * @default {1}
   */
  concurrency?: number;
}

/**
 * Serves one method table over TCP: says hello, validates every request at
 * the edge, runs its handler, and answers in order. Every connection runs on
 * its own, so a slow or broken client holds up nobody else.
 *
 * @example
 * ```ts
 * const server = new ProtocolServer(PEER_METHODS, handlers, { kind: "peer", initialState: () => ({}) });
 * const bound = await server.listen({ host: "0.0.0.0", port: 0 });
 * // ... later
 * await server.close();
 * ```
 */
export class ProtocolServer<T extends MethodTable, S> {
  readonly #table: T;
  readonly #handlers: Handlers<T, S>;
  readonly #options: ProtocolServerOptions<S>;
  /** How long a connection has to finish its handshake and say hello. */
  readonly #handshakeTimeoutMs: number;
  readonly #connections = new Set<ServerConn>();
  readonly #warnings: WarningLimiter;
  /** TLS handshakes not yet settled, oldest first. */
  readonly #handshaking = new Set<ServerConn>();
  /** Ends the accept loop's wait after a failed accept early, on close. */
  readonly #closing = new AbortController();
  readonly #served = new Set<Promise<void>>();
  readonly #perAddress = new AddressCounts();
  /** What the idle sweep needs to know of each open connection. */
  readonly #activity = new Map<ServerConn, Activity>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #listener: ServerListener | null = null;
  #accepting: Promise<void> | null = null;

  constructor(table: T, handlers: Handlers<T, S>, options: ProtocolServerOptions<S>) {
    this.#table = table;
    this.#handlers = handlers;
    this.#options = options;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#warnings = new WarningLimiter((line) => (options.warn ?? console.error)(line));
  }

  /**
   * Starts listening and accepting; returns the bound address (useful with
   * port 0). TLS is served by {@link listenTls}, whose sockets close at any
   * stage; plaintext by `Deno.listen`.
   */
  async listen(address: Address): Promise<Address> {
    let listener: ServerListener;
    try {
      const { tls } = this.#options;
      listener = tls
        ? await listenTls(address, tls)
        : Deno.listen({ hostname: address.host, port: address.port });
    } catch (error) {
      const inUse = isAddressInUse(error);
      const elsewhere = !inUse && isAddressNotAvailable(error);
      const why = inUse
        ? "the port is in use (is another tracker or peer running there?)"
        : elsewhere
        ? notAvailableHere(address.host)
        : toShoalError(error).message;
      throw new ShoalError("IO", `cannot listen on ${formatAddress(address)}: ${why}`, {
        hint: inUse
          ? "pass another --port, or --port 0 for a free one"
          : elsewhere
          ? "pass --host one of this machine's addresses, or 0.0.0.0 for all of them"
          : undefined,
      });
    }
    return this.serve(listener);
  }

  /**
   * Serves the connections `listener` accepts (from {@link listenTls} when
   * `tls` is set: a connection with a `handshake` is served over TLS);
   * returns its address. {@link listen} makes the listener itself.
   */
  serve(listener: ServerListener): Address {
    this.#listener = listener;
    this.#accepting = acceptEach(listener, (conn) => this.#admit(conn), {
      signal: this.#closing.signal,
      warn: (line) => this.#warn("accept", line),
    });
    // One timer for every connection, rather than one per request and per write.
    const idleTimeoutMs = this.#options.idleTimeoutMs ?? 60_000;
    const handshakeTimeoutMs = this.#handshakeTimeoutMs;
    this.#sweeper = setInterval(
      () => this.#sweep(idleTimeoutMs, handshakeTimeoutMs),
      Math.min(idleTimeoutMs / 4, handshakeTimeoutMs / 4, 1000),
    );
    const bound = listener.addr as Deno.NetAddr;
    return { host: bound.hostname, port: bound.port };
  }

  /** How many connections are open now (handshakes included). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stops accepting, closes every open connection, and waits for their handlers to end. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#closing.abort();
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    for (const conn of this.#connections) closeQuietly(conn);
    await this.#accepting;
    await Promise.allSettled(this.#served);
  }

  /**
   * Serves a new connection, or refuses it if its address holds too many:
   * with BUSY for the first few over the limit, at once (before any TLS)
   * past those. Either way it keeps its address's slot until it is closed.
   */
  #admit(conn: ServerConn): void {
    const host = (conn.remoteAddr as Deno.NetAddr).hostname;
    const most = this.#options.maxConnections ?? Infinity;
    if (this.#connections.size >= most) {
      this.#warn(
        "full",
        `${host}: ${most} connections open, the most this process keeps (the rest of its ` +
          "open-file limit is kept for its database and files); refused one. To hold more, " +
          "raise the limit (`ulimit -n` in the shell that starts it, LimitNOFILE= under systemd) " +
          "or run another tracker process on the same PostgreSQL",
      );
      closeQuietly(conn);
      return;
    }
    const open = this.#perAddress.of(host);
    const limit = this.#options.maxConnectionsPerAddress ?? 64;
    if (open >= limit + REFUSALS_PER_ADDRESS) {
      this.#warn("refused", `${host}: too many connections, refused one`);
      closeQuietly(conn);
      return;
    }
    this.#perAddress.add(host);
    this.#connections.add(conn);
    const over = open >= limit;
    const served = (over ? this.#refuse(conn, host) : this.#serve(conn)).finally(() => {
      this.#connections.delete(conn);
      this.#served.delete(served);
      this.#perAddress.remove(host);
    });
    this.#served.add(served);
  }

  /**
   * Completes a TLS connection's handshake within the handshake deadline;
   * true when it did. Past the deadline, or when `maxPendingHandshakes`
   * newer ones are pending, the socket is closed.
   */
  async #secure(conn: ServerConn, who: string): Promise<boolean> {
    if (!conn.handshake) return true;
    const timeoutMs = this.#handshakeTimeoutMs;
    this.#handshaking.add(conn);
    if (this.#handshaking.size > (this.#options.maxPendingHandshakes ?? 256)) {
      const [oldest] = this.#handshaking;
      this.#handshaking.delete(oldest);
      this.#warn(
        "handshakes",
        `${this.#handshaking.size} TLS handshakes pending, closed the oldest`,
      );
      closeQuietly(oldest);
    }
    const timer = setTimeout(() => {
      this.#warn("handshake", `${who}: no TLS handshake within ${timeoutMs} ms, closed`);
      closeQuietly(conn);
    }, timeoutMs);
    try {
      await conn.handshake();
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      this.#handshaking.delete(conn);
    }
  }

  /**
   * Drops connections that sent no `hello` within the handshake deadline,
   * those that sent no request for the idle timeout while owed nothing
   * (which also ends slow-loris clients), and those whose client has not
   * taken a reply for as long (its receive window full).
   */
  #sweep(idleTimeoutMs: number, handshakeTimeoutMs: number): void {
    const now = performance.now();
    for (const [conn, activity] of this.#activity) {
      if (activity.greetBy !== null && now > activity.greetBy) {
        this.#warn("hello", `${activity.who}: no hello within ${handshakeTimeoutMs} ms, dropped`);
      } else if (activity.writingSince !== null && now - activity.writingSince > idleTimeoutMs) {
        this.#warn(
          "unread",
          `${activity.who}: not reading replies for ${idleTimeoutMs} ms, dropped`,
        );
      } else if (activity.replies.idle && now - activity.quietSince > idleTimeoutMs) {
        this.#warn("idle", `${activity.who}: idle for ${idleTimeoutMs} ms, dropped`);
      } else {
        continue;
      }
      this.#activity.delete(conn);
      closeQuietly(conn);
    }
  }

  async #serve(conn: ServerConn): Promise<void> {
    const greetBy = performance.now() + this.#handshakeTimeoutMs;
    const remote = addressOf(conn.remoteAddr);
    const who = formatAddress(remote);
    if (!await this.#secure(conn, who)) {
      closeQuietly(conn);
      return;
    }
    const connection: Connection<S> = {
      remote,
      local: addressOf(conn.localAddr),
      state: this.#options.initialState(),
      get wrote() {
        const since = activity.writingSince;
        if (since === null) return { bytes: activity.writtenBytes, ms: activity.writeMs };
        const waiting = performance.now() - since;
        return {
          bytes: activity.writtenBytes,
          ms: activity.writeMs + waiting,
          writing: { bytes: activity.writingBytes, ms: waiting },
        };
      },
      close: () => closeQuietly(conn),
    };
    const frames = new FrameReader(conn, {
      maxFrameBytes: this.#options.maxFrameBytes ?? MAX_FRAME_BYTES,
    });
    const replies = new ReplyQueue(this.#options.concurrency ?? 1);
    const activity: Activity = {
      who,
      replies,
      quietSince: performance.now(),
      greetBy,
      writingSince: null,
      writingBytes: 0,
      writtenBytes: 0,
      writeMs: 0,
      writing: null,
    };
    this.#activity.set(conn, activity);
    try {
      // Called right after each push, never on an empty queue: a writer always has a reply to
      // await first, so it cannot finish (and clear `writing`) before being stored here.
      await this.#readRequests(connection, frames, activity, () => {
        activity.writing ??= this.#writeReplies(conn, activity);
      });
      // Whatever was read is answered before the connection closes.
      await activity.writing;
    } finally {
      this.#activity.delete(conn);
      // Handlers still running for replies that will never go out end before the connection does.
      await replies.settled();
      try {
        this.#options.onClose?.(connection);
      } catch (error) {
        this.#warn("cleanup", `${who}: cleaning up failed: ${toShoalError(error).message}`);
      }
      await frames.cancel();
      closeQuietly(conn);
    }
  }

  /** Reads requests and starts their handlers, as far ahead as the reply queue allows. */
  async #readRequests(
    connection: Connection<S>,
    frames: FrameReader,
    activity: Activity,
    write: () => void,
  ): Promise<void> {
    const { replies } = activity;
    const session = { greeted: false, refused: false };
    try {
      while (await replies.room()) {
        const frame = await frames.readFrame();
        if (frame === null) return;
        // The writer may have stopped while this frame was read: then nothing more may start.
        if (replies.closed) return;
        activity.quietSince = performance.now();
        replies.push(this.#answer(frame, session, connection));
        // The greeting is settled synchronously, so the deadline for it ends here.
        if (session.greeted) activity.greetBy = null;
        write();
        // A refused greeting is the connection's last word: nothing after it is read, let alone run.
        if (session.refused) return;
      }
    } catch (caught) {
      const error = toShoalError(caught);
      if (error.code === "FRAME_TOO_LARGE" || error.code === "BAD_MESSAGE") {
        this.#warn("frame", `${activity.who}: ${error.message}; connection closed`);
        if (!replies.closed) {
          replies.push(Promise.resolve({ frame: errorFrame(-1, error), last: true }));
          write();
        }
      }
    }
  }

  /**
   * Validates one request and runs its handler. The checks are synchronous,
   * so the greeting is settled before the next request is read; the promise
   * never rejects: a failure becomes an error reply.
   */
  #answer(
    frame: unknown,
    session: { greeted: boolean; refused: boolean },
    connection: Connection<S>,
  ): Promise<Reply> {
    let id = -1;
    const fail = (caught: unknown): Reply => {
      const error = caught instanceof RequestError ? caught.error : toShoalError(caught);
      if (caught instanceof RequestError) id = caught.id;
      if (error.code === "INTERNAL") {
        this.#warn("internal", `${formatAddress(connection.remote)}: ${error.message}`);
      }
      // Without a hello, or after a version mismatch, nothing else can be understood.
      if (!session.greeted) session.refused = true;
      return { frame: errorFrame(id, error), last: !session.greeted };
    };
    try {
      if (!session.greeted && (frame as { type?: unknown } | null)?.type !== "hello") {
        const sentId = (frame as { id?: unknown } | null)?.id;
        if (Number.isInteger(sentId) && (sentId as number) >= 0) id = sentId as number;
        throw new ShoalError("BAD_MESSAGE", "the first request must be hello");
      }
      const request = parseRequest(this.#table, frame);
      id = request.id;
      if (!session.greeted) {
        const { protocol } = request.params as { protocol: number };
        if (protocol !== PROTOCOL_VERSION) {
          throw new ShoalError(
            "VERSION_MISMATCH",
            `this ${this.#options.kind} speaks protocol ${PROTOCOL_VERSION}, the client ${protocol}`,
          );
        }
        session.greeted = true;
        const result = { protocol: PROTOCOL_VERSION, server: this.#options.kind };
        return Promise.resolve({ frame: encodeFrame({ id, ok: true, result }) });
      }
      const handler = this.#handlers[request.type as keyof Handlers<T, S>] as (
        params: unknown,
        connection: Connection<S>,
      ) => Promise<unknown>;
      if (request.type === "hello" || !handler) {
        throw new ShoalError("BAD_MESSAGE", `unexpected ${request.type}`);
      }
      return handler(request.params, connection).then((reply) => {
        if (!(reply instanceof WithBody)) {
          return { frame: encodeFrame({ id, ok: true, result: reply }) };
        }
        try {
          return { frame: encodeFrame({ id, ok: true, result: reply.result }), body: reply };
        } catch (error) {
          reply.written?.();
          throw error;
        }
      }).catch(fail);
    } catch (caught) {
      return Promise.resolve(fail(caught));
    }
  }

  /**
   * Writes the queued replies in request order, then stops until the reader
   * starts it again. A body that fails halfway, or a reply that is the
   * connection's last, ends the connection.
   */
  async #writeReplies(conn: ServerConn, activity: Activity): Promise<void> {
    const { replies } = activity;
    const write = async (chunk: Uint8Array) => {
      // A big body (a piece of a big file: up to 64 MiB) in slices, each a write of its own: the
      // idle sweep and the upload slots judge a client by how long one write waits for it.
      for (let at = 0; at < chunk.byteLength; at += MAX_WRITE_BYTES) {
        const slice = chunk.subarray(at, at + MAX_WRITE_BYTES);
        const since = activity.writingSince = performance.now();
        activity.writingBytes = slice.byteLength;
        await writeAll(conn, slice);
        activity.writingSince = null;
        activity.writtenBytes += slice.byteLength;
        activity.writeMs += performance.now() - since;
      }
    };
    try {
      let next: Promise<Reply> | null;
      while ((next = replies.shift()) !== null) {
        const reply = await next;
        try {
          const joined = joinSmall(reply);
          if (joined) await write(joined);
          else {
            await write(reply.frame);
            // The client is counting body bytes: an error frame now would be read as data.
            if (reply.body) { for await (const chunk of reply.body.body) await write(chunk); }
          }
        } finally {
          reply.body?.written?.();
        }
        replies.written();
        // Idleness counts from the last reply out as much as from the last request in.
        if (replies.idle) activity.quietSince = performance.now();
        if (reply.last) return this.#stopWriting(conn, activity);
      }
      // Nothing queued: stop (synchronously, so a reply pushed from now on starts a new writer).
      activity.writing = null;
    } catch {
      // The connection is gone, or a body failed: either way nothing more can be sent.
      this.#stopWriting(conn, activity);
    }
  }

  #stopWriting(conn: ServerConn, activity: Activity): void {
    activity.replies.close();
    closeQuietly(conn);
  }

  /**
   * Tells a connection over the per-address limit why it is closed, without
   * waiting long; resolves once it is closed.
   */
  async #refuse(conn: ServerConn, host: string): Promise<void> {
    this.#warn("refused", `${host}: too many connections, refused one`);
    // The refusal goes out encrypted, so it too waits for the handshake, within its deadline.
    if (!await this.#secure(conn, host)) {
      closeQuietly(conn);
      return;
    }
    const message = encodeFrame({
      id: -1,
      ok: false,
      error: { code: "BUSY", message: "too many connections from your address; try again later" },
    });
    const timer = setTimeout(() => closeQuietly(conn), 1000);
    try {
      await writeAll(conn, message);
    } catch {
      // Gone already: closed below all the same.
    } finally {
      clearTimeout(timer);
      closeQuietly(conn);
    }
  }

  #warn(kind: string, line: string): void {
    this.#warnings.warn(kind, `warning: ${line}`);
  }
}

/** One connection as the idle sweep sees it. */
interface Activity {
  who: string;
  replies: ReplyQueue;
  /** When the last request arrived or the last reply went out (or the connection opened). */
  quietSince: number;
  /** When the connection is dropped if no `hello` has come by then; null once greeted. */
  greetBy: number | null;
  /** When the write in progress started, if one is. */
  writingSince: number | null;
  /** The bytes of the write in progress, if one is. */
  writingBytes: number;
  /** The bytes of the writes done on this connection. */
  writtenBytes: number;
  /** The milliseconds those writes took (waiting for the client to read). */
  writeMs: number;
  /**
   * The writer while one runs; null while none is needed. After the writer
   * has stopped for good it stays set (to its settled promise), so no other
   * starts.
   */
  writing: Promise<void> | null;
}

/** A reply ready to go out: its frame, maybe a body, maybe the connection's last word. */
interface Reply {
  frame: Uint8Array;
  body?: WithBody<unknown>;
  /** Close the connection once this reply is written. */
  last?: boolean;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * The largest single write to a client: a longer chunk goes out in writes
 * of this size, so no write waits for the client to read more than this
 * (and the sockets' buffers). A whole 16 MiB piece (a 20 GiB file's) in
 * one write waited longer than the idle timeout (60 s) for a client reading
 * below about 200 KiB/s (say, a fetch with `--max-download-rate 100KiB/s`),
 * which was then dropped as not reading.
 */
export const MAX_WRITE_BYTES = 1024 * 1024;
/**
 * Connections over its limit one address may have at once while they are
 * told BUSY (which, over TLS, waits for the handshake); more are closed at
 * once, so the refusals too hold a bounded number of sockets.
 */
const REFUSALS_PER_ADDRESS = 4;
/**
 * A reply and its one-chunk body under this size go out in one write (as
 * `writeAll` writes such a buffer: one `conn.write`, one TLS record).
 */
const JOIN_BELOW_BYTES = 64 * 1024;

function addressOf(addr: Deno.Addr): Address {
  const { hostname, port } = addr as Deno.NetAddr;
  return { host: hostname, port };
}

function errorFrame(id: number, error: ShoalError): Uint8Array {
  return encodeFrame({ id, ok: false, error: { code: error.code, message: error.message } });
}

/**
 * The replies of one connection, in request order, with at most `limit` of
 * them started and not yet written: the reader waits for room; a writer
 * runs only while there is something to write, so an idle connection holds
 * no parked writer (memory, on a tracker with thousands of peers).
 */
class ReplyQueue {
  readonly #limit: number;
  readonly #queued: Promise<Reply>[] = [];
  readonly #dropped: Promise<void>[] = [];
  #unwritten = 0;
  #closed = false;
  #wakeReader: (() => void) | null = null;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  /** True once the writer has stopped for good. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True when every reply so far has been written. */
  get idle(): boolean {
    return this.#unwritten === 0;
  }

  /** Waits until another request may start; false once the writer has stopped for good. */
  async room(): Promise<boolean> {
    while (!this.#closed && this.#unwritten >= this.#limit) {
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    return !this.#closed;
  }

  push(reply: Promise<Reply>): void {
    this.#queued.push(reply);
    this.#unwritten++;
  }

  /** The next reply in order (settling when it is ready), or null when none is queued. */
  shift(): Promise<Reply> | null {
    return this.#queued.shift() ?? null;
  }

  /** The reply taken last is on the wire. */
  written(): void {
    this.#unwritten--;
    this.#wakeUpReader();
  }

  /** The writer has stopped for good; replies still coming are dropped, their buffers returned. */
  close(): void {
    this.#closed = true;
    for (const reply of this.#queued.splice(0)) {
      this.#dropped.push(reply.then((r) => r.body?.written?.()));
    }
    this.#wakeUpReader();
  }

  /** Waits for the handlers of replies dropped by {@link close} to end. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#dropped);
  }

  #wakeUpReader(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = null;
    wake?.();
  }
}

/**
 * A reply whose body is one small chunk in hand (a small file's piece), with
 * its frame in one buffer: one write and one TLS record instead of two.
 */
function joinSmall(reply: Reply): Uint8Array | null {
  const body = reply.body?.body;
  if (!Array.isArray(body) || body.length !== 1) return null;
  const chunk = body[0] as Uint8Array;
  if (reply.frame.byteLength + chunk.byteLength >= JOIN_BELOW_BYTES) return null;
  const joined = new Uint8Array(reply.frame.byteLength + chunk.byteLength);
  joined.set(reply.frame);
  joined.set(chunk, reply.frame.byteLength);
  return joined;
}
