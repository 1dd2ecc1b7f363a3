/**
 * First contact with a tracker (trust on first use): only a Shoal tracker
 * that completes the hello is pinned; any other TLS server is "not a Shoal
 * tracker", with what it presented, and a name that does not resolve is a
 * DNS error.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createIdentity, fetchCertificate, fingerprintOf } from "../../lib/identity/certificate.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";
import type { TlsIdentity } from "../../lib/protocol/tls.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { connectTracker, type TrackerEndpoint } from "../../lib/peer/tracker_link.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";

/** A self-signed certificate for some other device, as a NAS or a router has. */
async function foreignIdentity(name: string): Promise<TlsIdentity> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: algorithm,
    keys,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: name }])],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certificate: certificate.toString("pem"),
    key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
  };
}

/** A bare TLS server on 127.0.0.1 that answers every connection with `reply`, then closes. */
function otherTlsServer(identity: TlsIdentity, reply: string) {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: identity.certificate,
    key: identity.key,
  });
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          await conn.handshake();
          await conn.write(new TextEncoder().encode(reply));
        } catch {
          // A client that gives up during the handshake is what the test expects of some.
        } finally {
          conn.close();
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
    },
  };
}

async function tempHome() {
  const dir = await Deno.makeTempDir({ prefix: "shoal-first-contact-" });
  const home = PeerHome.open(join(dir, "home"));
  return {
    dir,
    home,
    async [Symbol.asyncDispose]() {
      home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const endpoint = (port: number, notices: string[] = []): TrackerEndpoint => ({
  addresses: [{ host: "127.0.0.1", port }],
  plaintext: false,
  notice: (line) => notices.push(line),
});

Deno.test("first contact - a TLS server with another device's certificate is not a Shoal tracker; nothing is pinned", async () => {
  await using server = otherTlsServer(
    await foreignIdentity("nas.local"),
    "HTTP/1.1 400 Bad Request\r\n\r\n",
  );
  await using context = await tempHome();
  const notices: string[] = [];
  await assert.rejects(connectTracker(context.home, endpoint(server.port, notices)), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "INVALID_INPUT");
    assert.match(error.message, /^127\.0\.0\.1:\d+ is not a Shoal tracker: /);
    assert.match(error.message, /presented CN=nas\.local \(SHA256:[0-9A-F:]+\)/);
    assert.match(error.message, /Nothing was pinned/);
    assert.doesNotMatch(error.message, /DIFFERENT|intercept/);
    assert.match(error.hint ?? "", /--tracker HOST:PORT/);
    return true;
  });
  assert.equal(context.home.pinnedTracker(`127.0.0.1:${server.port}`), null);
  assert.deepEqual(notices, [], "no fingerprint is announced as pinned");
});

Deno.test("first contact - the tracker's dashboard port (HTTP) given as the tracker is said to answer in HTTP, and the hint names the port to use", async () => {
  // What a newcomer gets from --tracker HOST:5080: once "frame of 1213486160 bytes exceeds ...".
  await using server = otherTlsServer(
    await createIdentity(),
    "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
  );
  await using context = await tempHome();
  await assert.rejects(connectTracker(context.home, endpoint(server.port)), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "INVALID_INPUT");
    assert.match(
      error.message,
      /is not a Shoal tracker: it answers in HTTP, as a web server or a tracker's dashboard does; it presented CN=shoal/,
    );
    assert.doesNotMatch(error.message, /bytes exceeds/);
    assert.match(error.hint ?? "", /after "listening on" .*--tracker HOST:PORT/);
    return true;
  });
  assert.equal(context.home.pinnedTracker(`127.0.0.1:${server.port}`), null);
});

Deno.test("first contact - a TLS server that answers the hello with garbage is not a Shoal tracker", async () => {
  // Even with a certificate that carries Shoal's name, the hello is what counts.
  await using server = otherTlsServer(await createIdentity(), "garbage, not a frame\n".repeat(4));
  await using context = await tempHome();
  await assert.rejects(connectTracker(context.home, endpoint(server.port)), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "INVALID_INPUT");
    assert.match(error.message, /is not a Shoal tracker: it does not complete a Shoal hello/);
    assert.match(error.message, /presented CN=shoal \(SHA256:/);
    return true;
  });
  assert.equal(context.home.pinnedTracker(`127.0.0.1:${server.port}`), null);
});

Deno.test("first contact - a Shoal tracker that completes the hello is pinned, its fingerprint shown", async () => {
  await using context = await tempHome();
  using store = SqliteTrackerStore.open(join(context.dir, "tracker.db"));
  const tls = await loadOrCreateIdentity(context.dir, "tracker.db.tls-");
  const ticketKey = await loadOrCreateTicketKey(context.dir, "tracker.db.ticket-key.pem");
  const tracker = new Tracker(store, { tls, ticketKey });
  const { port } = await tracker.listen({ host: "127.0.0.1", port: 0 });
  try {
    const notices: string[] = [];
    const client = await connectTracker(context.home, endpoint(port, notices));
    client.close();
    assert.equal(context.home.pinnedTracker(`127.0.0.1:${port}`), tls.certificate);
    assert.equal(notices.length, 1);
    assert.match(notices[0], /^first contact with the tracker at 127\.0\.0\.1:\d+/);
  } finally {
    await tracker.close();
  }
});

Deno.test("first contact - a host name that does not resolve is a DNS error, not a TLS one", async () => {
  // The resolver is injected: a real lookup of a .invalid name would still ask the
  // configured name server, which may be off this machine.
  const lookup = (
    host: string,
    _options: unknown,
    callback: (error: Error | null, address?: string, family?: number) => void,
  ) => callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" }));
  await assert.rejects(
    fetchCertificate("tracker.invalid", 5050, { lookup: lookup as never }),
    (error) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, "UNREACHABLE");
      assert.equal(
        error.message,
        'cannot resolve the host name "tracker.invalid" (DNS: ENOTFOUND)',
      );
      assert.doesNotMatch(error.message, /TLS/);
      assert.match(error.hint ?? "", /--tracker HOST:PORT/);
      return true;
    },
  );
});

Deno.test("first contact - a foreign certificate pinned by an older version is named as such, not as interception", async () => {
  const nas = await foreignIdentity("nas.local");
  await using server = otherTlsServer(nas, "HTTP/1.1 400 Bad Request\r\n\r\n");
  await using context = await tempHome();
  const key = `127.0.0.1:${server.port}`;
  context.home.pinTracker(key, nas.certificate);
  await assert.rejects(connectTracker(context.home, endpoint(server.port)), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "CERTIFICATE_MISMATCH");
    assert.match(error.message, /^the certificate pinned for 127\.0\.0\.1:\d+ \(CN=nas\.local/);
    assert.match(error.message, /is not a Shoal tracker's/);
    assert.doesNotMatch(error.message, /DIFFERENT|intercept/);
    assert.match(error.hint ?? "", new RegExp(`peer\\.ts forget-tracker ${RegExp.escape(key)}`));
    return true;
  });
});

Deno.test("first contact - a tracker found on the network is pinned only if it presents the fingerprint it announced", async () => {
  await using context = await tempHome();
  using store = SqliteTrackerStore.open(join(context.dir, "tracker.db"));
  const tls = await loadOrCreateIdentity(context.dir, "tracker.db.tls-");
  const ticketKey = await loadOrCreateTicketKey(context.dir, "tracker.db.ticket-key.pem");
  const tracker = new Tracker(store, { tls, ticketKey });
  const { port } = await tracker.listen({ host: "127.0.0.1", port: 0 });
  try {
    const announced = `SHA256:${Array(32).fill("AB").join(":")}`;
    const notices: string[] = [];
    await assert.rejects(
      connectTracker(context.home, {
        ...endpoint(port, notices),
        announcedFingerprint: announced,
      }),
      (error) => {
        assert.ok(error instanceof ShoalError);
        assert.equal(error.code, "CERTIFICATE_MISMATCH");
        assert.match(error.message, /other than the one announced for it on the local network/);
        assert.ok(error.message.includes(announced), error.message);
        assert.ok(error.message.includes(fingerprintOf(tls.certificate)), error.message);
        assert.match(error.message, /Nothing was pinned or sent/);
        return true;
      },
    );
    assert.equal(context.home.pinnedTracker(`127.0.0.1:${port}`), null);
    assert.deepEqual(notices, []);

    const client = await connectTracker(context.home, {
      ...endpoint(port, notices),
      announcedFingerprint: fingerprintOf(tls.certificate),
    });
    client.close();
    assert.equal(context.home.pinnedTracker(`127.0.0.1:${port}`), tls.certificate);
  } finally {
    await tracker.close();
  }
});
