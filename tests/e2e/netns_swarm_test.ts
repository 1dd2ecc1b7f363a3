/**
 * Four sources on four test hosts, each host's uplink capped at the same
 * rate with `tc`, and a fetcher on a fifth: the download takes pieces from
 * all of them and comes out right. The speed-up itself is a benchmark.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { netnsSkipReason, TestLan } from "../helpers/netns.ts";
import {
  type Daemon,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";

const unavailable = await netnsSkipReason("tests/e2e/netns_swarm_test.ts");
const SOURCES = ["s1", "s2", "s3", "s4"];

Deno.test({
  name: "netns swarm - four rate-capped sources on their own hosts all serve one download",
  ignore: unavailable !== null,
  async fn() {
    await using lan = await TestLan.create(["t", ...SOURCES, "f"]);
    await using dir = await tempDir("shoal-netns-swarm-");
    const original = join(dir.path, "lecture.mp4");
    await writeRandomFile(original, 16 * 1024 * 1024);
    const t = lan.hosts.t;
    const tracker = await startTracker({
      db: join(dir.path, "tracker.db"),
      host: t.ip,
      netns: t.netns,
    });
    const trackerAddress = `${t.ip}:${tracker.port}`;
    const daemons: Daemon[] = [tracker.daemon];
    try {
      for (const name of SOURCES) {
        const host = lan.hosts[name];
        await lan.limitRate(host, "40mbit");
        const peer = new TestPeer(join(dir.path, name), trackerAddress, host.netns);
        await peer.signUp(name);
        await peer.ok(["publish", "lecture", original]);
        daemons.push(await peer.serve());
      }
      const fetcher = new TestPeer(join(dir.path, "f"), trackerAddress, lan.hosts.f.netns);
      await fetcher.signUp("fetcher");
      const output = join(dir.path, "fetched.mp4");
      const summary = JSON.parse(
        await fetcher.ok(["fetch", "lecture", "--json", "--output", output]),
      );
      assert.equal(await sha256File(output), await sha256File(original));
      for (const name of SOURCES) {
        const source = summary.sources.find((s: { owner: string }) => s.owner === name);
        assert.ok(
          source?.pieces > 0,
          `${name} served no piece: ${JSON.stringify(summary.sources)}`,
        );
        assert.equal(source.address.split(":")[0], lan.hosts[name].ip);
      }
    } finally {
      for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
    }
  },
});
