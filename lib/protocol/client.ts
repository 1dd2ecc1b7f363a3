import { type Address, formatAddress } from "./address.ts";
import { isErrorCode, ShoalError, toShoalError } from "./errors.ts";
import { encodeFrame, FrameReader } from "./frame.ts";
import {
  METHODS_WITH_BODY,
  type MethodTable,
  type ParamsOf,
  parseResult,
  PROTOCOL_VERSION,
  ReplyEnvelope,
  type ResultOf,
} from "./messages.ts";

/** Options of {@link ProtocolClient.connect}. */
export interface ConnectOptions {
  /** Who is calling, sent in `hello` (e.g. `shoal-peer/0.1.0`). */
  agent: string;
  /**
   * How long a connect or a single request may take, in milliseconds.
   * @default {15000}
   */
  timeoutMs?: number;
}

interface Pending {
  type: string;
  resolve: (reply: { result: unknown; body?: Uint8Array }) => void;
  reject: (error: ShoalError) => void;
}

/**
 * A connection to a tracker or a peer that sends typed requests and returns
 * their validated results. Requests may be pipelined: the server answers a
 * connection's requests in order, so several can be in flight at once.
 *
 * @example
 * ```ts
 * using tracker = await ProtocolClient.connect(address, TRACKER_METHODS, { agent });
 * const { files } = await tracker.call("lookup", { name: "plan" });
 * ```
 */
export class ProtocolClient<T extends MethodTable> implements Disposable {
  readonly address: Address;
  readonly #conn: Deno.Conn;
  readonly #table: T;
  readonly #frames: FrameReader;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #timeoutMs: number;
  readonly #pending: Pending[] = [];
  #nextId = 1;
  #closed: ShoalError | null = null;
  #reading = false;

  private constructor(conn: Deno.Conn, address: Address, table: T, timeoutMs: number) {
    this.#conn = conn;
    this.address = address;
    this.#table = table;
    this.#timeoutMs = timeoutMs;
    this.#frames = new FrameReader(conn.readable);
    this.#writer = conn.writable.getWriter();
  }

  /** Connects, says hello, and checks that both sides speak the same protocol version. */
  static async connect<T extends MethodTable>(
    address: Address,
    table: T,
    options: ConnectOptions,
  ): Promise<ProtocolClient<T>> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    let conn: Deno.TcpConn;
    try {
      conn = await withTimeout(
        Deno.connect({ hostname: address.host, port: address.port }),
        timeoutMs,
        `connecting to ${formatAddress(address)}`,
      );
    } catch (error) {
      const cause = toShoalError(error);
      throw new ShoalError(
        cause.code === "TIMEOUT" ? "TIMEOUT" : "UNREACHABLE",
        `cannot reach ${formatAddress(address)}: ${cause.message}`,
        { cause },
      );
    }
    conn.setNoDelay(true);
    const client = new ProtocolClient(conn, address, table, timeoutMs);
    try {
      const hello = await client.#request("hello", {
        protocol: PROTOCOL_VERSION,
        agent: options.agent,
      }) as { protocol: number };
      if (hello.protocol !== PROTOCOL_VERSION) {
        throw new ShoalError(
          "VERSION_MISMATCH",
          `${
            formatAddress(address)
          } speaks protocol ${hello.protocol}, this program ${PROTOCOL_VERSION}`,
        );
      }
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** Sends one request and waits for its validated result. */
  async call<K extends keyof T & string>(type: K, params: ParamsOf<T, K>): Promise<ResultOf<T, K>> {
    return parseResult(this.#table, type, await this.#request(type, params));
  }

  /** Sends a request whose reply carries raw bytes, and returns both. */
  async callWithBody<K extends keyof T & string>(
    type: K,
    params: ParamsOf<T, K>,
  ): Promise<{ result: ResultOf<T, K>; body: Uint8Array }> {
    const reply = await this.#send(type, params);
    return {
      result: parseResult(this.#table, type, reply.result),
      body: reply.body ?? new Uint8Array(),
    };
  }

  /** Whether the connection has failed or been closed. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Closes the connection; requests still in flight fail with UNREACHABLE. */
  close(): void {
    this.#fail(
      new ShoalError("UNREACHABLE", `connection to ${formatAddress(this.address)} closed`),
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async #request(type: string, params: unknown): Promise<unknown> {
    return (await this.#send(type, params)).result;
  }

  #send(type: string, params: unknown): Promise<{ result: unknown; body?: Uint8Array }> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const reply = new Promise<{ result: unknown; body?: Uint8Array }>((resolve, reject) => {
      this.#pending.push({ type, resolve, reject });
    });
    this.#writer.write(encodeFrame({ id, type, params }))
      .catch((error) => this.#fail(toShoalError(error)));
    this.#readReplies();
    const timer = setTimeout(() => {
      this.#fail(
        new ShoalError(
          "TIMEOUT",
          `${formatAddress(this.address)} did not answer "${type}" in time`,
        ),
      );
    }, this.#timeoutMs);
    return reply.finally(() => clearTimeout(timer));
  }

  /** One loop drains replies in order while requests are pending. */
  async #readReplies(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const frame = await this.#frames.readFrame();
        if (frame === null) {
          throw new ShoalError(
            "UNREACHABLE",
            `${formatAddress(this.address)} closed the connection`,
          );
        }
        const envelope = ReplyEnvelope.safeParse(frame);
        if (!envelope.success) throw new ShoalError("BAD_MESSAGE", "malformed reply");
        const pending = this.#pending.shift()!;
        const reply = envelope.data;
        if (!reply.ok) {
          const code = isErrorCode(reply.error.code) ? reply.error.code : "INTERNAL";
          pending.reject(new ShoalError(code, reply.error.message));
          continue;
        }
        if (METHODS_WITH_BODY.has(pending.type)) {
          const { length } = parseResult(this.#table, pending.type, reply.result) as {
            length: number;
          };
          pending.resolve({ result: reply.result, body: await this.#frames.readBytes(length) });
        } else {
          pending.resolve({ result: reply.result });
        }
      }
    } catch (error) {
      this.#fail(toShoalError(error));
    } finally {
      this.#reading = false;
    }
  }

  #fail(error: ShoalError): void {
    if (this.#closed) return;
    this.#closed = error;
    for (const pending of this.#pending.splice(0)) pending.reject(error);
    this.#frames.cancel();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the other side.
    }
  }
}

/** Rejects with TIMEOUT when `promise` takes longer than `ms`. */
export async function withTimeout<V>(promise: Promise<V>, ms: number, what: string): Promise<V> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShoalError("TIMEOUT", `${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
