/**
 * Download tickets: the tracker signs, with its Ed25519 key, that a logged-in
 * user may fetch one content until a time; a serving peer checks the
 * signature with the tracker's public key, offline, before serving a byte.
 *
 * A ticket is `base64url(JSON payload) + "." + base64url(signature)`.
 */
import { Buffer } from "node:buffer";
import { ShoalError } from "./errors.ts";

/** How long a ticket is good for; downloaders fetch fresh ones as they go. */
export const TICKET_TTL_MS = 10 * 60 * 1000;

/**
 * The content id of a ticket good for every content: what `holders` hands
 * out, since a folder fetch asks thousands of files' sources at once. It
 * grants no more than any logged-in user gets anyway, a ticket per content
 * on request; the user and the expiry still bind it.
 */
export const ANY_CONTENT = "*";

/** What a ticket grants. */
export interface TicketGrant {
  user: string;
  contentId: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

const encoder = new TextEncoder();

/** Whether a ticket's grant lets its holder download `contentId`. */
export function grantCovers(grant: TicketGrant, contentId: string): boolean {
  return grant.contentId === contentId || grant.contentId === ANY_CONTENT;
}

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
 * TICKET_EXPIRED for an old one. With `contentId` null, a ticket for any
 * content passes: the caller checks each content it serves with
 * {@link grantCovers} (a `pieces` batch).
 */
export async function verifyTicket(
  key: CryptoKey,
  ticket: string | undefined,
  contentId: string | null,
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
  if (contentId !== null && !grantCovers(grant, contentId)) {
    throw new ShoalError("TICKET_INVALID", "the download ticket is for another content");
  }
  if (!(grant.expiresAt > now)) {
    throw new ShoalError("TICKET_EXPIRED", "the download ticket has expired; fetch again");
  }
  return grant;
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

  /** As {@link verifyTicket} checks it (`contentId` null: for any content). */
  async verify(
    ticket: string | undefined,
    contentId: string | null,
    now = Date.now(),
  ): Promise<TicketGrant> {
    const known = ticket === undefined ? undefined : this.#verified.get(ticket);
    if (!known) {
      const grant = await verifyTicket(this.#key, ticket, contentId, now);
      if (this.#verified.size >= 1024) this.#verified.clear();
      this.#verified.set(ticket!, grant);
      return grant;
    }
    if (contentId !== null && !grantCovers(known, contentId)) {
      throw new ShoalError("TICKET_INVALID", "the download ticket is for another content");
    }
    if (!(known.expiresAt > now)) {
      throw new ShoalError("TICKET_EXPIRED", "the download ticket has expired; fetch again");
    }
    return known;
  }
}
