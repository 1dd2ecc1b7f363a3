/**
 * The tracker's secret tokens (protocol sessions, dashboard sessions, API
 * tokens): made random, and kept only as their SHA-256, so a copy of the
 * database logs nobody in. One hash for all, since a token issued by one
 * module is checked by another (an API token made by `admin token` is
 * looked up by the HTTP side's auth).
 *
 * @example
 * ```ts
 * const token = newToken();
 * await store.createApiToken(hashToken(token), "alice");
 * ```
 */
import { createHash, randomBytes } from "node:crypto";

/** SHA-256 of a token, hex: what the store keeps of it. */
export const hashToken = (token: string): string =>
  createHash("sha256").update(token).digest("hex");

/** A new random token of `bytes` random bytes, URL-safe base64. */
export const newToken = (bytes = 32): string => randomBytes(bytes).toString("base64url");
