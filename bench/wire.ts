/**
 * A minimal client of the Shoal framing for the load generator: thousands of
 * `node:net` / `node:tls` sockets (which can pick their local address, so
 * the load comes from many loopback addresses), each with its requests
 * answered in order. Also the plan and figures the generator exchanges with
 * `tracker_load.ts`.
 */
import type { Socket } from "node:net";

/** What the generator is asked to do. */
export interface LoadPlan {
  host: string;
  port: number;
  /** The tracker's certificate (PEM) for TLS; absent for plaintext. */
  certificate?: string;
  trackerPid: number;
  /** One session token per connection, seeded into the database. */
  tokens: string[];
  /** Only connect and announce, then report memory. */
  connectOnly: boolean;
  files: number;
  contentIds: string[];
  lookupSeconds: number;
  closedLoopConnections: number;
  maxLookupsPerConnection: number;
  /** Lookups per second offered in the latency phase. */
  openLoopRate: number;
  /**
   * Several tracker processes of one tracker: connection i goes to
   * `targets[i % targets.length]` (instead of host:port), and the memory
   * read is the sum of their RSS (instead of trackerPid's).
   */
  targets?: { host: string; port: number; pid: number }[];
  /** The files are already in the store: look up `files` names without publishing them. */
  skipPublish?: boolean;
  /** Where this generator's loopback source addresses start (several generators run at once). */
  addressOffset?: number;
  /**
   * Several generators at once: before its lookups, and before its open loop,
   * this one waits for the file `<gate>-lookups`, then `<gate>-open-loop`.
   */
  gate?: string;
  /** Peer set-ups (connect, hello, resume, announce) under way at most. @default {100} */
  connectingAtOnce?: number;
}

export interface Latencies {
  p50: number;
  p99: number;
  max: number;
}

/** What the generator measured. Memory in KiB, times in seconds, latencies in ms. */
export interface LoadFigures {
  rssIdleKiB: number;
  connectSeconds: number;
  /** Peers set up (connected, resumed, announced), and peers given up on after every retry. */
  connected: number;
  connectFailed: number;
  /** Set-ups tried again after a failure. */
  connectRetries: number;
  /** Failed set-up attempts by step and reason ("hello: ECONNRESET": 2). */
  connectFailures: Record<string, number>;
  /** Connections set up that were lost before the end, by reason. */
  dropped: Record<string, number>;
  rssConnectedKiB: number;
  publishSeconds: number;
  rssPublishedKiB: number;
  throughputLookups: number;
  /** Closed-loop lookups that failed (a connection lost, say). */
  throughputErrors: number;
  throughputPerSecond: number;
  throughputLatency: Latencies;
  openLoopRate: number;
  openLoopLookups: number;
  openLoopErrors: number;
  openLoopLatency: Latencies;
  /** How late the generator's own 10 ms timer ran during the latency phase. */
  generatorLag: Latencies;
  rssAfterLookupsKiB: number;
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One connection: requests out, replies matched to them in order. */
export class Wire {
  readonly #socket: Socket;
  readonly #pending: Pending[] = [];
  #buffer: Uint8Array = new Uint8Array(0);
  #nextId = 1;
  #lastActive = performance.now();
  #failed: Error | null = null;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    socket.on("error", (error: Error) => this.#fail(error));
    socket.on("close", () => this.#fail(new Error("the tracker closed the connection")));
  }

  /** Why the connection failed or was closed, or null while it is up. */
  get failure(): Error | null {
    return this.#failed;
  }

  /** Milliseconds since the last request went out, or 0 while one is outstanding. */
  idleSince(now: number): number {
    return this.#pending.length > 0 || this.#failed ? 0 : now - this.#lastActive;
  }

  request(type: string, params: unknown): Promise<unknown> {
    if (this.#failed) return Promise.reject(this.#failed);
    const body = encoder.encode(JSON.stringify({ id: this.#nextId++, type, params }));
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(body, 4);
    this.#lastActive = performance.now();
    const reply = new Promise<unknown>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    });
    this.#socket.write(frame);
    return reply;
  }

  close(): void {
    this.#failed ??= new Error("closed");
    this.#socket.destroy();
  }

  #receive(chunk: Uint8Array): void {
    if (this.#buffer.length === 0) {
      this.#buffer = chunk;
    } else {
      const joined = new Uint8Array(this.#buffer.length + chunk.length);
      joined.set(this.#buffer);
      joined.set(chunk, this.#buffer.length);
      this.#buffer = joined;
    }
    while (this.#buffer.length >= 4) {
      const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
      const length = view.getUint32(0);
      if (this.#buffer.length < 4 + length) break;
      const reply = JSON.parse(decoder.decode(this.#buffer.subarray(4, 4 + length)));
      this.#buffer = this.#buffer.subarray(4 + length);
      const pending = this.#pending.shift();
      if (!pending) return this.#fail(new Error("a reply with no request outstanding"));
      if (reply.ok) pending.resolve(reply.result);
      else pending.reject(new Error(`${reply.error.code}: ${reply.error.message}`));
    }
  }

  #fail(error: Error): void {
    this.#failed ??= error;
    for (const pending of this.#pending.splice(0)) pending.reject(error);
  }
}
