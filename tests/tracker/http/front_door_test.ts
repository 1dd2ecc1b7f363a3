/**
 * The tracker's HTTP port (lib/tracker/http/front_door.ts) in front of a
 * small HTTP server on loopback that answers with the client the door names:
 * limits, deadlines and piping, over real sockets on loopback, in process.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { FrontDoor, type FrontDoorOptions } from "../../../lib/tracker/http/front_door.ts";
import { loadOrCreateIdentity } from "../../../lib/identity/key_files.ts";
import { TLS_SERVER_NAME, type TlsIdentity } from "../../../lib/protocol/tls.ts";
import { rawClient } from "../../helpers/raw_client.ts";

/** A door on 127.0.0.1 before a server that answers `client HOST` (or 403 for a stranger). */
async function openDoor(options: Partial<FrontDoorOptions> = {}) {
  const closing = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  let door: FrontDoor | null = null;
  /** The port each request came from, as the server saw it. */
  const innerPorts: number[] = [];
  /** Requests for /wait are answered once this settles. */
  const released = Promise.withResolvers<void>();
  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: closing.signal,
    onListen: resolve,
  }, async (request, info) => {
    const client = door?.clientOf(info.remoteAddr);
    if (!client) return new Response("stranger\n", { status: 403 });
    innerPorts.push(info.remoteAddr.port);
    if (new URL(request.url).pathname === "/wait") await released.promise;
    const body = request.body ? await request.text() : "";
    return new Response(`client ${client.hostname} ${request.method} ${body.length}\n`);
  });
  const bound = await listening;
  const warnings: string[] = [];
  door = await FrontDoor.open({
    address: { host: "127.0.0.1", port: 0 },
    inner: { host: bound.hostname, port: bound.port },
    warn: (line) => warnings.push(line),
    ...options,
  });
  const opened = door;
  return {
    door: opened,
    inner: bound,
    warnings,
    innerPorts,
    release: () => released.resolve(),
    async [Symbol.asyncDispose]() {
      released.resolve();
      await opened.close();
      closing.abort();
      await inner.finished;
    },
  };
}

/** A TLS client of the door at `port`, trusting `identity` under the name Shoal's certificates carry. */
function tlsTo(port: number, identity: TlsIdentity, options: tls.ConnectionOptions = {}) {
  return tls.connect({
    host: "127.0.0.1",
    port,
    servername: TLS_SERVER_NAME,
    ca: identity.certificate,
    ...options,
  });
}

/** One whole request over a new connection from `from`: the response's text. */
async function request(port: number, from = "127.0.0.1", body = ""): Promise<string> {
  const method = body ? "POST" : "GET";
  const client = await rawClient(
    port,
    `${method} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\n` +
      `\r\n${body}`,
    from,
  );
  const { received, timedOut } = await client.ended;
  assert.equal(timedOut, false, "the request was answered and closed");
  return received;
}

Deno.test("front door - a request reaches the server with the client's own address", async () => {
  await using open = await openDoor();
  const answer = await request(open.door.address.port, "127.0.0.2");
  assert.match(answer, /^HTTP\/1\.1 200/);
  assert.match(answer, /client 127\.0\.0\.2 GET 0/);
  assert.match(
    await request(open.door.address.port, "127.0.0.3", "x".repeat(100_000)),
    /POST 100000/,
  );
});

Deno.test("front door - several requests on one kept-alive connection all pass", async () => {
  await using open = await openDoor();
  const client = await rawClient(open.door.address.port, "");
  const ask = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  client.socket.write(ask + ask);
  client.socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const { received, timedOut } = await client.ended;
  assert.equal(timedOut, false);
  assert.equal(received.match(/HTTP\/1\.1 200/g)?.length, 3);
});

Deno.test("front door - a connection straight to the server behind it is refused", async () => {
  await using open = await openDoor();
  const answer = await request(open.inner.port);
  assert.match(answer, /^HTTP\/1\.1 403/);
  assert.match(answer, /stranger/);
});

Deno.test("front door - a local connection from another loopback address with a passage's port is refused", async () => {
  await using open = await openDoor();
  // A request through the door that the server holds: its connection keeps its port.
  const waiting = await rawClient(
    open.door.address.port,
    "GET /wait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  for (let i = 0; i < 500 && open.innerPorts.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const port = open.innerPorts[0];
  assert.ok(port, "the held request reached the server");
  // Someone on the tracker's machine, from 127.0.0.2 with that same port, straight to the server.
  const socket = net.connect({
    host: "127.0.0.1",
    port: open.inner.port,
    localAddress: "127.0.0.2",
    localPort: port,
  });
  let answer = "";
  socket.on("data", (chunk: Uint8Array) => answer += new TextDecoder().decode(chunk));
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  await new Promise((resolve) => socket.once("close", resolve));
  assert.match(answer, /^HTTP\/1\.1 403[\s\S]*stranger/);
  open.release();
  const { received, timedOut } = await waiting.ended;
  assert.equal(timedOut, false);
  assert.match(received, /^HTTP\/1\.1 200/);
});

Deno.test("front door - headers not finished within the deadline are answered 408 and closed", async () => {
  await using open = await openDoor({ headerTimeoutMs: 200 });
  const slow = await rawClient(open.door.address.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  const silent = await rawClient(open.door.address.port, "");
  for (const client of [slow, silent]) {
    const { received, timedOut } = await client.ended;
    assert.equal(timedOut, false, "closed by the door");
    assert.match(received, /^HTTP\/1\.1 408 Request Timeout/);
  }
  assert.ok(open.warnings.some((line) => /no request headers within 200 ms, closed/.test(line)));
  // The port still serves.
  assert.match(await request(open.door.address.port), /^HTTP\/1\.1 200/);
});

Deno.test("front door - headers over the limit are answered 431 and closed", async () => {
  await using open = await openDoor({ maxHeaderBytes: 4096 });
  const big = await rawClient(
    open.door.address.port,
    `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`,
  );
  const { received, timedOut } = await big.ended;
  assert.equal(timedOut, false);
  assert.match(received, /^HTTP\/1\.1 431/);
  // Over the limit, but ended in the same read as the bytes that passed it.
  const overInOne = await rawClient(
    open.door.address.port,
    `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(5000)}\r\n\r\n`,
  );
  assert.match((await overInOne.ended).received, /^HTTP\/1\.1 431/);
  // Within it, sent a byte at a time: passes.
  const dripped = await rawClient(open.door.address.port, "");
  for (
    const byte of `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Some: ${
      "b".repeat(3000)
    }\r\n\r\n`
  ) {
    dripped.socket.write(byte);
  }
  const { received: answer } = await dripped.ended;
  assert.match(answer, /^HTTP\/1\.1 200/);
});

Deno.test("front door - one address past its limit is closed at once; other addresses are served", async () => {
  await using open = await openDoor({ maxConnectionsPerAddress: 4 });
  const port = open.door.address.port;
  const held = [];
  for (let i = 0; i < 4; i++) {
    held.push(await rawClient(port, "GET / HTTP/1.1\r\nX: ", "127.0.0.2"));
  }
  try {
    const extra = await rawClient(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.2");
    const { received, timedOut } = await extra.ended;
    assert.equal(timedOut, false, "closed at once");
    assert.equal(received, "");
    assert.match(await request(port, "127.0.0.3"), /client 127\.0\.0\.3/);
    assert.ok(open.warnings.some((line) => /127\.0\.0\.2: 4 connections open/.test(line)));
    // One of the four let go: the address is served again.
    held.pop()!.close();
    let answer = "";
    for (let i = 0; i < 100 && !answer.includes("client 127.0.0.2"); i++) {
      answer = await request(port, "127.0.0.2").catch(() => "");
      if (!answer.includes("client")) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.match(answer, /client 127\.0\.0\.2/);
  } finally {
    for (const client of held) client.close();
  }
});

Deno.test("front door - everyone together past the limit: one more is closed at once", async () => {
  await using open = await openDoor({ maxConnections: 3 });
  const port = open.door.address.port;
  const held = [];
  for (let i = 0; i < 3; i++) {
    held.push(await rawClient(port, "GET / HTTP/1.1\r\nX: ", `127.0.0.${2 + i}`));
  }
  try {
    const extra = await rawClient(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.9");
    const { received, timedOut } = await extra.ended;
    assert.equal(timedOut, false);
    assert.equal(received, "");
  } finally {
    for (const client of held) client.close();
  }
});

Deno.test("front door - a connection idle both ways past the idle timeout is closed", async () => {
  await using open = await openDoor({ idleTimeoutMs: 200 });
  const client = await rawClient(open.door.address.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const { received, timedOut } = await client.ended;
  assert.equal(timedOut, false, "closed by the door once idle");
  assert.match(received, /^HTTP\/1\.1 200/);
  // Closing a kept-alive connection left idle is routine, not worth a warning.
  assert.deepEqual(open.warnings, []);
});

Deno.test("front door - closing it closes every connection, at any stage", async () => {
  const open = await openDoor();
  const port = open.door.address.port;
  const waiting = await rawClient(port, "GET / HTTP/1.1\r\nX: ");
  const kept = await rawClient(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await open[Symbol.asyncDispose]();
  for (const client of [waiting, kept]) assert.equal((await client.ended).timedOut, false);
  assert.equal(open.door.connectionCount, 0);
});

Deno.test("front door - over TLS it offers HTTP/2, serves it, and a TLS handshake never finished is closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-front-door-" });
  try {
    const identity = await loadOrCreateIdentity(dir, "tls-");
    await using open = await openDoor({ tls: identity, headerTimeoutMs: 300 });
    const port = open.door.address.port;
    const socket = tlsTo(port, identity, { ALPNProtocols: ["h2", "http/1.1"] });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    assert.equal(socket.alpnProtocol, "h2");
    socket.destroy();
    // HTTP/2 through the door (the server behind it takes it as h2c).
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      createConnection: () => tlsTo(port, identity, { ALPNProtocols: ["h2"] }),
    });
    try {
      const stream = session.request({ ":path": "/" }, { endStream: true });
      let h2Answer = "";
      stream.on("data", (chunk: Uint8Array) => h2Answer += new TextDecoder().decode(chunk));
      const ended = new Promise((resolve) => stream.once("end", resolve));
      const status = await new Promise((resolve) =>
        stream.once("response", (headers) => resolve(headers[":status"]))
      );
      await ended;
      assert.equal(status, 200);
      assert.match(h2Answer, /client 127\.0\.0\.1 GET/);
    } finally {
      session.close();
    }
    // HTTP/1.1 over TLS, through the door, with the client's address.
    const secure = tlsTo(port, identity, { ALPNProtocols: ["http/1.1"] });
    let answer = "";
    secure.on("data", (chunk: Uint8Array) => answer += new TextDecoder().decode(chunk));
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    secure.write("GET / HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n");
    await new Promise((resolve) => secure.once("close", resolve));
    assert.match(answer, /^HTTP\/1\.1 200[\s\S]*client 127\.0\.0\.1 GET/);
    const silent = await rawClient(port, "", "127.0.0.2");
    const { received, timedOut } = await silent.ended;
    assert.equal(timedOut, false, "closed without a handshake");
    assert.equal(received, "");
    assert.ok(open.warnings.some((line) => /no TLS handshake within 300 ms, closed/.test(line)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("front door - a client that sends its request and ends its sending still gets the answer, over TCP and TLS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-front-door-" });
  try {
    const identity = await loadOrCreateIdentity(dir, "tls-");
    for (const secured of [false, true]) {
      // A short idle timeout: the connection, kept alive by the server, is closed once quiet.
      await using open = await openDoor({
        tls: secured ? identity : undefined,
        idleTimeoutMs: 300,
      });
      const port = open.door.address.port;
      const socket = secured
        ? tlsTo(port, identity, { ALPNProtocols: ["http/1.1"] })
        : net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
      let answer = "";
      socket.on("data", (chunk: Uint8Array) => answer += new TextDecoder().decode(chunk));
      socket.on("error", () => {});
      await new Promise<void>((resolve, reject) => {
        socket.once(secured ? "secureConnect" : "connect", resolve);
        socket.once("error", reject);
      });
      // Answered only after the client's end has been through the door (Deno.serve, told of
      // it, would drop the answer).
      socket.end("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
      for (let i = 0; i < 500 && open.innerPorts.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(open.innerPorts.length, 1, "the request reached the server");
      open.release();
      await new Promise((resolve) => socket.once("close", resolve));
      assert.match(answer, /^HTTP\/1\.1 200[\s\S]*client 127\.0\.0\.1 GET/, `TLS: ${secured}`);
      await drained(open.door);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Waits (bounded) until the door holds no connection. */
async function drained(door: FrontDoor): Promise<void> {
  for (let i = 0; i < 1000 && door.connectionCount > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(door.connectionCount, 0, "every connection was let go");
}

Deno.test("front door - connections that end in odd ways, at every stage, give back their address's places", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-front-door-" });
  try {
    const identity = await loadOrCreateIdentity(dir, "tls-");
    await using open = await openDoor({
      tls: identity,
      maxConnectionsPerAddress: 4,
      headerTimeoutMs: 300,
      maxHeaderBytes: 1024,
      // A client gone while answered is let go once quiet (a FIN is not told from a half-close).
      idleTimeoutMs: 1000,
    });
    const port = open.door.address.port;
    const from = "127.0.0.2";
    const secure = async () => {
      const socket = tls.connect({
        socket: net.connect({ host: "127.0.0.1", port, localAddress: from }),
        servername: TLS_SERVER_NAME,
        ca: identity.certificate,
        ALPNProtocols: ["http/1.1"],
      });
      socket.on("error", () => {});
      await new Promise<void>((resolve, reject) => {
        socket.once("secureConnect", resolve);
        socket.once("error", reject);
      });
      // Read, or the end would go unnoticed.
      const received: string[] = [];
      socket.on("data", (chunk: Uint8Array) => received.push(new TextDecoder().decode(chunk)));
      const closed = new Promise<string>((resolve) =>
        socket.once("close", () => resolve(received.join("")))
      );
      return { socket, closed };
    };
    for (let round = 0; round < 3; round++) {
      // Gone before anything: plain TCP closed at once, and bytes that are not TLS.
      (await rawClient(port, "", from)).close();
      await (await rawClient(port, "GET / HTTP/1.1\r\n\r\n", from)).ended;
      // Gone after the handshake, and halfway through the headers.
      (await secure()).socket.destroy();
      const half = await secure();
      half.socket.write("GET / HTTP/1.1\r\nX-Half: ");
      half.socket.destroy();
      // Headers over the limit (431), and a client that says nothing (timed out).
      const big = await secure();
      big.socket.write(`GET / HTTP/1.1\r\nX-Big: ${"a".repeat(2048)}\r\n\r\n`);
      assert.match(await big.closed, /^HTTP\/1\.1 431/);
      assert.match(await (await secure()).closed, /^HTTP\/1\.1 408/);
      await drained(open.door);
    }
    // Gone while the server behind the door is still answering: its place is given back once
    // the server answers (a FIN is not told from a client awaiting its answer).
    const held = await secure();
    held.socket.write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    for (let i = 0; i < 500 && open.innerPorts.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    held.socket.destroy();
    open.release();
    await drained(open.door);
    // The address holds its four places again: four at once are all served.
    const four = [];
    for (let i = 0; i < 4; i++) {
      four.push(await secure());
    }
    const answers = await Promise.all(four.map(({ socket, closed }) => {
      socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      return closed;
    }));
    for (const answer of answers) assert.match(answer, /^HTTP\/1\.1 200[\s\S]*client 127\.0\.0\.2/);
    await drained(open.door);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("front door - a server behind it that is gone: the connection is closed and its place given back", async () => {
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const inner = gone.addr as Deno.NetAddr;
  gone.close();
  const door = await FrontDoor.open({
    address: { host: "127.0.0.1", port: 0 },
    inner: { host: inner.hostname, port: inner.port },
    maxConnectionsPerAddress: 1,
    warn: (line) => warnings.push(line),
  });
  const warnings: string[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const client = await rawClient(door.address.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      const { received, timedOut } = await client.ended;
      assert.equal(timedOut, false);
      assert.equal(received, "");
      await drained(door);
    }
    assert.ok(warnings.some((line) => /cannot reach the HTTP server behind the port/.test(line)));
  } finally {
    await door.close();
  }
});

Deno.test("front door - closed while connections arrive, handshake and connect: none is left open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-front-door-" });
  try {
    const identity = await loadOrCreateIdentity(dir, "tls-");
    for (const secured of [false, true]) {
      const open = await openDoor({ tls: secured ? identity : undefined });
      const port = open.door.address.port;
      // Forty clients at every stage at once: connecting, in the handshake, asking.
      const clients = [];
      for (let i = 0; i < 40; i++) {
        const socket = secured ? tlsTo(port, identity) : net.connect({ host: "127.0.0.1", port });
        socket.on("error", () => {});
        socket.on("data", () => {});
        socket.once(secured ? "secureConnect" : "connect", () => {
          socket.write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
        });
        // A guard against a hang, not a measure: each is closed well before it.
        clients.push(
          new Promise<boolean>((resolve) => {
            const guard = setTimeout(() => resolve(false), 20_000);
            socket.once("close", () => {
              clearTimeout(guard);
              resolve(true);
            });
          }),
        );
        if (i === 20) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
      await open[Symbol.asyncDispose]();
      assert.equal(open.door.connectionCount, 0);
      // Every client sees its connection closed.
      assert.deepEqual(await Promise.all(clients), clients.map(() => true));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
