import assert from "node:assert/strict";
import { createIdentity } from "../../lib/identity/certificate.ts";
import type { TlsIdentity } from "../../lib/protocol/tls.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PEER_METHODS } from "../../lib/protocol/messages.ts";
import { ProtocolServer } from "../../lib/protocol/server.ts";
import { listenTls, type ServerListener } from "../../lib/protocol/tls_listener.ts";

/** Connects over TCP, and over TLS too when `identity` is given. */
async function dial(listener: ServerListener, identity?: TlsIdentity): Promise<Deno.Conn> {
  const { hostname, port } = listener.addr as Deno.NetAddr;
  const tcp = await Deno.connect({ hostname, port });
  if (!identity) return tcp;
  return Deno.startTls(tcp, { hostname: "shoal", caCerts: [identity.certificate] });
}

/** Reads `conn` to its end (a clean one: a missing close_notify fails); fails after 10 s. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  const timer = setTimeout(() => conn.close(), 10_000);
  try {
    let n: number | null;
    while ((n = await conn.read(buffer)) !== null) chunks.push(buffer.slice(0, n));
  } finally {
    clearTimeout(timer);
  }
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return all;
}

Deno.test("listenTls - a connection closed before its handshake is closed at once, with no TLS sent", async () => {
  const identity = await createIdentity();
  const listener = await listenTls({ host: "127.0.0.1", port: 0 }, identity);
  const client = await dial(listener);
  try {
    const conn = await listener.accept();
    conn.close();
    assert.equal((await readToEnd(client)).byteLength, 0);
    await assert.rejects(conn.handshake!(), /closed/);
  } finally {
    client.close();
    listener.close();
  }
});

Deno.test("listenTls - a megabyte sent both ways arrives whole, then the server's close is a clean end", async () => {
  const identity = await createIdentity();
  const listener = await listenTls({ host: "127.0.0.1", port: 0 }, identity);
  const sent = crypto.getRandomValues(new Uint8Array(64 * 1024));
  const megabyte = new Uint8Array(1024 * 1024).map((_, i) => sent[i % sent.length]);
  const [client, conn] = await Promise.all([dial(listener, identity), listener.accept()]);
  try {
    await conn.handshake!();
    const writing = (async () => {
      for (let offset = 0; offset < megabyte.length;) {
        offset += await client.write(megabyte.subarray(offset));
      }
    })();
    // Read slowly enough that the server pauses its socket and resumes it.
    const received = new Uint8Array(megabyte.length);
    let filled = 0;
    while (filled < received.length) {
      const n = await conn.read(received.subarray(filled, filled + 16 * 1024));
      assert.notEqual(n, null, `the stream ended after ${filled} bytes`);
      filled += n!;
    }
    await writing;
    assert.deepEqual(received, megabyte);
    const outgoing = megabyte.slice();
    assert.equal(await conn.write(outgoing), outgoing.length);
    // Once a write settles its buffer is the caller's again (a piece server reuses it).
    outgoing.fill(0);
    conn.close();
    assert.deepEqual(await readToEnd(client), megabyte);
  } finally {
    client.close();
    conn.close();
    listener.close();
  }
});

Deno.test("listenTls - a closed listener rejects accept with BadResource", async () => {
  const identity = await createIdentity();
  const listener = await listenTls({ host: "127.0.0.1", port: 0 }, identity);
  const accepting = listener.accept();
  listener.close();
  await assert.rejects(accepting, Deno.errors.BadResource);
});

Deno.test("ProtocolServer - a TLS server on a port in use says the port is in use", async () => {
  const identity = await createIdentity();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = new ProtocolServer({ hello: PEER_METHODS.hello }, {}, {
    kind: "peer",
    initialState: () => null,
    tls: identity,
  });
  await assert.rejects(
    server.listen({ host: "127.0.0.1", port: (taken.addr as Deno.NetAddr).port }),
    (error: unknown) => {
      assert.ok(error instanceof ShoalError && error.code === "IO", String(error));
      assert.match(error.message, /the port is in use/);
      assert.equal(error.hint, "pass another --port, or --port 0 for a free one");
      return true;
    },
  );
});

Deno.test("ProtocolServer - a --host that is no address of this machine says so and names what to pass, over TLS and in plaintext", async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of a real machine. Once a raw
  // "listen EINVAL: invalid argument 192.0.2.1".
  const identity = await createIdentity();
  for (const tls of [identity, undefined]) {
    const server = new ProtocolServer({ hello: PEER_METHODS.hello }, {}, {
      kind: "peer",
      initialState: () => null,
      tls,
    });
    await assert.rejects(server.listen({ host: "192.0.2.1", port: 0 }), (error: unknown) => {
      assert.ok(error instanceof ShoalError && error.code === "IO", String(error));
      assert.equal(
        error.message,
        "cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine",
      );
      assert.equal(
        error.hint,
        "pass --host one of this machine's addresses, or 0.0.0.0 for all of them",
      );
      return true;
    });
  }
});
