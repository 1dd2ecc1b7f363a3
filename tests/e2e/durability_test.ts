/**
 * No data lost: a tracker killed mid-burst (a real tracker process, for the
 * SIGKILL), and a download into a full disk (tracker, peers and fetch in
 * this process).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS } from "../../lib/protocol/messages.ts";
import { CliPeer, runTrackerCli } from "../helpers/cli.ts";
import { downloadState } from "../helpers/downloads.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { startTracker, tempDir, writeRandomFile } from "../helpers/processes.ts";
import { startTestTracker } from "../helpers/tracker.ts";
import { mountTmpfs, tmpfsUnavailable } from "../helpers/tmpfs.ts";

async function adminJson(args: string[]): Promise<unknown> {
  const result = await runTrackerCli([...args, "--json"]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

Deno.test("a tracker killed with SIGKILL during a burst of publishes keeps every acknowledged one", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  const tracker = await startTracker({ db });
  const certificate = await Deno.readTextFile(`${db}.tls-cert.pem`);
  const client = await ProtocolClient.connect(
    { host: "127.0.0.1", port: tracker.port },
    TRACKER_METHODS,
    { agent: "durability-test", tls: { certificate, whose: "the test tracker's" } },
  );
  const acknowledged: string[] = [];
  try {
    await client.call("register", { username: "burst", password: "burst-password" });
    await client.call("login", { username: "burst", password: "burst-password" });
    // Eight publishes in flight at a time until the tracker dies under them.
    let next = 0;
    const publisher = async () => {
      while (true) {
        const name = `file-${next++}`;
        try {
          await client.call("publish", { name, type: "bin", size: next, contentId: randomHex(32) });
        } catch {
          return;
        }
        acknowledged.push(name);
      }
    };
    const publishers = Array.from({ length: 8 }, publisher);
    while (acknowledged.length < 300) await new Promise((resolve) => setTimeout(resolve, 5));
    await tracker.daemon.stop("SIGKILL");
    await Promise.all(publishers);
  } finally {
    client.close();
  }

  {
    using check = new DatabaseSync(db);
    const rows = check.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    assert.deepEqual(rows.map((row) => row.integrity_check), ["ok"]);
  }
  // The tracker starts again on the database it died on (in this process), and keeps them all.
  await using _restarted = await startTestTracker({ db });
  const files = await adminJson(["files", "--db", db]) as { name: string }[];
  const stored = new Set(files.map((file) => file.name));
  const missing = acknowledged.filter((name) => !stored.has(name));
  assert.deepEqual(
    missing,
    [],
    `acknowledged but lost: ${missing.length} of ${acknowledged.length}`,
  );
});

const noTmpfs = await tmpfsUnavailable();
if (noTmpfs) console.log(`skipped the full-disk test in tests/e2e/durability_test.ts: ${noTmpfs}`);

Deno.test({
  name: "a download into a full disk stops with a clear error and keeps its verified part",
  ignore: noTmpfs !== null,
  async fn() {
    await using dir = await tempDir();
    const small = join(dir.path, "small-disk");
    const mounted = await mountTmpfs(small, "2m");
    assert.ok(mounted, "mounting the test tmpfs");
    const tracker = await startLocalTracker(dir.path);
    try {
      const owner = new CliPeer(join(dir.path, "owner"), tracker.address);
      const fetcher = new CliPeer(join(dir.path, "fetcher"), tracker.address);
      await owner.signUp("owner");
      await fetcher.signUp("fetcher");
      const original = join(dir.path, "big.bin");
      await writeRandomFile(original, 6 * 1024 * 1024);
      await owner.ok(["publish", "big", original]);
      const serving = await servePeer(owner.home, tracker.address);
      try {
        const output = join(small, "big.bin");
        const result = await fetcher.run(["fetch", "big", "--output", output]);
        assert.equal(result.code, 1);
        assert.match(
          result.stderr,
          /^error: .*disk full.*pieces are kept in .*big\.bin\.shoal-part/m,
        );
        await assert.rejects(Deno.stat(output), Deno.errors.NotFound);
        const kept = downloadState(fetcher.home);
        assert.ok(kept && kept.have > 0 && kept.have < kept.total, JSON.stringify(kept));
        assert.match(await fetcher.ok(["downloads"]), /big/);
      } finally {
        await serving[Symbol.asyncDispose]();
      }
    } finally {
      await tracker.stop();
      await mounted[Symbol.asyncDispose]();
    }
  },
});
