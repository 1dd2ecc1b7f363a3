/**
 * The runtime's own floor for a tracker's memory per connected peer: a bare
 * Deno server that accepts connections, plaintext or TLS, and keeps one
 * pending 1 KiB read on each (as the tracker does for an idle peer), and
 * does nothing else. The tracker-load benchmark runs both halves as their
 * own processes and reads the server's RSS from /proc.
 *
 *   deno run -A bench/idle_connections.ts serve [--tls CERT --key KEY]
 *     listens on 127.0.0.1, prints "port N", and holds what connects
 *   deno run -A bench/idle_connections.ts hold PORT COUNT [--tls CERT]
 *     opens COUNT connections, prints "held COUNT" once every one is up, and keeps them
 */
import { parseArgs } from "node:util";
import { TLS_SERVER_NAME } from "../lib/protocol/tls.ts";

const CONNECTING_AT_ONCE = 100;
const READ_BYTES = 1024;

async function serve(tls: { cert: string; key: string } | null): Promise<void> {
  const address = { hostname: "127.0.0.1", port: 0 };
  const listener = tls ? Deno.listenTls({ ...address, ...tls }) : Deno.listen(address);
  console.log(`port ${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) {
    // Read until the client goes; an idle one leaves this read pending.
    (async () => {
      const buffer = new Uint8Array(READ_BYTES);
      try {
        while (await conn.read(buffer) !== null) { /* nothing is sent */ }
      } catch {
        // The client went.
      }
      conn.close();
    })();
  }
}

async function hold(port: number, count: number, cert: string | null): Promise<void> {
  const held: Deno.Conn[] = [];
  let next = 0;
  const connectSome = async () => {
    while (next < count) {
      next++;
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      const conn = cert
        ? await Deno.startTls(tcp, { hostname: TLS_SERVER_NAME, caCerts: [cert] })
        : tcp;
      if (cert) await (conn as Deno.TlsConn).handshake();
      held.push(conn);
    }
  };
  await Promise.all(Array.from({ length: CONNECTING_AT_ONCE }, connectSome));
  console.log(`held ${held.length}`);
  // Held until killed: a timer keeps the process alive, since idle connections do not.
  setInterval(() => {}, 60_000);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { tls: { type: "string" }, key: { type: "string" } },
  });
  const [role, port, count] = positionals;
  const cert = values.tls ? await Deno.readTextFile(values.tls) : null;
  if (role === "serve" && !port && (!cert || values.key)) {
    await serve(cert ? { cert, key: await Deno.readTextFile(values.key!) } : null);
  } else if (role === "hold" && Number(port) > 0 && Number(count) > 0) {
    await hold(Number(port), Number(count), cert);
  } else {
    console.error(
      "usage: idle_connections.ts serve [--tls CERT --key KEY] | hold PORT COUNT [--tls CERT]",
    );
    Deno.exit(2);
  }
}
