/**
 * In-process TCP proxies for tests: the forwarding every one of them needs
 * ({@link TcpForwarder}), and a wiretap that records every byte it carries,
 * both ways, for tests that check what crosses the network.
 */

/** Where a {@link RecordingProxy} listens and where it forwards to. */
export interface ProxyOptions {
  /** Where to listen; port 0 picks a free one. */
  listen: { hostname: string; port: number };
  target: { hostname: string; port: number };
}

/** What a proxy does with one accepted connection and its connection to the target. */
export type Carry = (client: Deno.TcpConn, server: Deno.TcpConn) => Promise<void>;

/**
 * The plumbing every test proxy shares: accepts on `listen`, opens a
 * connection to `target` for each client, hands both to `carry`, and closes
 * both when it returns. `close` stops listening, cuts every connection and
 * waits for every `carry` to end.
 */
export class TcpForwarder implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #carry: Carry;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #connections = 0;
  #closed = false;

  constructor(options: ProxyOptions, carry: Carry) {
    this.#listener = Deno.listen({ ...options.listen, transport: "tcp" });
    this.#target = options.target;
    this.#carry = carry;
    this.#accepting = this.#accept();
  }

  /** Where it listens. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** How many connections it has accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** Whether {@link close} has begun: a carry still running should stop. */
  get closed(): boolean {
    return this.#closed;
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // The listener was closed.
      }
      this.#connections++;
      const pipe = this.#forward(client);
      this.#pipes.add(pipe);
      pipe.finally(() => this.#pipes.delete(pipe));
    }
  }

  async #forward(client: Deno.TcpConn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({ ...this.#target, transport: "tcp" });
    } catch {
      this.drop(client);
      return;
    }
    this.#conns.add(server);
    if (this.#closed) {
      this.drop(client);
      this.drop(server);
      return;
    }
    await this.#carry(client, server);
    this.drop(client);
    this.drop(server);
  }

  /** Closes one of its connections, once. */
  drop(conn: Deno.TcpConn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Stops listening, cuts every connection, and waits for its copying to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    await this.#accepting;
    for (const conn of [...this.#conns]) this.drop(conn);
    await Promise.all([...this.#pipes]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A running recording proxy; close it (or `await using` it) to drop every
 * connection it carries.
 *
 * @example
 * ```ts
 * await using proxy = startRecordingProxy({
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   target: { hostname: "127.0.0.1", port: tracker.port },
 * });
 * // ... point clients at proxy.address ...
 * assert.ok(!proxy.contains("secret"));
 * ```
 */
export class RecordingProxy implements AsyncDisposable {
  readonly #forwarder: TcpForwarder;
  readonly #chunks: Uint8Array[] = [];

  constructor(options: ProxyOptions) {
    this.#forwarder = new TcpForwarder(
      options,
      (client, server) =>
        Promise.all([this.#pump(client, server), this.#pump(server, client)]).then(() => {}),
    );
  }

  /** The address it listens on. */
  get hostname(): string {
    return this.#forwarder.addr.hostname;
  }

  get port(): number {
    return this.#forwarder.addr.port;
  }

  /** `hostname:port`, e.g. for `--tracker`. */
  get address(): string {
    return `${this.hostname}:${this.port}`;
  }

  /** How many connections it has accepted so far. */
  get connections(): number {
    return this.#forwarder.connections;
  }

  /** Every byte recorded so far, both directions, in the order the reads happened. */
  bytes(): Uint8Array {
    const all = new Uint8Array(this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let offset = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return all;
  }

  /** Whether the recorded bytes contain `needle` (as UTF-8) anywhere, even across reads. */
  contains(needle: string): boolean {
    return indexOfBytes(this.bytes(), new TextEncoder().encode(needle)) >= 0;
  }

  /** Copies one direction until it ends, recording it, then passes the end on. */
  async #pump(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        const chunk = buffer.slice(0, n);
        this.#chunks.push(chunk);
        await writeAll(to, chunk);
      }
    } catch {
      // Reset, or closed by close(): this direction is over either way.
    }
    try {
      await to.closeWrite();
    } catch {
      // The other side is already gone.
    }
  }

  /** Stops listening, cuts every connection, and waits for its copying to end. */
  close(): Promise<void> {
    return this.#forwarder.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Writes all of `bytes`, however many writes it takes. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Starts a {@link RecordingProxy}; it listens before this returns. */
export function startRecordingProxy(options: ProxyOptions): RecordingProxy {
  return new RecordingProxy(options);
}

/** The first index of `needle` in `haystack`, or -1. */
export function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return 0;
  const first = needle[0];
  const last = haystack.length - needle.length;
  outer: for (
    let i = haystack.indexOf(first);
    i >= 0 && i <= last;
    i = haystack.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}
