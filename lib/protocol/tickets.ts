/**
 * Download tickets: the tracker signs, with its Ed25519 key, that a logged-in
 * user may fetch one content until a time; a serving peer checks the
 * signature with the tracker's public key, offline, before serving a byte.
 *
 * A ticket is `base64url(JSON payload) + "." + base64url(signature)`.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { ShoalError } from "./errors.ts";

/** How long a ticket is good for; downloaders fetch fresh ones as they go. */
export const TICKET_TTL_MS = 10 * 60 * 1000;

/** What a ticket grants. */
export interface TicketGrant {
  user: string;
  contentId: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

const encoder = new TextEncoder();

/** Signs a ticket for `user` and `contentId`, valid for `ttlMs`. */
export async function signTicket(
  key: CryptoKey,
  user: string,
  contentId: string,
  ttlMs = TICKET_TTL_MS,
  now = Date.now(),
): Promise<string> {
  const grant: TicketGrant = { user, contentId, expiresAt: now + ttlMs };
  const payload = Buffer.from(JSON.stringify(grant)).toString("base64url");
  const signature = await crypto.subtle.sign("Ed25519", key, encoder.encode(payload));
  return `${payload}.${Buffer.from(signature).toString("base64url")}`;
}

/**
 * Checks a ticket for `contentId`: TICKET_REQUIRED without one,
 * TICKET_INVALID for a forged, malformed or other content's ticket,
 * TICKET_EXPIRED for an old one.
 */
export async function verifyTicket(
  key: CryptoKey,
  ticket: string | undefined,
  contentId: string,
  now = Date.now(),
): Promise<TicketGrant> {
  if (!ticket) {
    throw new ShoalError("TICKET_REQUIRED", "a download ticket from the tracker is required");
  }
  const [payload, signature, extra] = ticket.split(".");
  if (!payload || !signature || extra !== undefined) {
    throw new ShoalError("TICKET_INVALID", "malformed download ticket");
  }
  const valid = await crypto.subtle.verify(
    "Ed25519",
    key,
    Buffer.from(signature, "base64url"),
    encoder.encode(payload),
  ).catch(() => false);
  if (!valid) {
    throw new ShoalError("TICKET_INVALID", "the download ticket is not signed by the tracker");
  }
  let grant: TicketGrant;
  try {
    grant = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    throw new ShoalError("TICKET_INVALID", "malformed download ticket");
  }
  if (grant.contentId !== contentId) {
    throw new ShoalError("TICKET_INVALID", "the download ticket is for another content");
  }
  if (!(grant.expiresAt > now)) {
    throw new ShoalError("TICKET_EXPIRED", "the download ticket has expired; fetch again");
  }
  return grant;
}

/** The tracker's signing key pair, kept at `path` (PKCS#8 PEM) and made on first start. */
export async function loadOrCreateTicketKey(
  dir: string,
  file: string,
): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey; publicKeyBase64: string }> {
  const path = join(dir, file);
  let pkcs8: Uint8Array<ArrayBuffer>;
  try {
    const pem = await Deno.readTextFile(path);
    pkcs8 = new Uint8Array(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64"));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ShoalError("IO", `cannot read the ticket key ${path}: ${(error as Error).message}`);
    }
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const body = Buffer.from(pkcs8).toString("base64").match(/.{1,64}/g)!.join("\n");
    await Deno.writeTextFile(
      path,
      `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`,
      {
        mode: 0o600,
      },
    );
  }
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
    "sign",
  ]);
  // The public half, from the private key's JWK (x is the public point).
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await importTicketKey(Buffer.from(jwk.x!, "base64url").toString("base64"));
  return {
    privateKey,
    publicKey,
    publicKeyBase64: Buffer.from(jwk.x!, "base64url").toString("base64"),
  };
}

/** Imports the tracker's public ticket key as peers receive it: 32 raw bytes, base64. */
export function importTicketKey(base64: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", Buffer.from(base64, "base64"), { name: "Ed25519" }, true, [
    "verify",
  ]);
}

/**
 * Checks tickets against one tracker key, remembering signatures already
 * checked: a download presents the same ticket with every piece, and only
 * the expiry and the content id need checking again.
 */
export class TicketVerifier {
  readonly #key: CryptoKey;
  readonly #verified = new Map<string, TicketGrant>();

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async verify(
    ticket: string | undefined,
    contentId: string,
    now = Date.now(),
  ): Promise<TicketGrant> {
    const known = ticket === undefined ? undefined : this.#verified.get(ticket);
    if (!known) {
      const grant = await verifyTicket(this.#key, ticket, contentId, now);
      if (this.#verified.size >= 1024) this.#verified.clear();
      this.#verified.set(ticket!, grant);
      return grant;
    }
    if (known.contentId !== contentId) {
      throw new ShoalError("TICKET_INVALID", "the download ticket is for another content");
    }
    if (!(known.expiresAt > now)) {
      throw new ShoalError("TICKET_EXPIRED", "the download ticket has expired; fetch again");
    }
    return known;
  }
}
