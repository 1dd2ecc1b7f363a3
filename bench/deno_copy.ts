/**
 * The runtime's own floor for a transfer: the plainest Deno program that
 * copies a file over TCP, plaintext or TLS, in 512 KiB reads and writes,
 * with none of Shoal's protocol or checks (and, when asked, SHA-256 of every
 * byte received, as a fetch verifies its pieces). The benchmarks run it as
 * separate processes, the way they run socat, to tell what Shoal costs from
 * what the runtime costs.
 *
 *   deno run -A bench/deno_copy.ts send SOURCE [--host HOST] [--tls CERT --key KEY]
 *     listens (on 127.0.0.1 unless told), prints "port N", sends SOURCE to the first connection
 *   deno run -A bench/deno_copy.ts receive TARGET HOST:PORT... [--sha256] [--tls CERT]
 *     connects to every sender at once, writes what the i-th sends into TARGET.i (one sender:
 *     TARGET), fsyncs, and prints {"bytes", "seconds", "sha256"} for all of it (with
 *     --sha256, the digest of what each sender sent; otherwise an empty list)
 *
 * As in Shoal, the sender is the TLS server and the receiver its client.
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { parseAddress } from "../lib/protocol/address.ts";
import { TLS_SERVER_NAME } from "../lib/protocol/tls.ts";

const CHUNK = 512 * 1024;

async function send(
  source: string,
  hostname: string,
  tls: { cert: string; key: string } | null,
): Promise<void> {
  const address = { hostname, port: 0 };
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

/** Copies one sender's bytes into `target`; returns how many, and their digest if asked. */
async function receiveOne(
  target: string,
  address: string,
  cert: string | null,
  sha256: boolean,
): Promise<{ bytes: number; sha256: string | null }> {
  const { host, port } = parseAddress(address);
  const tcp = await Deno.connect({ hostname: host, port });
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
  conn.close();
  return { bytes, sha256: hash?.digest("hex") ?? null };
}

async function receive(
  target: string,
  addresses: string[],
  cert: string | null,
  sha256: boolean,
): Promise<void> {
  const started = performance.now();
  const copies = await Promise.all(
    addresses.map((address, i) =>
      receiveOne(addresses.length === 1 ? target : `${target}.${i}`, address, cert, sha256)
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const bytes = copies.reduce((sum, copy) => sum + copy.bytes, 0);
  const digests = copies.flatMap((copy) => copy.sha256 ?? []);
  console.log(JSON.stringify({ bytes, seconds, sha256: digests }));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      tls: { type: "string" },
      key: { type: "string" },
      sha256: { type: "boolean", default: false },
    },
  });
  const [role, path, ...addresses] = positionals;
  const cert = values.tls ? await Deno.readTextFile(values.tls) : null;
  if (role === "send" && path && !addresses.length && (!cert || values.key)) {
    const tls = cert ? { cert, key: await Deno.readTextFile(values.key!) } : null;
    await send(path, values.host, tls);
  } else if (role === "receive" && path && addresses.length) {
    await receive(path, addresses, cert, values.sha256);
  } else {
    console.error(
      "usage: deno_copy.ts send SOURCE [--host HOST] [--tls CERT --key KEY]\n" +
        "       deno_copy.ts receive TARGET HOST:PORT... [--sha256] [--tls CERT]",
    );
    Deno.exit(2);
  }
}
