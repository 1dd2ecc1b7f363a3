import assert from "node:assert/strict";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { PEER_METHODS } from "../../lib/protocol/messages.ts";
import { signTicket } from "../../lib/protocol/tickets.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { UploadLog } from "../../lib/peer/upload_log.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { eventually } from "../helpers/eventually.ts";

const PIECE_SIZE = 64 * 1024;
const CONTENT = Uint8Array.from({ length: 3 * PIECE_SIZE }, (_, i) => i & 0xff);
const { contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

/** A plaintext piece server over {@link CONTENT} logging to `lines`, and a client of it. */
async function serving(format: "text" | "json") {
  const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const lines: string[] = [];
  const server = new PieceServer(memoryCatalog(CONTENT, PIECE_SIZE), {
    username: () => "alice",
    warn: () => {},
    uploads: new UploadLog({ format, write: (line) => lines.push(line) }),
  });
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  await server.trustTicketKey(btoa(String.fromCharCode(...raw)));
  const address = await server.listen({ host: "127.0.0.1", port: 0 });
  const client = await ProtocolClient.connect(address, PEER_METHODS, {
    agent: "upload-log-test",
    expect: "peer",
  });
  return { server, client, lines, keys };
}

/**
 * Makes the request `call` sends to a {@link serving} server logging in
 * `format`, which must refuse it; returns the one line the server logged.
 */
async function refusalLogged(
  format: "text" | "json",
  call: (client: Awaited<ReturnType<typeof serving>>["client"]) => Promise<unknown>,
): Promise<string> {
  const { server, client, lines } = await serving(format);
  try {
    await assert.rejects(call(client));
  } finally {
    client.close();
    await server.close();
  }
  assert.equal(lines.length, 1, lines.join("\n"));
  return lines[0];
}

Deno.test("UploadLog - serve logs one JSON line per upload: who, which content, bytes, rate, duration", async () => {
  const { server, client, lines, keys } = await serving("json");
  try {
    const ticket = await signTicket(keys.privateKey, "bob", CONTENT_ID);
    for (const index of [0, 1, 2]) {
      await client.callWithBody("piece", { contentId: CONTENT_ID, index, ticket });
    }
    client.close();
    // The log is written when the server sees the close.
    await eventually(() => lines.length >= 1, "the upload was logged");
  } finally {
    client.close();
    await server.close();
  }
  assert.equal(lines.length, 1, lines.join("\n"));
  const record = JSON.parse(lines[0]);
  assert.equal(record.msg, "upload");
  assert.equal(record.level, "info");
  assert.equal(record.user, "bob");
  assert.equal(record.contentId, CONTENT_ID);
  assert.equal(record.bytes, CONTENT.length);
  assert.equal(record.pieces, 3);
  assert.match(record.address, /^127\.0\.0\.1:\d+$/);
  assert.equal(typeof record.durationMs, "number");
  assert.ok(record.bytesPerSecond === null || record.bytesPerSecond > 0);
});

Deno.test("UploadLog - a bad ticket is logged as a refusal, as text", async () => {
  const line = await refusalLogged(
    "text",
    (client) =>
      client.callWithBody("piece", { contentId: CONTENT_ID, index: 0, ticket: "forged.ticket" }),
  );
  assert.match(
    line,
    new RegExp(
      `^\\S+Z WARN  refused user=- address=127\\.0\\.0\\.1:\\d+ share=- contentId=${CONTENT_ID} code=TICKET_INVALID reason="bad ticket"$`,
    ),
  );
});

Deno.test("UploadLog - a bad ticket for a folder's manifest is logged as a refusal too", async () => {
  const line = await refusalLogged(
    "json",
    (client) =>
      client.callWithBody("folder", { contentId: CONTENT_ID, offset: 0, ticket: "forged.ticket" }),
  );
  const record = JSON.parse(line);
  assert.equal(record.msg, "refused");
  assert.equal(record.code, "TICKET_INVALID");
  assert.equal(record.reason, "bad ticket");
});

Deno.test("UploadLog - text lines give the share's name, duration and rate in their units", () => {
  const lines: string[] = [];
  let now = 1000;
  const log = new UploadLog({ write: (line) => lines.push(line), now: () => now });
  const connection = {};
  const piece = {
    user: "bob",
    address: "10.0.0.2:5000",
    contentId: "ab".repeat(32),
    share: "big file.iso",
    bytes: 2_000_000,
  };
  log.served(connection, piece);
  now = 2000;
  log.served(connection, piece);
  log.refusal({
    user: "carl",
    address: "10.0.0.3:5000",
    contentId: "cd".repeat(32),
    share: "x",
    code: "BUSY",
    reason: "over limits",
  });
  log.closed(connection);
  log.closed(connection);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /WARN {2}refused user=carl .* code=BUSY reason="over limits"$/);
  assert.match(
    lines[1],
    /INFO {2}upload user=bob address=10\.0\.0\.2:5000 share="big file\.iso" contentId=(ab)+ bytes=4000000 pieces=2 duration=1\.00s rate=4\.00MB\/s$/,
  );
});
