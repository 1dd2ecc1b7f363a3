/**
 * Self-signed TLS identities, made on first start so encryption needs no
 * setup. Nobody trusts them through a CA: a tracker's is pinned by its peers
 * on first contact (as SSH pins host keys), and a peer's is vouched for by the
 * tracker, which hands it out with the peer's address. Here: making them,
 * naming them for people, and reading the one a server presents on first
 * contact. Keeping them in files is key_files.ts's work.
 */
import { createHash, createPrivateKey, sign, verify, X509Certificate } from "node:crypto";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { ShoalError } from "../protocol/errors.ts";
import { TLS_SERVER_NAME, type TlsIdentity } from "../protocol/tls.ts";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

/**
 * The X.509 library, loaded only to make a certificate (once per home or
 * tracker): loading it costs every command's start tens of milliseconds.
 * Its dependency injection needs the Reflect polyfill loaded first.
 */
async function certificateLibrary(): Promise<typeof import("@peculiar/x509")> {
  await import("reflect-metadata");
  return await import("@peculiar/x509");
}

/** Makes a new self-signed ECDSA P-256 certificate for {@link TLS_SERVER_NAME}. */
export async function createIdentity(): Promise<TlsIdentity> {
  const x509 = await certificateLibrary();
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

/** What a peer signs to show the tracker it holds the key of the certificate it announces. */
function proofMessage(username: string): Uint8Array {
  return new TextEncoder().encode(`shoal: this certificate serves ${username.toLowerCase()}`);
}

/**
 * Signs, with the identity's private key, that its certificate serves
 * `username` (base64): announced with the certificate, it shows the tracker
 * that the account holds the key, so no account can announce (and so block)
 * another's certificate, which `sources` hands to anyone.
 *
 * @example
 * ```ts
 * const proof = proveCertificate(identity.key, "alice");
 * certificateProofHolds(identity.certificate, "alice", proof); // true
 * ```
 */
export function proveCertificate(key: string, username: string): string {
  return sign("sha256", proofMessage(username), createPrivateKey(key)).toString("base64");
}

/**
 * What a peer sends with `announce` and `downloading` to be vouched for:
 * its certificate and {@link proveCertificate}'s proof for `username`;
 * nothing for a plaintext peer, which has no identity.
 */
export function certificateClaim(
  identity: TlsIdentity | undefined,
  username: string,
): { certificate?: string; proof?: string } {
  if (!identity) return {};
  return { certificate: identity.certificate, proof: proveCertificate(identity.key, username) };
}

/** True when `proof` is {@link proveCertificate}'s signature for `username` by the certificate's key. */
export function certificateProofHolds(
  certificate: string,
  username: string,
  proof: string,
): boolean {
  try {
    const { publicKey } = new X509Certificate(certificate);
    return verify("sha256", proofMessage(username), publicKey, Buffer.from(proof, "base64"));
  } catch {
    return false;
  }
}

/** The first PEM block of a text: its label, and its base64 body (lines and all). */
const PEM_BLOCK =
  /-----BEGIN ([^\n-][^\n]*?)-----\n(?:[^\n]*: [^\n]*\n)*\n?([A-Za-z0-9+/=\n]+?)\n?-----END \1-----/;

/** The DER bytes inside a PEM certificate (its first block). */
function derOf(pem: string): Uint8Array {
  const block = PEM_BLOCK.exec(pem.replace(/\r/g, ""));
  if (!block) throw new RangeError("PEM string doesn't contain any objects");
  return new Uint8Array(Buffer.from(block[2].replace(/\n/g, ""), "base64"));
}

/** `SHA256:` and the certificate's SHA-256 as colon-separated hex, as people compare them. */
export function fingerprintOf(pem: string): string {
  const hex = createHash("sha256").update(derOf(pem)).digest("hex").toUpperCase();
  return `SHA256:${hex.match(/../g)!.join(":")}`;
}

/** A certificate's DER bytes as PEM. */
export function pemOf(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return ["-----BEGIN CERTIFICATE-----", ...lines, "-----END CERTIFICATE-----"].join("\n");
}

/** Who a certificate says it is and its fingerprint, for messages: `CN=nas.local (SHA256:…)`. */
export function describeCertificate(pem: string): string {
  let subject: string;
  try {
    // Node gives one attribute a line (`CN=nas.local\nO=Lab`): one line here, as people read it.
    subject = new X509Certificate(pem).subject.split("\n").filter(Boolean).join(", ") ||
      "no subject";
  } catch {
    subject = "an unreadable certificate";
  }
  return `${subject} (${fingerprintOf(pem)})`;
}

/** Options of {@link fetchCertificate}. */
export interface FetchCertificateOptions {
  /** @default {10000} */
  timeoutMs?: number;
  /** How host names are resolved (tests inject a failing resolver); the system's by default. */
  lookup?: tls.ConnectionOptions["lookup"];
}

/** What node reports when a name does not resolve (no such name, or no answer from DNS). */
const DNS_FAILURE = /^(ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL|EAI_NODATA)$/;
/** Nothing listening, or no route: not a TLS problem. */
const NO_CONNECTION = /^E(CONNREFUSED|HOSTUNREACH|NETUNREACH|TIMEDOUT|CONNRESET)$/;

/**
 * Reads the certificate a TLS server presents, without trusting it: the
 * first contact of trust-on-first-use. The caller pins it only once a Shoal
 * hello over it succeeds, and verifies every later connection against it.
 */
export function fetchCertificate(
  host: string,
  port: number,
  options: FetchCertificateOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      servername: TLS_SERVER_NAME,
      rejectUnauthorized: false,
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ShoalError("TIMEOUT", `${host}:${port} did not complete a TLS handshake`));
    }, options.timeoutMs ?? 10_000);
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
      const code = error.code ?? "";
      reject(
        DNS_FAILURE.test(code)
          ? new ShoalError("UNREACHABLE", `cannot resolve the host name "${host}" (DNS: ${code})`, {
            hint: "check the host name in --tracker HOST:PORT (or SHOAL_TRACKER)",
          })
          : NO_CONNECTION.test(code)
          ? new ShoalError(
            "UNREACHABLE",
            // Node says "connect ECONNREFUSED 127.0.0.1:5050", repeating the address.
            `cannot reach ${host}:${port}: ${
              code === "ECONNREFUSED" ? "connection refused" : error.message
            }`,
          )
          : new ShoalError(
            "UNREACHABLE",
            `no TLS from ${host}:${port} (${error.message}); is it running with --insecure-plaintext?`,
          ),
      );
    });
  });
}
