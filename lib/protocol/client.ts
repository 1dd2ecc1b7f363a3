import { deadline } from "../async/deadline.ts";
import { type Address, formatAddress } from "./address.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { TLS_SERVER_NAME } from "./tls.ts";
import { isErrorCode, ShoalError, toShoalError } from "./errors.ts";
import { encodeFrame, FrameReader, writeAll } from "./frame.ts";
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
  /** The kind of server expected there; another kind fails with INVALID_INPUT. */
  expect?: "tracker" | "peer";
  /**
   * Speak TLS, accepting only this certificate (PEM): the one pinned for a
   * tracker, or the one the tracker vouched for a peer. Without it, plaintext.
   */
  tls?: { certificate: string; whose: string };
  /**
   * How long a connect may take (and the `hello` after it), and how long a
   * connection with requests outstanding may stay silent before it fails with
   * TIMEOUT, in milliseconds.
   * @default {15000}
   */
  timeoutMs?: number;
  /**
   * How long the connect, the TLS handshake and the `hello` may take, when
   * that should be shorter than `timeoutMs` (say, with another address of
   * the same server to try next), in milliseconds.
   * @default {timeoutMs}
   */
  connectTimeoutMs?: number;
  /**
   * Reply bodies are read into buffers from this pool; whoever receives a
   * body gives it back with `release` once done with it.
   */
  bodyPool?: BufferPool;
  /** Paces the reading of reply bodies (a download rate limit); see `FrameReaderOptions.pace`. */
  pace?: (bytes: number) => Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** Options of one request. */
export interface CallOptions {
  /**
   * The whole reply (and its body) must be in within this many milliseconds
   * of the request reaching the head of the queue, that is of the reply
   * before it being in: a server that drips bytes just often enough to
   * never be silent still fails the connection with TIMEOUT. Without it,
   * only silence counts.
   */
  deadlineMs?: number;
}

/** Options of one request whose reply carries a body. */
export interface BodyCallOptions<R> extends CallOptions {
  /**
   * Checks the validated result before the body is read (say, that it
   * answers what was asked); what it throws fails the connection, as a
   * reply nothing later on the stream can be matched after.
   */
  checkResult?: (result: R) => void;
}

interface Pending {
  /** The id the request carried, which its reply must echo. */
  id: number;
  type: string;
  expectedLength?: number;
  deadlineMs?: number;
  checkResult?: (result: never) => void;
  /** When this request became the head of the queue (its reply is the next to come). */
  headSince: number;
  resolve: (reply: Settled) => void;
  reject: (error: ShoalError) => void;
}

/** A reply as it settles its request; `parsed` once its result was validated already. */
interface Settled {
  result: unknown;
  body?: Uint8Array;
  parsed?: true;
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
  /** Requests go out one after another: interleaved partial writes would mix their bytes. */
  #writing: Promise<void> = Promise.resolve();
  /**
   * Frames waiting for the writer: those queued while a write is under way
   * (or in one turn of the event loop, as a folder fetch asks for many
   * pieces at once) go out together in one write, not one TLS record each.
   */
  #outbox: Uint8Array[] = [];
  readonly #timeoutMs: number;
  readonly #bodyPool: BufferPool | undefined;
  readonly #pending: Pending[] = [];
  #nextId = 1;
  #closed: ShoalError | null = null;
  readonly #ended = Promise.withResolvers<ShoalError>();
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  /** When the armed watchdog fires, so a nearer deadline can re-arm it sooner. */
  #watchdogDue = Infinity;
  #lastActivity = 0;

  private constructor(conn: Deno.Conn, address: Address, table: T, options: ConnectOptions) {
    this.#conn = conn;
    this.address = address;
    this.#table = table;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#bodyPool = options.bodyPool;
    this.#frames = new FrameReader(conn, { onChunk: () => this.#touch(), pace: options.pace });
    this.#readReplies();
  }

  /** Connects, says hello, and checks that both sides speak the same protocol version. */
  static async connect<T extends MethodTable>(
    address: Address,
    table: T,
    options: ConnectOptions,
  ): Promise<ProtocolClient<T>> {
    const timeoutMs = options.connectTimeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let tcp: Deno.TcpConn;
    const connecting = Deno.connect({ hostname: address.host, port: address.port });
    try {
      tcp = await deadline(connecting, timeoutMs, {
        what: `connecting to ${formatAddress(address)}`,
      });
    } catch (error) {
      // A connection that completes after we gave up is closed, not leaked.
      connecting.then((late) => late.close(), () => {});
      const cause = toShoalError(error);
      // Deno says "Connection refused (os error 111)": plainly, as the several-address error does.
      const why = error instanceof Deno.errors.ConnectionRefused
        ? "connection refused"
        : cause.message;
      throw new ShoalError(
        cause.code === "TIMEOUT" ? "TIMEOUT" : "UNREACHABLE",
        `cannot reach ${formatAddress(address)}: ${why}`,
        { cause },
      );
    }
    tcp.setNoDelay(true);
    const where = formatAddress(address);
    const conn = options.tls ? await secure(tcp, where, options.tls, timeoutMs) : tcp;
    const client = new ProtocolClient(conn, address, table, options);
    try {
      let hello: { protocol: number; server: string };
      try {
        // A server that drips its hello holds no one up longer than a silent one.
        const reply = await client.#send(
          "hello",
          {
            protocol: PROTOCOL_VERSION,
            agent: options.agent,
          },
          undefined,
          { deadlineMs: timeoutMs },
        );
        hello = reply.result as { protocol: number; server: string };
      } catch (error) {
        const cause = toShoalError(error);
        // Whatever answers there, it is not a Shoal server (say, a web server).
        if (["BAD_MESSAGE", "FRAME_TOO_LARGE", "TIMEOUT"].includes(cause.code)) {
          throw new ShoalError(
            "UNREACHABLE",
            `${where} does not answer as a Shoal ${options.expect ?? "server"} (${cause.message})`,
            { cause },
          );
        }
        throw cause;
      }
      if (options.expect && hello.server !== options.expect) {
        throw new ShoalError(
          "INVALID_INPUT",
          `${where} is a Shoal ${hello.server}, not a ${options.expect}`,
        );
      }
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
  async call<K extends keyof T & string>(
    type: K,
    params: ParamsOf<T, K>,
    options?: CallOptions,
  ): Promise<ResultOf<T, K>> {
    return parseResult(
      this.#table,
      type,
      (await this.#send(type, params, undefined, options)).result,
    );
  }

  /**
   * Sends a request whose reply carries raw bytes, and returns both. With
   * `expectedLength`, a reply announcing any other length fails the
   * connection before a byte of the body is buffered.
   */
  async callWithBody<K extends keyof T & string>(
    type: K,
    params: ParamsOf<T, K>,
    expectedLength?: number,
    options?: BodyCallOptions<ResultOf<T, K>>,
  ): Promise<{ result: ResultOf<T, K>; body: Uint8Array }> {
    const reply = await this.#send(type, params, expectedLength, options);
    return {
      result: reply.parsed
        ? reply.result as ResultOf<T, K>
        : parseResult(this.#table, type, reply.result),
      body: reply.body ?? new Uint8Array(),
    };
  }

  /** Whether the connection has failed or been closed. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /**
   * Settles with the reason once the connection ends, even while no request
   * is outstanding (the reader watches an idle connection too).
   */
  get ended(): Promise<ShoalError> {
    return this.#ended.promise;
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

  #send(
    type: string,
    params: unknown,
    expectedLength?: number,
    options?: BodyCallOptions<never>,
  ): Promise<Settled> {
    if (this.#closed) return Promise.reject(this.#closed);
    // Encode before queuing: a request too large to send must not shift later replies.
    const id = this.#nextId++;
    let frame: Uint8Array;
    try {
      frame = encodeFrame({ id, type, params });
    } catch (error) {
      return Promise.reject(toShoalError(error));
    }
    const reply = new Promise<Settled>((resolve, reject) => {
      this.#pending.push({
        id,
        type,
        expectedLength,
        deadlineMs: options?.deadlineMs,
        checkResult: options?.checkResult,
        headSince: performance.now(),
        resolve,
        reject,
      });
    });
    if (this.#pending.length === 1) {
      this.#touch();
      this.#armForHead();
    }
    this.#outbox.push(frame);
    if (this.#outbox.length === 1) {
      this.#writing = this.#writing.then(() => this.#flush()).catch((error) =>
        this.#fail(toShoalError(error))
      );
    }
    return reply;
  }

  /** Writes every frame queued so far, small ones joined into one write. */
  #flush(): Promise<void> {
    const frames = this.#outbox;
    this.#outbox = [];
    if (frames.length === 1) return writeAll(this.#conn, frames[0]);
    let total = 0;
    for (const frame of frames) total += frame.byteLength;
    const joined = new Uint8Array(total);
    let at = 0;
    for (const frame of frames) {
      joined.set(frame, at);
      at += frame.byteLength;
    }
    return writeAll(this.#conn, joined);
  }

  /**
   * Restarts the inactivity clock. A connection with requests outstanding
   * fails with TIMEOUT only when nothing at all arrives for `timeoutMs`, so a
   * slow but steady source is never cut off because its queue is long. This
   * runs for every chunk read, so it only notes the time; one timer checks it.
   */
  #touch(): void {
    this.#lastActivity = performance.now();
    if (this.#pending.length === 0 || this.#closed) {
      // Nothing to wait for: no timer either, so an idle client never holds its process open.
      clearTimeout(this.#watchdog);
      this.#watchdog = undefined;
      this.#watchdogDue = Infinity;
    } else if (this.#watchdog === undefined) {
      this.#arm(this.#timeoutMs);
    }
  }

  /**
   * A new head of the queue may have a deadline nearer than the armed
   * watchdog: re-arm only then, so a reply costs no timer in the common case.
   */
  #armForHead(): void {
    const head = this.#pending[0];
    if (!head || head.deadlineMs === undefined || this.#closed) return;
    const due = head.headSince + head.deadlineMs;
    if (due >= this.#watchdogDue) return;
    clearTimeout(this.#watchdog);
    this.#arm(due - performance.now());
  }

  #arm(delayMs: number): void {
    this.#watchdogDue = performance.now() + delayMs;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      this.#watchdogDue = Infinity;
      if (this.#pending.length === 0 || this.#closed) return;
      const now = performance.now();
      const silentMs = now - this.#lastActivity;
      if (silentMs >= this.#timeoutMs) {
        return this.#fail(
          new ShoalError(
            "TIMEOUT",
            `${formatAddress(this.address)} sent nothing for ${this.#timeoutMs} ms`,
          ),
        );
      }
      const head = this.#pending[0];
      const headLeftMs = head.deadlineMs === undefined
        ? Infinity
        : head.headSince + head.deadlineMs - now;
      if (headLeftMs <= 0) {
        // Replies come in order: the late one cannot be skipped, so the connection goes.
        return this.#fail(
          new ShoalError(
            "TIMEOUT",
            `${
              formatAddress(this.address)
            } took over ${head.deadlineMs} ms to answer a ${head.type} request`,
          ),
        );
      }
      this.#arm(Math.min(this.#timeoutMs - silentMs, headLeftMs));
    }, Math.max(0, delayMs));
  }

  /**
   * One loop reads replies in order for the life of the connection, so a
   * server that goes away is noticed at once, not at the next request.
   */
  async #readReplies(): Promise<void> {
    try {
      while (!this.#closed) {
        const frame = await this.#frames.readFrame();
        if (frame === null) {
          throw new ShoalError(
            "UNREACHABLE",
            `${formatAddress(this.address)} closed the connection`,
          );
        }
        if (this.#pending.length === 0) {
          throw new ShoalError("BAD_MESSAGE", "a reply arrived with no request outstanding");
        }
        const envelope = ReplyEnvelope.safeParse(frame);
        if (!envelope.success) throw new ShoalError("BAD_MESSAGE", "malformed reply");
        const reply = envelope.data;
        // The head stays pending until its body is in, so a failure mid-body rejects it too.
        const pending = this.#awaiting(reply);
        let settle: () => void;
        if (!reply.ok) {
          const code = isErrorCode(reply.error.code) ? reply.error.code : "INTERNAL";
          settle = () => pending.reject(new ShoalError(code, reply.error.message));
        } else if (METHODS_WITH_BODY.has(pending.type)) {
          const result = parseResult(this.#table, pending.type, reply.result);
          const { length } = result as { length: number };
          if (pending.expectedLength !== undefined && length !== pending.expectedLength) {
            throw new ShoalError(
              "BAD_MESSAGE",
              `${
                formatAddress(this.address)
              } announced ${length} bytes where ${pending.expectedLength} were expected`,
            );
          }
          pending.checkResult?.(result as never);
          const body = await this.#frames.readBytes(length, this.#bodyPool);
          settle = () => pending.resolve({ result, body, parsed: true });
        } else {
          settle = () => pending.resolve({ result: reply.result });
        }
        this.#pending.shift();
        settle();
        this.#touch();
        if (this.#pending.length > 0) {
          this.#pending[0].headSince = performance.now();
          this.#armForHead();
        }
      }
    } catch (error) {
      this.#fail(toShoalError(error));
    }
  }

  /**
   * The request a reply answers: the oldest one outstanding, whose id it must
   * carry, since a server answers in order. A reply with id -1 is the
   * server's last word on a request it could not read (or a connection it
   * refuses): the connection fails with the error it carries. Any other id
   * means the two sides no longer agree on what answers what, and nothing
   * later on the stream can be trusted: the connection fails with BAD_MESSAGE.
   */
  #awaiting(reply: ReplyEnvelope): Pending {
    const head = this.#pending[0];
    if (reply.id === head.id) return head;
    const where = formatAddress(this.address);
    if (reply.id === -1 && !reply.ok) {
      const code = isErrorCode(reply.error.code) ? reply.error.code : "INTERNAL";
      throw new ShoalError(code, reply.error.message);
    }
    const known = this.#pending.some((pending) => pending.id === reply.id);
    throw new ShoalError(
      "BAD_MESSAGE",
      known
        ? `${where} answered request ${reply.id} before request ${head.id}, out of order`
        : `${where} answered with id ${reply.id}, which no request outstanding carries (expected ${head.id})`,
    );
  }

  #fail(error: ShoalError): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#ended.resolve(error);
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    this.#watchdogDue = Infinity;
    for (const pending of this.#pending.splice(0)) pending.reject(error);
    this.#frames.cancel();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the other side.
    }
  }
}

/**
 * Upgrades a TCP connection to TLS, trusting exactly `expected.certificate`
 * (self-signed, so it is its own trust anchor) for the name every Shoal
 * certificate carries.
 */
async function secure(
  tcp: Deno.TcpConn,
  where: string,
  expected: { certificate: string; whose: string },
  timeoutMs: number,
): Promise<Deno.Conn> {
  try {
    const conn = await Deno.startTls(tcp, {
      hostname: TLS_SERVER_NAME,
      caCerts: [expected.certificate],
    });
    await deadline(conn.handshake(), timeoutMs, { what: `the TLS handshake with ${where}` });
    return conn;
  } catch (error) {
    try {
      tcp.close();
    } catch {
      // Closed with the failed handshake.
    }
    const message = (error as Error).message;
    if (/certificate/i.test(message)) {
      throw new ShoalError(
        "CERTIFICATE_MISMATCH",
        `${where} presented a certificate other than ${expected.whose} (${message})`,
      );
    }
    // A process that accepts but never answers (stopped, hung, overloaded) is not a
    // plaintext one: only a handshake that failed suggests --insecure-plaintext.
    if (toShoalError(error).code === "TIMEOUT") {
      throw new ShoalError("TIMEOUT", `no answer from ${where}: ${message}`);
    }
    throw new ShoalError(
      "UNREACHABLE",
      `no TLS from ${where} (${message}); is it running with --insecure-plaintext?`,
    );
  }
}
