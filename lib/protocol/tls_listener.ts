import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import type { Address } from "./address.ts";
import type { TlsIdentity } from "./tls.ts";

/**
 * A connection as {@link ProtocolServer} uses it: a `Deno.Conn` is one; a
 * TLS connection from {@link listenTls} is one whose TLS starts only when
 * `handshake` is called, so it can be refused while still plain TCP.
 */
export interface ServerConn {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  /** Reads into `into`: the number of bytes read, or null at the end. */
  read(into: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes` (a TLS connection from {@link listenTls}: all of them). */
  write(bytes: Uint8Array): Promise<number>;
  /** Where large writes go, when the connection has such a stream. */
  readonly writable?: WritableStream<Uint8Array>;
  /** Closes the socket at once, whatever stage it is at. */
  close(): void;
  /** Starts TLS and settles when the handshake does (TLS connections only). */
  handshake?(): Promise<void>;
}

/** What {@link ProtocolServer} accepts connections from: a `Deno.Listener` is one. */
export interface ServerListener {
  readonly addr: Deno.Addr;
  /** The next connection; rejects with `Deno.errors.BadResource` once closed. */
  accept(): Promise<ServerConn>;
  close(): void;
}

/** Options of {@link listenTls}. */
export interface TlsListenOptions {
  /** Offered in the handshake (the tracker's HTTP port offers `h2`, then `http/1.1`). */
  alpnProtocols?: string[];
  /**
   * A client's end of its sending (TLS close_notify, then FIN) ends only
   * what `read` gives, and the connection may still write until it is
   * closed: a client that sends its request and shuts its sending side
   * still gets its answer. Without it, the connection closes at the client's end.
   * @default {false}
   */
  allowHalfOpen?: boolean;
}

/** Closes a connection or listener, whatever state it is in (one closed already stays so). */
export function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch {
    // Already closed.
  }
}

/** How long a closing connection may take to say so before its socket is closed all the same. */
const CLOSE_NOTIFY_MS = 1000;

/** Bytes read ahead of the reader before the socket is paused. */
const READ_AHEAD_BYTES = 64 * 1024;

/**
 * Listens for TLS connections with `node:tls` on `node:net`, rather than
 * `Deno.listenTls`: Deno cannot close a TLS socket whose client never
 * finishes the handshake, or stops reading, until that client lets go
 * (denoland/rustls-tokio-stream waits for the handshake on drop), so one
 * host could hold any number of sockets open. Here every socket closes at
 * once, at any stage, and a connection is plain TCP (no TLS state) until
 * its server decides to serve it. `alpnProtocols` are offered in the
 * handshake (the tracker's HTTP port offers `h2`, then `http/1.1`).
 *
 * @example
 * ```ts
 * const listener = await listenTls({ host: "127.0.0.1", port: 0 }, identity);
 * const conn = await listener.accept();
 * await conn.handshake?.();
 * ```
 */
export async function listenTls(
  address: Address,
  identity: TlsIdentity,
  options: TlsListenOptions = {},
): Promise<ServerListener> {
  const context = tls.createSecureContext({ cert: identity.certificate, key: identity.key });
  // Paused: nothing is read from a socket before it is served, or refused.
  const server = net.createServer({
    pauseOnConnect: true,
    allowHalfOpen: options.allowHalfOpen ?? false,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return new NodeTlsListener(server, context, options);
}

class NodeTlsListener implements ServerListener {
  readonly addr: Deno.NetAddr;
  readonly #server: net.Server;
  readonly #context: tls.SecureContext;
  readonly #options: TlsListenOptions;
  readonly #queue: net.Socket[] = [];
  #waiting: { resolve: (conn: ServerConn) => void; reject: (error: Error) => void } | null = null;
  #closed = false;

  constructor(server: net.Server, context: tls.SecureContext, options: TlsListenOptions) {
    this.#server = server;
    this.#context = context;
    this.#options = options;
    const bound = server.address() as net.AddressInfo;
    this.addr = { transport: "tcp", hostname: bound.address, port: bound.port };
    server.on("connection", (socket: net.Socket) => {
      // A reset before the socket is served must not become an uncaught error.
      socket.on("error", () => {});
      // Replies go out as written, as the client's requests do (client.ts). With Nagle's
      // algorithm on, a reply written while the handshake's last record (TLS 1.3's session
      // ticket) is unacknowledged waits for the client's delayed ACK: 40 ms on Linux.
      socket.setNoDelay(true);
      const waiting = this.#waiting;
      this.#waiting = null;
      if (waiting) waiting.resolve(new NodeTlsConn(socket, this.#context, this.#options));
      else this.#queue.push(socket);
    });
    // A failed accept (say, out of descriptors) reaches the caller's accept, which backs off and
    // warns; node keeps listening.
    server.on("error", (error: Error) => {
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting?.reject(error);
    });
  }

  accept(): Promise<ServerConn> {
    const socket = this.#queue.shift();
    if (socket) return Promise.resolve(new NodeTlsConn(socket, this.#context, this.#options));
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    return new Promise((resolve, reject) => this.#waiting = { resolve, reject });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#queue.splice(0)) socket.destroy();
    this.#waiting?.reject(new Deno.errors.BadResource("listener closed"));
    this.#waiting = null;
  }
}

/** One accepted socket: plain TCP until `handshake`, then TLS; closable at any stage. */
class NodeTlsConn implements ServerConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  readonly #raw: net.Socket;
  readonly #context: tls.SecureContext;
  readonly #options: TlsListenOptions;
  #tls: tls.TLSSocket | null = null;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #paused = false;
  /** No more bytes will arrive. */
  #ended = false;
  #closed = false;
  #secure = false;
  #wakeReader: (() => void) | null = null;
  readonly #failWrites = new Set<(error: Error) => void>();

  constructor(raw: net.Socket, context: tls.SecureContext, options: TlsListenOptions) {
    this.#raw = raw;
    this.#context = context;
    this.#options = options;
    this.remoteAddr = {
      transport: "tcp",
      hostname: raw.remoteAddress ?? "",
      port: raw.remotePort ?? 0,
    };
    this.localAddr = {
      transport: "tcp",
      hostname: raw.localAddress ?? "",
      port: raw.localPort ?? 0,
    };
  }

  handshake(): Promise<void> {
    if (this.#closed || this.#tls) return Promise.reject(new Error("connection closed"));
    const socket = new tls.TLSSocket(this.#raw, {
      isServer: true,
      secureContext: this.#context,
      ALPNProtocols: this.#options.alpnProtocols,
    });
    this.#tls = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
      if (this.#buffered >= READ_AHEAD_BYTES && !this.#paused) {
        this.#paused = true;
        socket.pause();
      }
      this.#wake();
    });
    socket.on("end", () => this.#end());
    socket.on("close", () => this.close());
    // A reset, or bytes that are not TLS: the connection is over, and no error goes uncaught.
    socket.on("error", () => this.close());
    return new Promise((resolve, reject) => {
      socket.once("secure", () => {
        this.#secure = true;
        resolve();
      });
      socket.once("error", reject);
      socket.once("close", () => reject(new Error("connection closed during the TLS handshake")));
    });
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
    }
    let read = 0;
    while (read < into.byteLength && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const taken = Math.min(chunk.byteLength, into.byteLength - read);
      into.set(chunk.subarray(0, taken), read);
      read += taken;
      if (taken === chunk.byteLength) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(taken);
    }
    this.#buffered -= read;
    if (this.#paused && this.#buffered < READ_AHEAD_BYTES) {
      this.#paused = false;
      this.#tls?.resume();
    }
    return read;
  }

  write(bytes: Uint8Array): Promise<number> {
    const socket = this.#tls;
    if (!socket || this.#closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        this.#failWrites.delete(fail);
        reject(error);
      };
      this.#failWrites.add(fail);
      // Settles once the bytes are taken (encrypted, queued): the caller may then reuse its buffer.
      socket.write(bytes, (error?: Error | null) => {
        if (!this.#failWrites.delete(fail)) return;
        if (error) reject(error);
        else resolve(bytes.byteLength);
      });
    });
  }

  /**
   * Closes the connection. One whose replies are all out says so first (TLS
   * close_notify, so its client reads a clean end), within a second; any
   * other, say one whose client stopped reading or never handshook, is
   * closed at once.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#end();
    for (const fail of [...this.#failWrites]) fail(new Error("connection closed"));
    const socket = this.#tls;
    const destroy = () => {
      socket?.destroy();
      this.#raw.destroy();
    };
    if (!socket || !this.#secure || socket.destroyed || socket.writableLength > 0) return destroy();
    const timer = setTimeout(destroy, CLOSE_NOTIFY_MS);
    socket.end(() => {
      clearTimeout(timer);
      destroy();
    });
  }

  #end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = null;
    wake?.();
  }
}
