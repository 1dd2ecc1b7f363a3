/**
 * What the wire's TLS needs to know about identities: the one name every
 * certificate carries, and the certificate and key a server listens with.
 * Making, storing and pinning them is lib/identity's work.
 */

/** The name every Shoal certificate carries; connections verify it, not the IP. */
export const TLS_SERVER_NAME = "shoal";

/** A certificate and its private key, both PEM. */
export interface TlsIdentity {
  certificate: string;
  key: string;
}
