/**
 * The key files a server keeps in its folder, made on first start so that
 * encryption and tickets need no setup: its TLS identity (certificate and
 * key) and the tracker's ticket signing key. Private keys are readable by
 * their owner only.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { importTicketKey } from "../protocol/tickets.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import { keepKeyPrivate } from "../storage/private_files.ts";
import { createIdentity } from "./certificate.ts";

/**
 * Loads the identity kept at `prefix` + `cert.pem` / `key.pem`, creating it
 * on first use. The key file is readable by its owner only: created so
 * (never through a link planted at its path), and tightened if others could
 * read it, with a line to `warn` (default `console.error`).
 */
export async function loadOrCreateIdentity(
  dir: string,
  prefix: string,
  options: { warn?: (line: string) => void } = {},
): Promise<TlsIdentity> {
  const certPath = join(dir, `${prefix}cert.pem`);
  const keyPath = join(dir, `${prefix}key.pem`);
  try {
    keepKeyPrivate(keyPath, "the TLS key", options.warn ?? console.error);
    return {
      certificate: await Deno.readTextFile(certPath),
      key: await Deno.readTextFile(keyPath),
    };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ShoalError(
        "IO",
        `cannot read the TLS identity in ${dir}: ${(error as Error).message}`,
      );
    }
  }
  const identity = await createIdentity();
  try {
    await Deno.writeTextFile(keyPath, identity.key, { mode: 0o600, createNew: true });
    await Deno.writeTextFile(certPath, identity.certificate);
  } catch (error) {
    throw new ShoalError("IO", `cannot save a TLS identity in ${dir}: ${(error as Error).message}`);
  }
  return identity;
}

/**
 * The tracker's signing key pair, kept at `path` (PKCS#8 PEM) and made on
 * first start, readable by its owner only: whoever reads it can sign
 * tickets. An existing key file others could read is tightened, with a line
 * to `warn` (default `console.error`).
 */
export async function loadOrCreateTicketKey(
  dir: string,
  file: string,
  options: { warn?: (line: string) => void } = {},
): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey; publicKeyBase64: string }> {
  const path = join(dir, file);
  let pkcs8: Uint8Array<ArrayBuffer>;
  try {
    keepKeyPrivate(path, "the ticket key", options.warn ?? console.error);
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
    try {
      await Deno.writeTextFile(
        path,
        `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`,
        { mode: 0o600, createNew: true },
      );
    } catch (error) {
      // Say, a link planted at the path: it is not written through.
      throw new ShoalError("IO", `cannot save the ticket key ${path}: ${(error as Error).message}`);
    }
  }
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
      "sign",
    ]);
  } catch (error) {
    // WebCrypto says only "Invalid key data": name the file.
    throw new ShoalError(
      "IO",
      `the ticket key ${path} is not an Ed25519 private key in PEM (${(error as Error).message})`,
      { hint: "restore the file from a backup or another of the tracker's machines" },
    );
  }
  // The public half, from the private key's JWK (x is the public point).
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKeyBase64 = Buffer.from(jwk.x!, "base64url").toString("base64");
  return { privateKey, publicKey: await importTicketKey(publicKeyBase64), publicKeyBase64 };
}
