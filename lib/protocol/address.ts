import { ShoalError } from "./errors.ts";

/** A TCP endpoint. */
export interface Address {
  host: string;
  port: number;
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT` or, with a default port, a bare host.
 *
 * @example
 * ```ts
 * parseAddress("127.0.0.1:5050"); // { host: "127.0.0.1", port: 5050 }
 * parseAddress("[::1]:5050");     // { host: "::1", port: 5050 }
 * ```
 */
export function parseAddress(text: string, defaultPort?: number): Address {
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ??
    /^([^:\s]+)(?::(\d+))?$/.exec(text);
  const host = match?.[1];
  const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
  if (!host || port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ShoalError("INVALID_INPUT", `"${text}" is not a HOST:PORT address`);
  }
  return { host, port };
}

/** Formats an address as `host:port`, bracketing IPv6 hosts. */
export function formatAddress({ host, port }: Address): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether a host is a wildcard that cannot be dialled (`0.0.0.0`, `::`). */
export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/**
 * Whether `error` says the host to listen on is no address of this machine
 * (`Deno.listen` says EADDRNOTAVAIL; `node:net`, which the TLS listener uses,
 * reports the same as an EINVAL from `listen`).
 */
export function isAddressNotAvailable(error: unknown): boolean {
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  return error instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL" ||
    (code === "EINVAL" && syscall === "listen");
}

/** What a listen on a host that is no address here says, and its hint's start. */
export function notAvailableHere(host: string): string {
  return `${host} is not an address of this machine`;
}

/** Whether `error` says the port is taken (as `Deno.listen` and `node:net` say it). */
export function isAddressInUse(error: unknown): boolean {
  return error instanceof Deno.errors.AddrInUse ||
    (error as { code?: unknown } | null)?.code === "EADDRINUSE";
}
