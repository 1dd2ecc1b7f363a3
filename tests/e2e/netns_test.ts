/**
 * A tracker and two peers on three "hosts": network namespaces joined by veth
 * pairs to a bridge in a fourth (hub) namespace. Nothing is added to the root
 * namespace, and every address used is one this test assigned, or loopback.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Daemon,
  runTrackerCommand,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";
import { netnsSkipReason, TestLan } from "../helpers/netns.ts";

const unavailable = await netnsSkipReason("tests/e2e/netns_test.ts");

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

        const ping = await runTrackerCommand([
          "ping",
          "alice",
          "--db",
          join(dir.path, "tracker.db"),
          "--json",
        ], t.netns);
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
