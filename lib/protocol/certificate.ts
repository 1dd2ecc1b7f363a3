/**
 * Self-signed TLS identities, made on first start so encryption needs no
 * setup. Nobody trusts them through a CA: a tracker's is pinned by its peers
 * on first contact (as SSH pins host keys), and a peer's is vouched for by the
 * tracker, which hands it out with the peer's address.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash } from "node:crypto";
import tls from "node:tls";
import { join } from "node:path";
import { ShoalError } from "./errors.ts";

/** The name every Shoal certificate carries; connections verify it, not the IP. */
export const TLS_SERVER_NAME = "shoal";

/** A certificate and its private key, both PEM. */
export interface TlsIdentity {
  certificate: string;
  key: string;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

/** Makes a new self-signed ECDSA P-256 certificate for {@link TLS_SERVER_NAME}. */
export async function createIdentity(): Promise<TlsIdentity> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // A positive serial number.
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Array.from(serial, (b) => b.toString(16).padStart(2, "0")).join(""),
    name: `CN=${TLS_SERVER_NAME}`,
    notBefore: new Date(Date.now() - 24 * 3600 * 1000),
    notAfter: new Date(Date.now() + TEN_YEARS_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      // Not a CA: TLS libraries refuse a CA certificate used by a server.
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: TLS_SERVER_NAME }]),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certificate: certificate.toString("pem"),
    key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
  };
}

/**
 * Loads the identity kept at `prefix` + `cert.pem` / `key.pem`, creating it
 * on first use. The key file is readable by its owner only.
 */
export async function loadOrCreateIdentity(dir: string, prefix: string): Promise<TlsIdentity> {
  const certPath = join(dir, `${prefix}cert.pem`);
  const keyPath = join(dir, `${prefix}key.pem`);
  try {
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
    await Deno.writeTextFile(keyPath, identity.key, { mode: 0o600 });
    await Deno.writeTextFile(certPath, identity.certificate);
  } catch (error) {
    throw new ShoalError("IO", `cannot save a TLS identity in ${dir}: ${(error as Error).message}`);
  }
  return identity;
}

/** The DER bytes inside a PEM certificate. */
function derOf(pem: string): Uint8Array {
  return new Uint8Array(x509.PemConverter.decodeFirst(pem));
}

/** `SHA256:` and the certificate's SHA-256 as colon-separated hex, as people compare them. */
export function fingerprintOf(pem: string): string {
  const hex = createHash("sha256").update(derOf(pem)).digest("hex").toUpperCase();
  return `SHA256:${hex.match(/../g)!.join(":")}`;
}

/** A certificate's DER bytes as PEM. */
export function pemOf(der: Uint8Array): string {
  return x509.PemConverter.encode(new Uint8Array(der).buffer, "CERTIFICATE");
}

/**
 * Reads the certificate a TLS server presents, without trusting it: the
 * first contact of trust-on-first-use. What it returns must be pinned, and
 * every later connection verified against it.
 */
export function fetchCertificate(host: string, port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      servername: TLS_SERVER_NAME,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ShoalError("TIMEOUT", `${host}:${port} did not complete a TLS handshake`));
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const raw = socket.getPeerCertificate(true)?.raw;
      socket.end();
      if (raw) resolve(pemOf(new Uint8Array(raw)));
      else reject(new ShoalError("UNREACHABLE", `${host}:${port} presented no certificate`));
    });
    socket.once("error", (error: Error & { code?: string }) => {
      clearTimeout(timer);
      socket.destroy();
      // Nothing listening (or no route) is not a TLS problem: say which it is.
      const unreachable = /^E(CONNREFUSED|HOSTUNREACH|NETUNREACH|TIMEDOUT|CONNRESET)$/
        .test(error.code ?? "");
      reject(
        new ShoalError(
          "UNREACHABLE",
          unreachable
            ? `cannot reach ${host}:${port}: ${error.message}`
            : `no TLS from ${host}:${port} (${error.message}); is it running with --insecure-plaintext?`,
        ),
      );
    });
  });
}
