import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";
import {
  importTicketKey,
  signTicket,
  TICKET_TTL_MS,
  verifyTicket,
} from "../../lib/protocol/tickets.ts";
import { tempDir } from "../helpers/processes.ts";
import { shoalError } from "../helpers/errors.ts";

const CONTENT_ID = "ab".repeat(32);
const OTHER_CONTENT_ID = "cd".repeat(32);
const NOW = 1_700_000_000_000;

function newKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;
}

/** The ticket with its JSON payload replaced by `edit(payload)`, keeping the old signature. */
function withPayload(ticket: string, edit: (grant: Record<string, unknown>) => unknown): string {
  const [payload, signature] = ticket.split(".");
  const grant = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  const altered = Buffer.from(JSON.stringify(edit(grant))).toString("base64url");
  return `${altered}.${signature}`;
}

Deno.test("verifyTicket - the right ticket verifies and returns its grant", async () => {
  const keys = await newKeyPair();
  const ticket = await signTicket(keys.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  assert.match(ticket, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const grant = await verifyTicket(keys.publicKey, ticket, CONTENT_ID, NOW + 1000);
  assert.deepEqual(grant, { user: "alice", contentId: CONTENT_ID, expiresAt: NOW + 60_000 });
});

Deno.test("verifyTicket - the default lifetime is TICKET_TTL_MS from now", async () => {
  const keys = await newKeyPair();
  const before = Date.now();
  const ticket = await signTicket(keys.privateKey, "alice", CONTENT_ID);
  const grant = await verifyTicket(keys.publicKey, ticket, CONTENT_ID);
  assert.ok(grant.expiresAt >= before + TICKET_TTL_MS);
  assert.ok(grant.expiresAt <= Date.now() + TICKET_TTL_MS);
});

Deno.test("verifyTicket - no ticket is TICKET_REQUIRED", async () => {
  const keys = await newKeyPair();
  await assert.rejects(
    verifyTicket(keys.publicKey, undefined, CONTENT_ID),
    shoalError("TICKET_REQUIRED"),
  );
  await assert.rejects(verifyTicket(keys.publicKey, "", CONTENT_ID), shoalError("TICKET_REQUIRED"));
});

Deno.test("verifyTicket - a ticket past its expiry is TICKET_EXPIRED", async () => {
  const keys = await newKeyPair();
  const ticket = await signTicket(keys.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  await verifyTicket(keys.publicKey, ticket, CONTENT_ID, NOW + 59_999);
  // The expiry instant itself is already too late.
  await assert.rejects(
    verifyTicket(keys.publicKey, ticket, CONTENT_ID, NOW + 60_000),
    shoalError("TICKET_EXPIRED"),
  );
  await assert.rejects(
    verifyTicket(keys.publicKey, ticket, CONTENT_ID, NOW + 3_600_000),
    shoalError("TICKET_EXPIRED"),
  );
});

Deno.test("verifyTicket - a ticket signed by another key is TICKET_INVALID", async () => {
  const tracker = await newKeyPair();
  const forger = await newKeyPair();
  const forged = await signTicket(forger.privateKey, "mallory", CONTENT_ID, 60_000, NOW);
  await assert.rejects(
    verifyTicket(tracker.publicKey, forged, CONTENT_ID, NOW),
    shoalError("TICKET_INVALID"),
  );
});

Deno.test("verifyTicket - an altered payload is TICKET_INVALID", async () => {
  const keys = await newKeyPair();
  const ticket = await signTicket(keys.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  const alterations = [
    withPayload(ticket, (grant) => ({ ...grant, expiresAt: NOW + 10 * 365 * 86_400_000 })),
    withPayload(ticket, (grant) => ({ ...grant, contentId: OTHER_CONTENT_ID })),
    withPayload(ticket, (grant) => ({ ...grant, user: "mallory" })),
    withPayload(ticket, () => null),
  ];
  for (const altered of alterations) {
    await assert.rejects(
      verifyTicket(keys.publicKey, altered, CONTENT_ID, NOW),
      shoalError("TICKET_INVALID"),
    );
  }
  // One flipped signature bit.
  const [payload, signature] = ticket.split(".");
  const bytes = Buffer.from(signature, "base64url");
  bytes[0] ^= 1;
  await assert.rejects(
    verifyTicket(keys.publicKey, `${payload}.${bytes.toString("base64url")}`, CONTENT_ID, NOW),
    shoalError("TICKET_INVALID"),
  );
});

Deno.test("verifyTicket - garbage is TICKET_INVALID", async () => {
  const keys = await newKeyPair();
  const ticket = await signTicket(keys.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  const [payload, signature] = ticket.split(".");
  const garbage = [
    "x",
    ".",
    "..",
    "a.b",
    "a.b.c",
    `${ticket}.`,
    `${ticket}.${signature}`,
    `.${signature}`,
    `${payload}.`,
    payload,
    "!!!!.????",
    "🦈.🦈",
    "A".repeat(2000),
    `${"A".repeat(1000)}.${"B".repeat(1000)}`,
  ];
  for (const ticketText of garbage) {
    await assert.rejects(
      verifyTicket(keys.publicKey, ticketText, CONTENT_ID, NOW),
      shoalError("TICKET_INVALID"),
      `ticket ${JSON.stringify(ticketText.slice(0, 40))}`,
    );
  }
});

Deno.test("verifyTicket - a ticket for another content is TICKET_INVALID", async () => {
  const keys = await newKeyPair();
  const ticket = await signTicket(keys.privateKey, "alice", OTHER_CONTENT_ID, 60_000, NOW);
  await assert.rejects(
    verifyTicket(keys.publicKey, ticket, CONTENT_ID, NOW),
    shoalError("TICKET_INVALID"),
  );
});

Deno.test("loadOrCreateTicketKey - creates an owner-only key file, and loads the same key again", async () => {
  await using dir = await tempDir();
  const first = await loadOrCreateTicketKey(dir.path, "ticket-key.pem");
  const path = join(dir.path, "ticket-key.pem");
  const stat = await Deno.stat(path);
  assert.ok(stat.isFile);
  if (Deno.build.os !== "windows") assert.equal(stat.mode! & 0o777, 0o600);
  assert.match(
    await Deno.readTextFile(path),
    /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PRIVATE KEY-----\n$/,
  );
  assert.equal(Buffer.from(first.publicKeyBase64, "base64").length, 32);

  const second = await loadOrCreateTicketKey(dir.path, "ticket-key.pem");
  assert.equal(second.publicKeyBase64, first.publicKeyBase64);
  const ticket = await signTicket(first.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  assert.equal((await verifyTicket(second.publicKey, ticket, CONTENT_ID, NOW)).user, "alice");
  const back = await signTicket(second.privateKey, "bob", CONTENT_ID, 60_000, NOW);
  assert.equal((await verifyTicket(first.publicKey, back, CONTENT_ID, NOW)).user, "bob");
});

Deno.test("loadOrCreateTicketKey - a new folder gets a new key", async () => {
  await using one = await tempDir();
  await using two = await tempDir();
  const first = await loadOrCreateTicketKey(one.path, "key.pem");
  const second = await loadOrCreateTicketKey(two.path, "key.pem");
  assert.notEqual(first.publicKeyBase64, second.publicKeyBase64);
  const ticket = await signTicket(first.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  await assert.rejects(
    verifyTicket(second.publicKey, ticket, CONTENT_ID, NOW),
    shoalError("TICKET_INVALID"),
  );
});

Deno.test("importTicketKey - the published base64 public key verifies the tracker's tickets", async () => {
  await using dir = await tempDir();
  const tracker = await loadOrCreateTicketKey(dir.path, "key.pem");
  const peerKey = await importTicketKey(tracker.publicKeyBase64);
  assert.equal(peerKey.type, "public");
  assert.deepEqual(peerKey.usages, ["verify"]);
  const ticket = await signTicket(tracker.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  assert.deepEqual(await verifyTicket(peerKey, ticket, CONTENT_ID, NOW), {
    user: "alice",
    contentId: CONTENT_ID,
    expiresAt: NOW + 60_000,
  });
  const forger = await newKeyPair();
  const forged = await signTicket(forger.privateKey, "alice", CONTENT_ID, 60_000, NOW);
  await assert.rejects(
    verifyTicket(peerKey, forged, CONTENT_ID, NOW),
    shoalError("TICKET_INVALID"),
  );
});
