/**
 * A tracker and two peers on three "hosts": network namespaces joined by veth
 * pairs to a bridge in a fourth (hub) namespace. Nothing is added to the root
 * namespace, and every address used is one this test assigned, or loopback.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Daemon,
  type RunResult,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  TRACKER_TS,
  writeRandomFile,
} from "../helpers/processes.ts";

// The children run inside namespaces without a route out: never let them try.
Deno.env.set("DENO_NO_UPDATE_CHECK", "1");

/** Runs `ip ARGS`; throws with its stderr when it fails. */
async function ip(...args: string[]): Promise<void> {
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
async function netnsUnavailable(): Promise<string | null> {
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

const unavailable = await netnsUnavailable();
if (unavailable !== null) console.log(`skipped tests/e2e/netns_test.ts: ${unavailable}`);

/** One host on the test LAN: its namespace and its address there. */
interface Host {
  netns: string;
  ip: string;
}

/**
 * A private LAN: one namespace per host, each with `eth0` on 10.231.N.0/24,
 * wired by a veth pair to a bridge in a hub namespace. Disposing it deletes
 * every namespace, which takes the veths and the bridge with them.
 */
class TestLan implements AsyncDisposable {
  readonly #namespaces: string[] = [];
  readonly #hub: string;
  readonly #subnet: string;
  readonly #suffix = randomSuffix();

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

  async [Symbol.asyncDispose](): Promise<void> {
    for (const netns of this.#namespaces.splice(0).reverse()) {
      await ip("netns", "delete", netns).catch((error) => console.error(error.message));
    }
  }
}

/** Runs `tracker.ts ARGS` to completion inside a namespace. */
async function runTracker(netns: string, args: string[]): Promise<RunResult> {
  const output = await new Deno.Command("ip", {
    args: ["netns", "exec", netns, Deno.execPath(), "run", "--allow-all", TRACKER_TS, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Stops a daemon; its exit status does not matter once the test is done with it. */
async function stopQuietly(daemon: Daemon): Promise<void> {
  await daemon.stop().catch(() => {});
}

interface FetchJson {
  path: string;
  size: number;
  sources: { owner: string; address: string; pieces: number }[];
  owners: { owner: string; address: string | null; online: boolean }[];
}

interface PingJson {
  peer: { username: string; host: string; port: number; online: boolean };
  os: { available: boolean; reachable: boolean; detail: string };
  probe: { answered: boolean; username: string | null; detail: string };
}

Deno.test({
  name: "netns - a peer on another host fetches a file served from a third, at its LAN address",
  ignore: unavailable !== null,
  async fn() {
    await using lan = await TestLan.create(["t", "a", "b"]);
    const { t, a, b } = lan.hosts;
    await using dir = await tempDir("shoal-netns-");
    const original = join(dir.path, "survey.bin");
    await writeRandomFile(original, 3 * 1024 * 1024 + 12345, "shoal netns e2e");

    const tracker = await startTracker({
      db: join(dir.path, "tracker.db"),
      host: t.ip,
      netns: t.netns,
    });
    try {
      const trackerAddress = `${t.ip}:${tracker.port}`;
      const alice = new TestPeer(join(dir.path, "alice"), trackerAddress, a.netns);
      const bob = new TestPeer(join(dir.path, "bob"), trackerAddress, b.netns);

      await alice.signUp("alice");
      await alice.ok(["publish", "survey", original]);
      const serving = await alice.serve();
      try {
        const alicePort = Number((await serving.waitFor(/serving on \S+:(\d+)/))[1]);
        const aliceAddress = `${a.ip}:${alicePort}`;

        await bob.signUp("bob");
        const output = join(dir.path, "bob-downloads");
        await Deno.mkdir(output);
        const fetched: FetchJson = JSON.parse(
          await bob.ok(["fetch", "survey", "--json", "--output", output]),
        );

        assert.equal(await sha256File(fetched.path), await sha256File(original));
        assert.equal(fetched.size, (await Deno.stat(original)).size);
        const owner = fetched.owners.find((o) => o.owner === "alice");
        assert.ok(owner, `alice is among the owners: ${JSON.stringify(fetched.owners)}`);
        assert.equal(owner.online, true);
        assert.equal(owner.address, aliceAddress, "the tracker hands out alice's LAN address");
        assert.deepEqual(
          fetched.sources.map((s) => [s.owner, s.address]),
          [["alice", aliceAddress]],
        );

        const ping = await runTracker(t.netns, [
          "ping",
          "alice",
          "--db",
          join(dir.path, "tracker.db"),
          "--json",
        ]);
        assert.equal(ping.code, 0, `tracker.ts ping failed:\n${ping.stderr}${ping.stdout}`);
        const report: PingJson = JSON.parse(ping.stdout);
        assert.equal(report.peer.host, a.ip);
        assert.equal(report.peer.online, true);
        assert.ok(report.probe.answered, `app probe: ${report.probe.detail}`);
        assert.equal(report.probe.username, "alice");
        if (report.os.available) assert.ok(report.os.reachable, `os ping: ${report.os.detail}`);
      } finally {
        await stopQuietly(serving);
      }
    } finally {
      await stopQuietly(tracker.daemon);
    }
  },
});
