/**
 * Which account each certificate the tracker hands out belongs to, while any
 * of its connections is online. The tracker vouches for a certificate by
 * handing it out with an account's address, so one account must not announce
 * another's.
 */

import { ShoalError } from "../protocol/errors.ts";

/**
 * Counts the uses (an announcement, a partial source) of each certificate,
 * with the account that holds them.
 *
 * @example
 * ```ts
 * const owners = new CertificateOwners();
 * owners.claim(pem, "alice");
 * owners.claim(pem, "mallory"); // throws INVALID_INPUT: alice holds it
 * owners.release(pem);
 * ```
 */
export class CertificateOwners {
  readonly #holders = new Map<string, { owner: string; uses: number }>();

  /**
   * Counts one more use by `owner`; throws INVALID_INPUT (counting nothing)
   * if another account holds the certificate.
   */
  claim(certificate: string, owner: string): void {
    const holder = this.#holders.get(certificate);
    if (holder === undefined) {
      this.#holders.set(certificate, { owner, uses: 1 });
      return;
    }
    if (holder.owner.toLowerCase() !== owner.toLowerCase()) {
      throw new ShoalError(
        "INVALID_INPUT",
        "this certificate is already announced by another online account; " +
          "a peer must serve with its own (each home makes one)",
      );
    }
    holder.uses++;
  }

  /** Ends one use; the certificate is free again after its last. */
  release(certificate: string): void {
    const holder = this.#holders.get(certificate);
    if (holder !== undefined && --holder.uses === 0) this.#holders.delete(certificate);
  }
}
