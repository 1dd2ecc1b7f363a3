/**
 * The runtime's own floor for a single-source transfer: the plainest Deno
 * program that copies a file over one loopback connection, plaintext or
 * TLS, in 512 KiB reads and writes, with none of Shoal's protocol or checks
 * (and, when asked, SHA-256 of every byte received, as a fetch verifies its
 * pieces). The single-source benchmark runs it as two processes, the way it
 * runs socat, to tell what Shoal costs from what the runtime costs.
 *
 *   deno run -A bench/deno_copy.ts send SOURCE [--tls CERT KEY]
 *     listens on a loopback port, prints it, and sends SOURCE to the first connection
 *   deno run -A bench/deno_copy.ts receive TARGET PORT [--sha256] [--tls CERT]
 *     connects, writes everything into TARGET, fsyncs it, and prints {"bytes", "seconds"}
 *
 * As in Shoal, the sender is the TLS server and the receiver its client.
 */
import { createHash } from "node:crypto";
import { TLS_SERVER_NAME } from "../lib/protocol/certificate.ts";

const CHUNK = 512 * 1024;

async function send(source: string, tls: { cert: string; key: string } | null): Promise<void> {
  const address = { hostname: "127.0.0.1", port: 0 };
  using listener = tls ? Deno.listenTls({ ...address, ...tls }) : Deno.listen(address);
  console.log(`port ${(listener.addr as Deno.NetAddr).port}`);
  const conn = await listener.accept();
  using file = await Deno.open(source);
  const writer = conn.writable.getWriter();
  const buffer = new Uint8Array(CHUNK);
  for (;;) {
    const read = file.readSync(buffer);
    if (read === null) break;
    await writer.write(buffer.subarray(0, read));
    await writer.ready;
  }
  await writer.close();
}

async function receive(
  target: string,
  port: number,
  cert: string | null,
  sha256: boolean,
): Promise<void> {
  const started = performance.now();
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const conn = cert
    ? await Deno.startTls(tcp, { hostname: TLS_SERVER_NAME, caCerts: [cert] })
    : tcp;
  using file = await Deno.open(target, { write: true, create: true, truncate: true });
  const buffer = new Uint8Array(CHUNK);
  const hash = sha256 ? createHash("sha256") : null;
  let bytes = 0;
  for (;;) {
    const read = await conn.read(buffer);
    if (read === null) break;
    hash?.update(buffer.subarray(0, read));
    let written = 0;
    while (written < read) written += file.writeSync(buffer.subarray(written, read));
    bytes += read;
  }
  file.syncSync();
  hash?.digest();
  conn.close();
  console.log(JSON.stringify({ bytes, seconds: (performance.now() - started) / 1000 }));
}

if (import.meta.main) {
  const [role, path, ...rest] = Deno.args;
  const tlsAt = rest.indexOf("--tls");
  const tlsFiles = tlsAt === -1 ? [] : rest.slice(tlsAt + 1);
  const cert = tlsFiles[0] ? await Deno.readTextFile(tlsFiles[0]) : null;
  if (role === "send" && path) {
    await send(path, cert ? { cert, key: await Deno.readTextFile(tlsFiles[1]) } : null);
  } else if (role === "receive" && path && Number(rest[0]) > 0) {
    await receive(path, Number(rest[0]), cert, rest.includes("--sha256"));
  } else {
    console.error(
      "usage: deno_copy.ts send SOURCE [--tls CERT KEY] | receive TARGET PORT [--sha256] [--tls CERT]",
    );
    Deno.exit(2);
  }
}
