/**
 * Clients that open connections and never finish them: the server must
 * really close every socket, at every stage, whatever its client does, and
 * stay available to honest clients. Descriptors are counted in
 * /proc/self/fd, keeping only the TCP sockets to or from the server's port
 * (other test files may run in this process at the same time): the count
 * holds the test's client sockets as well as the server's, so every count
 * below adds the client sockets still open.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { Address } from "../../lib/protocol/address.ts";
import { createIdentity } from "../../lib/identity/certificate.ts";
import type { TlsIdentity } from "../../lib/protocol/tls.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { type MethodTable, PEER_METHODS, PROTOCOL_VERSION } from "../../lib/protocol/messages.ts";
import {
  type Handlers,
  ProtocolServer,
  type ProtocolServerOptions,
  WithBody,
} from "../../lib/protocol/server.ts";
import { eventually } from "../helpers/eventually.ts";

const METHODS = {
  hello: PEER_METHODS.hello,
  ping: PEER_METHODS.ping,
  piece: PEER_METHODS.piece,
} satisfies MethodTable;
type Methods = typeof METHODS;
/** Far more than any socket buffer holds. */
const BIG = new Uint8Array(32 * 1024 * 1024);
const HANDLERS: Handlers<Methods, null> = {
  ping: () => Promise.resolve({ username: null, time: Date.now() }),
  piece: ({ index }) => Promise.resolve(new WithBody({ index, length: BIG.length }, [BIG])),
};
const LOCALHOST: Address = { host: "127.0.0.1", port: 0 };
const DEADLINE_MS = 200;

/** A record header announcing a 200-byte ClientHello, and only the first bytes of it. */
const PARTIAL_CLIENT_HELLO = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00]);
/** What a web browser pointed at the port would send instead of a ClientHello. */
const NOT_TLS = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: shoal\r\n\r\n");

/** The socket inodes of every TCP socket whose local or remote port is `port`. */
function socketInodesOnPort(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const portOf = (endpoint: string) => parseInt(endpoint.split(":")[1], 16);
      if (portOf(fields[1]) === port || portOf(fields[2]) === port) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** Descriptors this process holds on sockets to or from the server at `address`. */
function openDescriptors({ port }: Address): number {
  const inodes = socketInodesOnPort(port);
  let count = 0;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue; // closed between listing and reading
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && inodes.has(inode)) count++;
  }
  return count;
}

/** Waits until `condition` holds, polling every 20 ms for about 10 s. */
function waitUntil(condition: () => boolean, what: () => string): Promise<void> {
  return eventually(condition, what, { everyMs: 20 });
}

/** Waits until the descriptors open in this process are `expected`. */
function descriptorsBecome(address: Address, expected: number, why: string): Promise<void> {
  return waitUntil(
    () => openDescriptors(address) === expected,
    () => `${why}: ${openDescriptors(address)} descriptors open, expected ${expected}`,
  );
}

async function startServer(
  options: Partial<ProtocolServerOptions<null>> = {},
): Promise<{ server: ProtocolServer<Methods, null>; address: Address; warnings: string[] }> {
  const warnings: string[] = [];
  const server = new ProtocolServer(METHODS, HANDLERS, {
    kind: "peer",
    initialState: () => null,
    warn: (line) => warnings.push(line),
    handshakeTimeoutMs: DEADLINE_MS,
    ...options,
  });
  return { server, address: await server.listen(LOCALHOST), warnings };
}

function connect(address: Address, identity?: TlsIdentity): Promise<ProtocolClient<Methods>> {
  return ProtocolClient.connect(address, METHODS, {
    agent: "shoal-test/0",
    timeoutMs: 5000,
    tls: identity && { certificate: identity.certificate, whose: "the test server" },
  });
}

/** An honest client says hello (inside `connect`) and gets a ping answered, then leaves. */
async function assertServesAnHonestClient(address: Address, identity?: TlsIdentity) {
  const client = await connect(address, identity);
  try {
    assert.equal((await client.call("ping", {})).username, null);
  } finally {
    client.close();
  }
}

/** Raw TCP connections to `address`, each sent `bytes` if given, then left as they are. */
async function openRaw(address: Address, count: number, bytes?: Uint8Array) {
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: address.host, port: address.port });
    if (bytes) await conn.write(bytes);
    conns.push(conn);
  }
  return conns;
}

/** Reads until the server closes `conn` (or resets it); fails if that takes over 10 s. */
async function assertClosedByServer(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  let gaveUp = false;
  const timer = setTimeout(() => {
    gaveUp = true;
    conn.close();
  }, 10_000);
  try {
    while (await conn.read(buffer) !== null);
  } catch (error) {
    if (gaveUp) assert.fail("the server never closed the connection");
    // A reset or a TLS alert is a close too.
    assert.ok(!(error instanceof Deno.errors.BadResource), String(error));
  } finally {
    clearTimeout(timer);
  }
  assert.ok(!gaveUp, "the server never closed the connection");
}

function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns.splice(0)) {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * The baseline: descriptors open once the server runs, has served one
 * client, and the count has settled (sockets close a moment after `close`).
 */
async function warmBaseline(address: Address, identity?: TlsIdentity): Promise<number> {
  await assertServesAnHonestClient(address, identity);
  const counts: number[] = [];
  await waitUntil(
    () => {
      counts.push(openDescriptors(address));
      return counts.length >= 10 && counts.slice(-10).every((count) => count === counts.at(-1));
    },
    () => `the descriptor count to settle: ${counts.slice(-10).join(", ")}`,
  );
  return counts.at(-1)!;
}

Deno.test("ProtocolServer - plaintext connections that never say hello are really closed at the handshake deadline", async () => {
  const { server, address, warnings } = await startServer();
  const hostile: Deno.Conn[] = [];
  try {
    const baseline = await warmBaseline(address);
    hostile.push(...await openRaw(address, 6));
    // Half a frame header: a slow-loris start.
    hostile.push(...await openRaw(address, 6, new Uint8Array([0, 0])));
    for (const conn of hostile) await assertClosedByServer(conn);
    // The clients still hold their 12 sockets; the server holds none of its own.
    await descriptorsBecome(address, baseline + hostile.length, "the server released every socket");
    assert.ok(
      warnings.some((line) => /no hello within 200 ms, dropped/.test(line)),
      warnings.join("\n"),
    );
    await assertServesAnHonestClient(address);
  } finally {
    closeAll(hostile);
    await server.close();
  }
});

Deno.test("ProtocolServer - a TLS client that handshakes but never says hello is really closed at the deadline", async () => {
  const identity = await createIdentity();
  const { server, address } = await startServer({ tls: identity });
  const hostile: Deno.Conn[] = [];
  try {
    const baseline = await warmBaseline(address, identity);
    for (const tcp of await openRaw(address, 5)) {
      const tls = await Deno.startTls(tcp, { hostname: "shoal", caCerts: [identity.certificate] });
      await tls.handshake();
      hostile.push(tls);
    }
    for (const conn of hostile) await assertClosedByServer(conn);
    await descriptorsBecome(address, baseline + hostile.length, "the server released every socket");
    await assertServesAnHonestClient(address, identity);
  } finally {
    closeAll(hostile);
    await server.close();
  }
});

Deno.test("ProtocolServer - bytes that are not TLS end the connection and release its socket", async () => {
  const identity = await createIdentity();
  const { server, address } = await startServer({ tls: identity });
  const hostile: Deno.Conn[] = [];
  try {
    const baseline = await warmBaseline(address, identity);
    hostile.push(...await openRaw(address, 8, NOT_TLS));
    for (const conn of hostile) await assertClosedByServer(conn);
    await descriptorsBecome(address, baseline + hostile.length, "the server released every socket");
    await assertServesAnHonestClient(address, identity);
  } finally {
    closeAll(hostile);
    await server.close();
  }
});

Deno.test("ProtocolServer - TLS sockets that never finish the handshake are really closed at the deadline, while their client still holds them", async () => {
  const identity = await createIdentity();
  const { server, address, warnings } = await startServer({ tls: identity });
  const hostile: Deno.Conn[] = [];
  try {
    const baseline = await warmBaseline(address, identity);
    hostile.push(...await openRaw(address, 3));
    hostile.push(...await openRaw(address, 3, PARTIAL_CLIENT_HELLO));
    for (const conn of hostile) await assertClosedByServer(conn);
    // The client still holds its six sockets; the server none of its own.
    await descriptorsBecome(address, baseline + hostile.length, "the server released every socket");
    assert.ok(
      warnings.some((line) => /no TLS handshake within 200 ms, closed/.test(line)),
      warnings.join("\n"),
    );
  } finally {
    closeAll(hostile);
    await server.close();
  }
});

Deno.test("ProtocolServer - a TLS client that stops reading replies is really closed by the idle sweep", async () => {
  const identity = await createIdentity();
  const { server, address, warnings } = await startServer({ tls: identity, idleTimeoutMs: 300 });
  const hostile: Deno.Conn[] = [];
  try {
    const baseline = await warmBaseline(address, identity);
    const [tcp] = await openRaw(address, 1);
    const tls = await Deno.startTls(tcp, { hostname: "shoal", caCerts: [identity.certificate] });
    hostile.push(tls);
    await tls.write(encodeFrame({
      id: 1,
      type: "hello",
      params: { protocol: PROTOCOL_VERSION, agent: "hostile" },
    }));
    for (let index = 0; index < 2; index++) {
      await tls.write(encodeFrame({
        id: 2 + index,
        type: "piece",
        params: { contentId: "ab".repeat(32), index },
      }));
    }
    await waitUntil(
      () => warnings.some((line) => /not reading replies for 300 ms, dropped$/.test(line)),
      () => `the stuck writer to be noticed:\n${warnings.join("\n")}`,
    );
    // The client never read and still holds its socket: the server's own is gone all the same.
    await descriptorsBecome(address, baseline + 1, "the server released its socket");
    await assertServesAnHonestClient(address, identity);
  } finally {
    closeAll(hostile);
    await server.close();
  }
});

/**
 * Silent TCP connections to `address` from the loopback address `from`
 * (say, 127.0.0.2). A node socket lets go of its descriptor once the server
 * closes the connection, so only those the server keeps stay counted.
 */
async function openFrom(address: Address, from: string, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ host: address.host, port: address.port, localAddress: from });
    // A reset by the server is expected, not an uncaught error.
    socket.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    sockets.push(socket);
  }
  return sockets;
}

/** How many of `sockets` the server has closed. */
function closedByServer(sockets: net.Socket[]): number {
  return sockets.filter((socket) => socket.closed).length;
}

function destroyAll(sockets: net.Socket[]): void {
  for (const socket of sockets.splice(0)) socket.destroy();
}

Deno.test("ProtocolServer - one address holding hundreds of silent TLS connections keeps only its limit's worth open, and others are served", async () => {
  const identity = await createIdentity();
  // The handshake deadline is far off: what bounds the sockets here is the per-address limit.
  const { server, address, warnings } = await startServer({
    tls: identity,
    handshakeTimeoutMs: 60_000,
    maxConnectionsPerAddress: 16,
  });
  const hostile: net.Socket[] = [];
  try {
    const baseline = await warmBaseline(address, identity);
    hostile.push(...await openFrom(address, "127.0.0.2", 300));
    // 16 under the limit and 4 being told BUSY stay open (a socket at each end); the other 280
    // are closed at accept.
    await descriptorsBecome(address, baseline + 2 * 20, "the server kept only 20 sockets");
    await waitUntil(
      () => closedByServer(hostile) === 280,
      () => `280 closed by the server, not ${closedByServer(hostile)}`,
    );
    assert.ok(
      warnings.some((line) => /127\.0\.0\.2: too many connections, refused one/.test(line)),
      warnings.join("\n"),
    );
    // The accept loop never stopped: a client from another address is served at once.
    await assertServesAnHonestClient(address, identity);
  } finally {
    destroyAll(hostile);
    await server.close();
  }
});

Deno.test("ProtocolServer - past maxConnections a new connection is closed at accept, from any address, and served again once one closes", async () => {
  const { server, address, warnings } = await startServer({ maxConnections: 3 });
  const held: ProtocolClient<Methods>[] = [];
  const refused: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 3; i++) held.push(await connect(address));
    refused.push(...await openRaw(address, 5));
    for (const conn of refused) await assertClosedByServer(conn);
    assert.ok(
      warnings.some((line) => /3 connections open, the most this process keeps/.test(line)),
      warnings.join("\n"),
    );
    for (const client of held) assert.equal((await client.call("ping", {})).username, null);
    held.shift()!.close();
    await eventually(() => server.connectionCount === 2, () => `${server.connectionCount} open`);
    await assertServesAnHonestClient(address);
  } finally {
    closeAll(refused);
    for (const client of held) client.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - past maxPendingHandshakes the oldest pending handshake is closed, and the server keeps accepting", async () => {
  const identity = await createIdentity();
  const { server, address, warnings } = await startServer({
    tls: identity,
    handshakeTimeoutMs: 60_000,
    maxPendingHandshakes: 5,
  });
  const hostile: net.Socket[] = [];
  try {
    const baseline = await warmBaseline(address, identity);
    for (const from of ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]) {
      hostile.push(...await openFrom(address, from, 3));
    }
    // Of twelve, the server keeps five (a socket at each end) and has closed the seven oldest.
    await descriptorsBecome(address, baseline + 2 * 5, "the server kept five pending handshakes");
    await waitUntil(
      () => closedByServer(hostile) === 7,
      () => `7 closed by the server, not ${closedByServer(hostile)}`,
    );
    assert.ok(hostile.slice(-5).every((socket) => !socket.closed), "the newest five are kept");
    assert.ok(
      warnings.some((line) => /5 TLS handshakes pending, closed the oldest/.test(line)),
      warnings.join("\n"),
    );
  } finally {
    destroyAll(hostile);
    await server.close();
  }
});

Deno.test("ProtocolServer - a warning repeated by one client is written five times, not once per event", async () => {
  const { server, address, warnings } = await startServer({ maxConnectionsPerAddress: 1 });
  const honest = await connect(address);
  const refused: Deno.Conn[] = [];
  try {
    refused.push(...await openRaw(address, 30));
    for (const conn of refused) await assertClosedByServer(conn);
    const lines = warnings.filter((line) => /too many connections, refused one/.test(line));
    assert.equal(lines.length, 5, warnings.join("\n"));
    assert.equal((await honest.call("ping", {})).username, null);
  } finally {
    closeAll(refused);
    honest.close();
    await server.close();
  }
});

/** A listener whose first `failures` accepts fail as on a process out of descriptors. */
class FailingListener implements Deno.Listener {
  failed = 0;
  readonly #real: Deno.Listener;
  #failures: number;

  constructor(real: Deno.Listener, failures: number) {
    this.#real = real;
    this.#failures = failures;
  }

  get addr(): Deno.Addr {
    return this.#real.addr;
  }

  accept(): Promise<Deno.Conn> {
    if (this.failed < this.#failures) {
      this.failed++;
      return Promise.reject(new Error("Too many open files (os error 24)"));
    }
    return this.#real.accept();
  }

  close(): void {
    this.#failures = 0;
    this.#real.close();
  }

  ref(): void {
    this.#real.ref();
  }

  unref(): void {
    this.#real.unref();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Deno.Conn> {
    return this.#real[Symbol.asyncIterator]();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

Deno.test("ProtocolServer - after failing accepts the loop backs off, warns a few times, and serves again", async () => {
  const warnings: string[] = [];
  const server = new ProtocolServer(METHODS, HANDLERS, {
    kind: "peer",
    initialState: () => null,
    warn: (line) => warnings.push(line),
  });
  const listener = new FailingListener(Deno.listen({ hostname: LOCALHOST.host, port: 0 }), 8);
  const address = server.serve(listener);
  try {
    await assertServesAnHonestClient(address);
    assert.equal(listener.failed, 8);
    const lines = warnings.filter((line) => /accept failed/.test(line));
    assert.deepEqual(
      lines.map((line) => line.match(/next try in (\d+) ms/)?.[1]),
      ["5", "10", "20", "40", "80"],
      "five lines, each announcing a wait twice as long as the one before",
    );
    assert.match(lines[0], /Too many open files/);
  } finally {
    await server.close();
  }
});
