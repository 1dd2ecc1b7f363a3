/**
 * Test hosts in network namespaces made by the test itself: one namespace per
 * host, joined by veth pairs to a bridge in a hub namespace. Nothing is added
 * to the root namespace, and every address used is one the test assigned.
 */

// The children run inside namespaces without a route out: never let them try.
Deno.env.set("DENO_NO_UPDATE_CHECK", "1");

/** Runs `ip ARGS`; throws with its stderr when it fails. */
export async function ip(...args: string[]): Promise<void> {
  const output = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!output.success) {
    const why = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`ip ${args.join(" ")} exited ${output.code}: ${why}`);
  }
}

function randomSuffix(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** Why network namespaces cannot be used here, or null when they can. */
export async function netnsUnavailable(): Promise<string | null> {
  try {
    if (Deno.uid() !== 0) return "not running as root";
  } catch (error) {
    return `cannot tell the user id: ${(error as Error).message}`;
  }
  const probe = `shoal-probe-${randomSuffix()}`;
  try {
    await ip("netns", "add", probe);
  } catch (error) {
    return `ip netns is not usable: ${(error as Error).message}`;
  }
  await ip("netns", "delete", probe).catch(() => {});
  return null;
}

/** Why network namespaces cannot be used here (null when they can), logged once per file. */
export async function netnsSkipReason(testFile: string): Promise<string | null> {
  const reason = await netnsUnavailable();
  if (reason !== null) console.log(`skipped ${testFile}: ${reason}`);
  return reason;
}

/** One host on the test LAN: its namespace and its address there. */
export interface Host {
  netns: string;
  ip: string;
}

/**
 * A private LAN: one namespace per host, each with `eth0` on 10.231.N.0/24,
 * wired by a veth pair to a bridge in a hub namespace. Disposing it deletes
 * every namespace, which takes the veths and the bridge with them.
 */
export class TestLan implements AsyncDisposable {
  readonly #namespaces: string[] = [];
  readonly #hub: string;
  readonly #subnet: string;
  readonly #suffix = randomSuffix();
  /** Each host's number, which names its veth pair. */
  readonly #indexes = new Map<string, number>();

  private constructor() {
    this.#hub = `shoal-hub-${this.#suffix}`;
    this.#subnet = `10.231.${1 + Math.floor(Math.random() * 254)}`;
  }

  /** Creates the hub and one host per name, in that order; removes all on failure. */
  static async create(names: string[]): Promise<TestLan & { hosts: Record<string, Host> }> {
    const lan = new TestLan();
    try {
      await lan.#addNamespace(lan.#hub);
      await ip("-n", lan.#hub, "link", "set", "lo", "up");
      await ip("-n", lan.#hub, "link", "add", "br0", "type", "bridge");
      await ip("-n", lan.#hub, "link", "set", "br0", "up");
      const hosts: Record<string, Host> = {};
      for (const [i, name] of names.entries()) hosts[name] = await lan.#addHost(name, i + 1);
      return Object.assign(lan, { hosts });
    } catch (error) {
      await lan[Symbol.asyncDispose]();
      throw error;
    }
  }

  async #addNamespace(netns: string): Promise<void> {
    await ip("netns", "add", netns);
    this.#namespaces.push(netns);
  }

  async #addHost(name: string, index: number): Promise<Host> {
    const netns = `shoal-${name}-${this.#suffix}`;
    const address = `${this.#subnet}.${index}`;
    this.#indexes.set(name, index);
    await this.#addNamespace(netns);
    // Both ends are born in the hub, and one moves straight to the host.
    const hubEnd = `veth-${index}`;
    await ip("-n", this.#hub, "link", "add", hubEnd, "type", "veth", "peer", "name", "eth0");
    await ip("-n", this.#hub, "link", "set", "eth0", "netns", netns);
    await ip("-n", this.#hub, "link", "set", hubEnd, "master", "br0", "up");
    await ip("-n", netns, "link", "set", "lo", "up");
    await ip("-n", netns, "addr", "add", `${address}/24`, "dev", "eth0");
    await ip("-n", netns, "link", "set", "eth0", "up");
    return { netns, ip: address };
  }

  /** Caps what a host can send (its egress on eth0) with a token bucket, like a slow link. */
  async limitRate(host: Host, rate: string): Promise<void> {
    const output = await new Deno.Command("tc", {
      args: [
        "-n",
        host.netns,
        "qdisc",
        "add",
        "dev",
        "eth0",
        "root",
        "tbf",
        "rate",
        rate,
        "burst",
        "64kb",
        "latency",
        "100ms",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!output.success) {
      throw new Error(`tc failed: ${new TextDecoder().decode(output.stderr).trim()}`);
    }
  }

  /**
   * Bytes each host has sent so far, by name, read in one `ip` call from the
   * hub's ends of the veth pairs (what a host sends, its hub end receives).
   */
  async sentBytes(): Promise<Record<string, number>> {
    const output = await new Deno.Command("ip", {
      args: ["-n", this.#hub, "-s", "-j", "link", "show"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) {
      throw new Error(`ip -s link failed: ${new TextDecoder().decode(output.stderr).trim()}`);
    }
    const links = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      ifname: string;
      stats64?: { rx: { bytes: number } };
    }[];
    const sent: Record<string, number> = {};
    for (const [name, index] of this.#indexes) {
      const link = links.find((l) => l.ifname === `veth-${index}`);
      if (link?.stats64) sent[name] = link.stats64.rx.bytes;
    }
    return sent;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const netns of this.#namespaces.splice(0).reverse()) {
      await ip("netns", "delete", netns).catch((error) => console.error(error.message));
    }
  }
}
