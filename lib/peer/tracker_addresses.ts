/**
 * A tracker's addresses: one tracker may run as several processes (sharing
 * one store and one identity), and a peer lists them all, comma-separated,
 * wherever it names the tracker (`--tracker`, `SHOAL_TRACKER`, the config
 * key `tracker`). One address is the list of one.
 */
import { type Address, formatAddress, parseAddress } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";

/** More addresses than any tracker has processes is a mistake (a pasted list of peers, say). */
export const MAX_TRACKER_ADDRESSES = 16;

/**
 * Parses `HOST:PORT[,HOST:PORT...]` (a bare host takes `defaultPort`);
 * spaces around an entry are allowed. An empty entry, a bad one, or one
 * listed twice is an INVALID_INPUT error naming it.
 *
 * @example
 * ```ts
 * parseTrackerAddresses("a:5050, b", 5050); // [{ host: "a", port: 5050 }, { host: "b", port: 5050 }]
 * ```
 */
export function parseTrackerAddresses(text: string, defaultPort?: number): Address[] {
  const entries = text.split(",").map((entry) => entry.trim());
  if (entries.length === 1 && entries[0] === "") {
    throw new ShoalError("INVALID_INPUT", "no tracker address given: expected HOST:PORT");
  }
  if (entries.length > MAX_TRACKER_ADDRESSES) {
    throw new ShoalError(
      "INVALID_INPUT",
      `${entries.length} tracker addresses given; at most ${MAX_TRACKER_ADDRESSES}`,
      { hint: "list only the addresses of one tracker's processes, comma-separated" },
    );
  }
  const several = entries.length > 1;
  const seen = new Map<string, number>();
  return entries.map((entry, i) => {
    const which = several ? ` (address ${i + 1} of ${entries.length} in "${text}")` : "";
    if (entry === "") {
      throw new ShoalError(
        "INVALID_INPUT",
        `empty tracker address${which}: separate HOST:PORT entries with single commas`,
      );
    }
    let address: Address;
    try {
      address = parseAddress(entry, defaultPort);
    } catch {
      throw new ShoalError(
        "INVALID_INPUT",
        `"${entry}"${which} is not a HOST:PORT address${whyNotAddress(entry)}`,
      );
    }
    const key = addressKey(address);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new ShoalError(
        "INVALID_INPUT",
        `"${entry}" is listed twice (addresses ${earlier + 1} and ${i + 1} in "${text}")`,
      );
    }
    seen.set(key, i);
    return address;
  });
}

/**
 * What is wrong with an entry that is no HOST:PORT, where a newcomer's
 * mistake shows: a URL pasted (`https://host:5050/`), a port past 65535,
 * several addresses with spaces instead of commas.
 */
function whyNotAddress(entry: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(entry);
  if (url) return `; write it without "${entry.slice(0, entry.indexOf("//") + 2)}": ${url[1]}`;
  const port = /:(\d+)$/.exec(entry);
  if (port && Number(port[1]) > 65535) return "; a port is at most 65535";
  return /\s/.test(entry) ? "; separate several with commas" : "";
}

/** The list as the flag takes it: `a:5050,b:5050`. */
export function formatTrackerAddresses(addresses: readonly Address[]): string {
  return addresses.map(formatAddress).join(",");
}

/** Whether two addresses are the same (host names compare without case). */
export function sameAddress(a: Address, b: Address): boolean {
  return addressKey(a) === addressKey(b);
}

function addressKey(address: Address): string {
  return formatAddress({ host: address.host.toLowerCase(), port: address.port });
}

/**
 * The order to try a tracker's addresses in: the one that answered last
 * (`preferred`) first, then the others as listed; an address whose
 * connection was just lost (`lost`) goes last, so a reconnect tries the
 * others before it.
 */
export function connectOrder(
  addresses: readonly Address[],
  preferred?: Address | null,
  lost?: Address | null,
): Address[] {
  const first = addresses.filter((a) => preferred && sameAddress(a, preferred));
  const rest = addresses.filter((a) => !(preferred && sameAddress(a, preferred)));
  const order = [...first, ...rest];
  if (!lost) return order;
  return [
    ...order.filter((a) => !sameAddress(a, lost)),
    ...order.filter((a) => sameAddress(a, lost)),
  ];
}
