/**
 * Salted scrypt password hashes. Hashing runs on libuv's thread pool through
 * the async `scrypt`, so a burst of logins does not stall the event loop.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

const COST = 16384;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, cost: number, block: number, parallel: number) {
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { N: cost, r: block, p: parallel }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

/**
 * Hashes a password as `scrypt$N$r$p$salt$hash` (base64 salt and hash), so
 * the cost can be raised later without breaking stored hashes.
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, COST, BLOCK_SIZE, PARALLELISM);
  return ["scrypt", COST, BLOCK_SIZE, PARALLELISM, salt.toString("base64"), key.toString("base64")]
    .join("$");
}

/** Checks a password against a stored hash in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, cost, block, parallel, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || hash === undefined) return false;
  const expected = Buffer.from(hash, "base64");
  const key = await derive(
    password,
    Buffer.from(salt, "base64"),
    Number(cost),
    Number(block),
    Number(parallel),
  );
  return key.length === expected.length && timingSafeEqual(key, expected);
}

let dummy: Promise<string> | null = null;

/**
 * A hash of no real password, checked when a username is unknown so that the
 * answer takes as long as for a known one.
 */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString("hex"));
  return dummy;
}
