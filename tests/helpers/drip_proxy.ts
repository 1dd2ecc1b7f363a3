/**
 * A hostile source for tests: an in-process TCP proxy in front of an honest
 * server that lets its first replies through whole (say `hello` and `have`)
 * and then drips what the server sends one byte at a time, never silent for
 * long, so only a deadline can tell it from a slow but honest source.
 */
import { TcpForwarder, writeAll } from "./proxy.ts";

/** Options of {@link DripProxy}. */
export interface DripProxyOptions {
  /** The honest server behind it. */
  target: { hostname: string; port: number };
  /** Frames of each connection passed through whole before the dripping starts. */
  passFrames: number;
  /** The wait before each dripped byte, in milliseconds. */
  everyMs: number;
}

/**
 * A running drip proxy on 127.0.0.1, port 0; close it (or `await using` it)
 * to cut every connection and stop every drip.
 *
 * @example
 * ```ts
 * await using dripper = new DripProxy({ target, passFrames: 1, everyMs: 50 });
 * // ... list `dripper.address` as a source ...
 * ```
 */
export class DripProxy implements AsyncDisposable {
  readonly #options: DripProxyOptions;
  readonly #forwarder: TcpForwarder;
  #dripped = 0;

  constructor(options: DripProxyOptions) {
    this.#options = options;
    this.#forwarder = new TcpForwarder(
      { listen: { hostname: "127.0.0.1", port: 0 }, target: options.target },
      (client, server) =>
        Promise.all([this.#copy(client, server), this.#drip(server, client)]).then(() => {}),
    );
  }

  /** `host:port` to list it as a source at. */
  get address(): string {
    return `127.0.0.1:${this.#forwarder.addr.port}`;
  }

  /** Bytes dripped so far, over every connection. */
  get dripped(): number {
    return this.#dripped;
  }

  /** Client to server: untouched. */
  async #copy(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        await writeAll(to, buffer.subarray(0, n));
      }
    } catch {
      // Reset, or closed by close().
    }
    this.#forwarder.drop(from);
    this.#forwarder.drop(to);
  }

  /** Server to client: the first frames whole, then a byte at a time. */
  async #drip(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let queued: Uint8Array = new Uint8Array(0);
    let framesLeft = this.#options.passFrames;
    let reading: Promise<number | null> | null = null;
    try {
      while (!this.#forwarder.closed) {
        if (!reading) {
          reading = from.read(buffer);
          // It may fail while a byte is being dripped, before anyone awaits it.
          reading.catch(() => {});
        }
        if (framesLeft > 0 || queued.length === 0) {
          const n = await reading;
          reading = null;
          if (n === null) return;
          queued = append(queued, buffer.subarray(0, n));
        }
        // Whole frames while some are still to pass: a 4-byte length, then that many bytes.
        while (framesLeft > 0 && queued.length >= 4) {
          const end = 4 + new DataView(queued.buffer, queued.byteOffset).getUint32(0);
          if (queued.length < end) break;
          await writeAll(to, queued.subarray(0, end));
          queued = queued.slice(end);
          framesLeft--;
        }
        if (framesLeft > 0 || queued.length === 0) continue;
        await new Promise((resolve) => setTimeout(resolve, this.#options.everyMs));
        if (this.#forwarder.closed) return;
        await writeAll(to, queued.subarray(0, 1));
        queued = queued.slice(1);
        this.#dripped++;
      }
    } catch {
      // Reset, or closed by close().
    } finally {
      this.#forwarder.drop(from);
      this.#forwarder.drop(to);
      await reading?.catch(() => null);
    }
  }

  /** Stops listening, cuts every connection, and waits for every drip to end. */
  close(): Promise<void> {
    return this.#forwarder.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function append(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
