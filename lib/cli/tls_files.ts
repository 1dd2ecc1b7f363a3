/**
 * An operator's own certificate and key for the tracker's two ports
 * (`serve --tls-cert FILE --tls-key FILE`), read and checked as one pair
 * before anything listens.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { ShoalError } from "../protocol/errors.ts";
import type { TlsIdentity } from "../protocol/tls.ts";

/** Reads an operator's certificate and key (PEM) for both ports. */
export async function readTlsFiles(certFile: string, keyFile: string): Promise<TlsIdentity> {
  const read = async (file: string, what: string) => {
    try {
      const text = await Deno.readTextFile(file);
      if (!text.includes("-----BEGIN ")) throw new Error("not a PEM file");
      return text;
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "no such file"
        : error instanceof Deno.errors.PermissionDenied
        ? "permission denied"
        : (error as Error).message;
      throw new ShoalError("IO", `cannot read ${what} ${file}: ${why}`, {
        hint: "pass a PEM file, or drop --tls-cert/--tls-key to use the tracker's own certificate",
      });
    }
  };
  const certificate = await read(certFile, "the certificate (--tls-cert)");
  const key = await read(keyFile, "the key (--tls-key)");
  // Checked here, so that a wrong file is one clear line before anything listens, rather than
  // the TLS library's "KeyMismatch" from the HTTP side after the protocol port is up.
  const swapped = "swapped --tls-cert and --tls-key?";
  if (!certificate.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ShoalError(
      "IO",
      `cannot read the certificate (--tls-cert) ${certFile}: it holds no certificate` +
        (certificate.includes("PRIVATE KEY-----") ? ` but a private key (${swapped})` : ""),
      { hint: "pass an X.509 certificate in PEM (-----BEGIN CERTIFICATE-----)" },
    );
  }
  if (!key.includes("PRIVATE KEY-----")) {
    throw new ShoalError(
      "IO",
      `cannot read the key (--tls-key) ${keyFile}: it holds no private key` +
        (key.includes("-----BEGIN CERTIFICATE-----") ? ` but a certificate (${swapped})` : ""),
      { hint: "pass the certificate's private key in PEM, unencrypted" },
    );
  }
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(certificate);
  } catch (error) {
    throw new ShoalError(
      "IO",
      `cannot read the certificate (--tls-cert) ${certFile}: ${(error as Error).message}`,
      { hint: "pass an X.509 certificate in PEM (-----BEGIN CERTIFICATE-----)" },
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new ShoalError(
      "IO",
      `cannot read the key (--tls-key) ${keyFile}: ${(error as Error).message}`,
      { hint: "pass the certificate's private key in PEM, unencrypted" },
    );
  }
  if (!parsed.checkPrivateKey(privateKey)) {
    throw new ShoalError(
      "IO",
      `the key (--tls-key) ${keyFile} is not the key of the certificate (--tls-cert) ${certFile}`,
      { hint: "pass the key the certificate was made with" },
    );
  }
  return { certificate, key };
}
