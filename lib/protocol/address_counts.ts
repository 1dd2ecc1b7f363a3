/**
 * Connections open now, by the address they come from: what a server
 * counts to hold one host to its share (the protocol port's and the
 * tracker's HTTP port's per-address limits).
 */
export class AddressCounts {
  readonly #counts = new Map<string, number>();

  /** Connections `host` holds now. */
  of(host: string): number {
    return this.#counts.get(host) ?? 0;
  }

  /** `host` opened one more. */
  add(host: string): void {
    this.#counts.set(host, this.of(host) + 1);
  }

  /** One of `host`'s closed; a host with none left is forgotten. */
  remove(host: string): void {
    const left = this.of(host) - 1;
    if (left > 0) this.#counts.set(host, left);
    else this.#counts.delete(host);
  }
}
