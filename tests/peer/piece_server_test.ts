import assert from "node:assert/strict";
import type { Address } from "../../lib/protocol/address.ts";
import { createIdentity } from "../../lib/identity/certificate.ts";
import type { TlsIdentity } from "../../lib/protocol/tls.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PEER_METHODS } from "../../lib/protocol/messages.ts";
import { type Handlers, ProtocolServer } from "../../lib/protocol/server.ts";
import { signTicket } from "../../lib/protocol/tickets.ts";
import { pieceLength, sha256Hex } from "../../lib/peer/manifest.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";

type PeerMethods = typeof PEER_METHODS;

const AGENT = "shoal-test/0";
const LOCALHOST: Address = { host: "127.0.0.1", port: 0 };
const PIECE_SIZE = 256 * 1024;
const OTHER_CONTENT_ID = "cd".repeat(32);

/** A small file in memory: two full pieces and a short last one. */
const CONTENT = Uint8Array.from({ length: 2 * PIECE_SIZE + 1234 }, (_, i) => (i * 13 + 7) & 0xff);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

/** Serves {@link CONTENT} and nothing else. */
const CATALOG = memoryCatalog(CONTENT, PIECE_SIZE);

function newKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;
}

/** The raw public key, base64, as a tracker hands it out in `announce`. */
async function publicKeyBase64(keys: CryptoKeyPair): Promise<string> {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  return btoa(String.fromCharCode(...raw));
}

/** A tracker key pair and a TLS piece server over {@link CATALOG} that trusts it (if asked to). */
async function startPieceServer(trust = true) {
  const identity = await createIdentity();
  const tracker = await newKeyPair();
  const warnings: string[] = [];
  const server = new PieceServer(CATALOG, {
    username: () => "alice",
    tls: identity,
    warn: (line) => warnings.push(line),
  });
  if (trust) await server.trustTicketKey(await publicKeyBase64(tracker));
  const address = await server.listen(LOCALHOST);
  return { server, address, identity, tracker, warnings };
}

/**
 * Runs `test` against a TLS piece server over {@link CATALOG} (trusting its
 * tracker's key unless `trust` is false) and a client connected to it, then
 * closes both.
 */
async function withPieceServer(
  test: (
    setup: Awaited<ReturnType<typeof startPieceServer>> & {
      client: ProtocolClient<PeerMethods>;
    },
  ) => Promise<void>,
  trust = true,
): Promise<void> {
  const setup = await startPieceServer(trust);
  const client = await connect(setup.address, setup.identity.certificate);
  try {
    await test({ ...setup, client });
  } finally {
    client.close();
    await setup.server.close();
  }
}

function connect(
  address: Address,
  certificate: string,
): Promise<ProtocolClient<PeerMethods>> {
  return ProtocolClient.connect(address, PEER_METHODS, {
    agent: AGENT,
    expect: "peer",
    tls: { certificate, whose: "the test peer" },
  });
}

function fetchPiece(
  client: ProtocolClient<PeerMethods>,
  index: number,
  ticket: string | undefined,
  contentId = CONTENT_ID,
) {
  return client.callWithBody("piece", { contentId, index, ticket });
}

Deno.test("PieceServer - the right ticket gets the piece bytes, the manifest and the bitfield", () =>
  withPieceServer(async ({ client, tracker }) => {
    const ticket = await signTicket(tracker.privateKey, "bob", CONTENT_ID);
    assert.equal((await client.call("ping", {})).username, "alice");
    const { manifest } = await client.call("manifest", { contentId: CONTENT_ID, ticket });
    assert.deepEqual(manifest, MANIFEST);
    const have = await client.call("have", { contentId: CONTENT_ID, ticket });
    assert.equal(have.count, 3);
    for (const index of [0, 1, 2]) {
      const { result, body } = await fetchPiece(client, index, ticket);
      assert.equal(result.index, index);
      assert.equal(result.length, pieceLength(MANIFEST, index));
      assert.deepEqual(
        body,
        CONTENT.slice(index * PIECE_SIZE, index * PIECE_SIZE + pieceLength(MANIFEST, index)),
      );
      assert.equal(sha256Hex(body), MANIFEST.pieces[index]);
    }
  }));

Deno.test("PieceServer - a piece without a ticket is TICKET_REQUIRED", () =>
  withPieceServer(async ({ client, tracker }) => {
    await assert.rejects(fetchPiece(client, 0, undefined), shoalError("TICKET_REQUIRED"));
    await assert.rejects(
      client.call("manifest", { contentId: CONTENT_ID }),
      shoalError("TICKET_REQUIRED"),
    );
    await assert.rejects(
      client.call("have", { contentId: CONTENT_ID }),
      shoalError("TICKET_REQUIRED"),
    );
    // A refusal leaves the connection usable.
    const ticket = await signTicket(tracker.privateKey, "bob", CONTENT_ID);
    assert.equal((await fetchPiece(client, 0, ticket)).body.length, PIECE_SIZE);
  }));

Deno.test("PieceServer - an expired ticket is TICKET_EXPIRED", () =>
  withPieceServer(async ({ client, tracker }) => {
    const expired = await signTicket(
      tracker.privateKey,
      "bob",
      CONTENT_ID,
      60_000,
      Date.now() - 120_000,
    );
    await assert.rejects(fetchPiece(client, 0, expired), shoalError("TICKET_EXPIRED"));
    await assert.rejects(
      client.call("manifest", { contentId: CONTENT_ID, ticket: expired }),
      shoalError("TICKET_EXPIRED"),
    );
  }));

Deno.test("PieceServer - a forged ticket is TICKET_INVALID", () =>
  withPieceServer(async ({ client, tracker }) => {
    const forger = await newKeyPair();
    const forged = await signTicket(forger.privateKey, "mallory", CONTENT_ID);
    await assert.rejects(fetchPiece(client, 0, forged), shoalError("TICKET_INVALID"));
    // A real ticket whose payload is swapped for another grant keeps a signature that fails.
    const real = await signTicket(tracker.privateKey, "bob", CONTENT_ID, 1000);
    const [, signature] = real.split(".");
    const longer = btoa(JSON.stringify({
      user: "bob",
      contentId: CONTENT_ID,
      expiresAt: Date.now() + 365 * 86_400_000,
    })).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
    await assert.rejects(
      fetchPiece(client, 0, `${longer}.${signature}`),
      shoalError("TICKET_INVALID"),
    );
    for (const garbage of ["x", "a.b", "a.b.c", "..", "🦈".repeat(100)]) {
      await assert.rejects(fetchPiece(client, 0, garbage), shoalError("TICKET_INVALID"));
    }
  }));

Deno.test("PieceServer - a ticket for another content is TICKET_INVALID", () =>
  withPieceServer(async ({ client, tracker }) => {
    const other = await signTicket(tracker.privateKey, "bob", OTHER_CONTENT_ID);
    await assert.rejects(fetchPiece(client, 0, other), shoalError("TICKET_INVALID"));
    // The other content's own ticket reaches the catalog, which does not have it.
    await assert.rejects(
      fetchPiece(client, 0, other, OTHER_CONTENT_ID),
      shoalError("NOT_FOUND"),
    );
  }));

Deno.test("PieceServer - a piece beyond the end is NOT_FOUND", () =>
  withPieceServer(async ({ client, tracker }) => {
    const ticket = await signTicket(tracker.privateKey, "bob", CONTENT_ID);
    await assert.rejects(fetchPiece(client, 3, ticket), shoalError("NOT_FOUND", /beyond the end/));
    assert.equal((await fetchPiece(client, 2, ticket)).body.length, 1234);
  }));

Deno.test("PieceServer - before trustTicketKey every request for content is TICKET_INVALID", () =>
  withPieceServer(async ({ client, tracker, server }) => {
    const ticket = await signTicket(tracker.privateKey, "bob", CONTENT_ID);
    for (const candidate of [ticket, undefined, "garbage"]) {
      await assert.rejects(
        fetchPiece(client, 0, candidate),
        shoalError("TICKET_INVALID", /not reached the tracker/),
      );
      await assert.rejects(
        client.call("manifest", { contentId: CONTENT_ID, ticket: candidate }),
        shoalError("TICKET_INVALID"),
      );
      await assert.rejects(
        client.call("have", { contentId: CONTENT_ID, ticket: candidate }),
        shoalError("TICKET_INVALID"),
      );
    }
    // Once the key is known, the same ticket works on the same connection.
    await server.trustTicketKey(await publicKeyBase64(tracker));
    assert.equal((await fetchPiece(client, 1, ticket)).body.length, PIECE_SIZE);
  }, false));

Deno.test("PieceServer - a client expecting another certificate is CERTIFICATE_MISMATCH", async () => {
  const { server, address } = await startPieceServer();
  try {
    const stranger = await createIdentity();
    await assert.rejects(
      connect(address, stranger.certificate),
      shoalError("CERTIFICATE_MISMATCH", /the test peer/),
    );
  } finally {
    await server.close();
  }
});

/** Handlers for PEER_METHODS that answer `ping` and know no content. */
const PING_ONLY: Handlers<PeerMethods, null> = {
  ping: () => Promise.resolve({ username: null, time: Date.now() }),
  manifest: () => Promise.reject(new ShoalError("NOT_FOUND", "no content here")),
  have: () => Promise.reject(new ShoalError("NOT_FOUND", "no content here")),
  piece: () => Promise.reject(new ShoalError("NOT_FOUND", "no content here")),
  queue: () => Promise.reject(new ShoalError("NOT_FOUND", "no content here")),
  folder: () => Promise.reject(new ShoalError("NOT_FOUND", "no content here")),
  pieces: () => Promise.reject(new ShoalError("NOT_FOUND", "no content here")),
};

async function startLimitedServer(identity: TlsIdentity, warnings: string[]) {
  const server = new ProtocolServer(PEER_METHODS, PING_ONLY, {
    kind: "peer",
    initialState: () => null,
    warn: (line) => warnings.push(line),
    tls: identity,
    maxConnectionsPerAddress: 3,
  });
  return { server, address: await server.listen(LOCALHOST) };
}

Deno.test("ProtocolServer - maxConnectionsPerAddress refuses one too many with BUSY, then frees a slot on close", async () => {
  const identity = await createIdentity();
  const warnings: string[] = [];
  const { server, address } = await startLimitedServer(identity, warnings);
  const clients: ProtocolClient<PeerMethods>[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await connect(address, identity.certificate));
    for (const client of clients) assert.equal((await client.call("ping", {})).username, null);

    await assert.rejects(
      connect(address, identity.certificate),
      shoalError("BUSY", /too many connections/),
    );
    assert.ok(
      warnings.some((line) => /too many connections, refused one/.test(line)),
      warnings.join("\n"),
    );
    // The three open connections are unharmed.
    for (const client of clients) await client.call("ping", {});

    clients.shift()!.close();
    // The server frees the slot once it sees the close: retry briefly until it has.
    const deadline = Date.now() + 5000;
    let fresh: ProtocolClient<PeerMethods> | null = null;
    while (!fresh) {
      try {
        fresh = await connect(address, identity.certificate);
      } catch (error) {
        if (!(error instanceof ShoalError && error.code === "BUSY") || Date.now() > deadline) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    clients.push(fresh);
    assert.equal((await fresh.call("ping", {})).username, null);
    // And the limit still holds with the slot taken again.
    await assert.rejects(connect(address, identity.certificate), shoalError("BUSY"));
  } finally {
    for (const client of clients) client.close();
    await server.close();
  }
});

Deno.test("ProtocolServer - a refused connection gets one BUSY frame with id -1 and is closed", async () => {
  const identity = await createIdentity();
  const warnings: string[] = [];
  const { server, address } = await startLimitedServer(identity, warnings);
  const clients: ProtocolClient<PeerMethods>[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await connect(address, identity.certificate));
    const tcp = await Deno.connect({ hostname: address.host, port: address.port });
    const conn = await Deno.startTls(tcp, {
      hostname: "shoal",
      caCerts: [identity.certificate],
    });
    try {
      const received: number[] = [];
      const buffer = new Uint8Array(4096);
      const deadline = setTimeout(() => conn.close(), 5000);
      try {
        while (true) {
          const n = await conn.read(buffer);
          if (n === null) break;
          received.push(...buffer.subarray(0, n));
        }
      } finally {
        clearTimeout(deadline);
      }
      const bytes = new Uint8Array(received);
      const length = new DataView(bytes.buffer).getUint32(0);
      assert.equal(bytes.length, 4 + length, "exactly one frame, then the close");
      const reply = JSON.parse(new TextDecoder().decode(bytes.subarray(4)));
      assert.equal(reply.id, -1);
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "BUSY");
    } finally {
      try {
        conn.close();
      } catch {
        // Closed by the server.
      }
    }
  } finally {
    for (const client of clients) client.close();
    await server.close();
  }
});
