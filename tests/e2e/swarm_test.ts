import assert from "node:assert/strict";
import { join } from "node:path";
import { downloadState, waitForPieces } from "../helpers/downloads.ts";
import { CliPeer } from "../helpers/cli.ts";
import { heldSource, localPeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, TestPeer, writeRandomFile } from "../helpers/processes.ts";

const MIB = 1024 * 1024;

interface Summary {
  size: number;
  transferred: number;
  resumed: number;
  sources: { owner: string; partial: boolean; pieces: number; bytes: number }[];
  dropped: { owner: string; reason: string }[];
}

/**
 * A tracker in this process, one shared file, and helpers to add sources and
 * fetchers. What a test kills (a source, a fetch) is a real `peer.ts` child;
 * signing up, publishing and the commands around the kill run the peer's
 * program in this process, and sources nobody kills serve in this process.
 */
async function swarmWorld(dir: string, size: number) {
  const tracker = await startLocalTracker(dir);
  const file = join(dir, "original.bin");
  await writeRandomFile(file, size);
  const stops: (() => Promise<unknown>)[] = [];
  const peer = async (name: string) => {
    const cli = new CliPeer(join(dir, name), tracker.address);
    await cli.signUp(name);
    return { cli, process: new TestPeer(cli.home, tracker.address) };
  };
  return {
    tracker,
    file,
    peer,
    /** A peer that publishes the file (under its own name for it) and serves it in a `peer.ts serve` child. */
    source: async (name: string, env: Record<string, string> = {}) => {
      const { cli, process } = await peer(name);
      await cli.ok(["publish", `data-${name}`, file]);
      const daemon = await process.serve([], env);
      stops.push(() => daemon.stop());
      return daemon;
    },
    /** A peer that publishes the file and serves it in this process, each piece `pieceDelayMs` late. */
    localSource: async (name: string, pieceDelayMs: number) => {
      const local = await localPeer(dir, name, tracker.address);
      const source = await heldSource(local, file, `data-${name}`, Infinity, { pieceDelayMs });
      stops.push(async () => {
        await source[Symbol.asyncDispose]();
        local[Symbol.dispose]();
      });
    },
    close: async () => {
      await Promise.all(stops.map((stop) => stop()));
      await tracker.stop();
    },
  };
}

async function fetchJson(peer: CliPeer, name: string, output: string): Promise<Summary> {
  return JSON.parse(await peer.ok(["fetch", name, "--json", "--output", output]));
}

Deno.test("swarm - a source killed mid-download: the others finish it", async () => {
  await using dir = await tempDir();
  const world = await swarmWorld(dir.path, 16 * MIB);
  try {
    const doomed = await world.source("doomed", { SHOAL_TEST_PIECE_DELAY_MS: "60" });
    await world.localSource("steady", 60);
    const fetcher = await world.peer("fetcher");
    const output = join(dir.path, "fetched.bin");
    const child = fetcher.process.spawn(["fetch", "data-steady", "--json", "--output", output]);
    await waitForPieces(fetcher.cli.home, 8);
    await doomed.stop("SIGKILL");
    const result = await child.output();
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    assert.equal(await sha256File(output), await sha256File(world.file));
  } finally {
    await world.close();
  }
});

Deno.test("swarm - a downloader killed halfway resumes and fetches only what is missing", async () => {
  await using dir = await tempDir();
  const world = await swarmWorld(dir.path, 16 * MIB);
  try {
    await world.localSource("origin", 40);
    const fetcher = await world.peer("fetcher");
    const output = join(dir.path, "fetched.bin");
    const first = fetcher.process.spawn(["fetch", "data-origin", "--json", "--output", output]);
    const { total } = await waitForPieces(fetcher.cli.home, 32);
    first.kill("SIGKILL");
    await first.output();
    const kept = downloadState(fetcher.cli.home)!;
    assert.ok(kept.have >= total / 2 && kept.have < total, `kept ${kept.have} of ${total}`);
    assert.match(await fetcher.cli.ok(["downloads"]), /data-origin/);

    const summary = await fetchJson(fetcher.cli, "data-origin", output);
    assert.equal(await sha256File(output), await sha256File(world.file));
    const missing = summary.size - kept.have * kept.pieceSize;
    assert.ok(
      summary.transferred <= missing + 2 * kept.pieceSize,
      `transferred ${summary.transferred} bytes, but only ${missing} were missing`,
    );
    assert.equal(summary.resumed, kept.have * kept.pieceSize);
    assert.match(await fetcher.cli.ok(["downloads"]), /no unfinished downloads/);
  } finally {
    await world.close();
  }
});

Deno.test("swarm - a cancelled download loses its partial file and its record", async () => {
  await using dir = await tempDir();
  const world = await swarmWorld(dir.path, 8 * MIB);
  try {
    await world.localSource("origin", 100);
    const fetcher = await world.peer("fetcher");
    const output = join(dir.path, "fetched.bin");
    const child = fetcher.process.spawn(["fetch", "data-origin", "--output", output]);
    await waitForPieces(fetcher.cli.home, 2);
    child.kill("SIGKILL");
    await child.output();
    await Deno.stat(`${output}.shoal-part`);
    await fetcher.cli.ok(["cancel", "data-origin"]);
    await assert.rejects(Deno.stat(`${output}.shoal-part`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(output), Deno.errors.NotFound);
    assert.match(await fetcher.cli.ok(["downloads"]), /no unfinished downloads/);
  } finally {
    await world.close();
  }
});
