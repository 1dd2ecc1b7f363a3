/**
 * Several sources of one file, all in this process over TLS: every source
 * serves, a corrupting source is dropped, and an empty file travels too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { waitForPieces } from "../helpers/downloads.ts";
import type { DownloadSummary } from "../../lib/peer/downloader.ts";
import { fetchFile, otherOwners, pickSource } from "../../lib/peer/fetch.ts";
import type { PieceServerOptions } from "../../lib/peer/piece_server.ts";
import {
  type HeldSource,
  heldSource,
  type LocalPeer,
  localPeer,
  startLocalTracker,
} from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

const MIB = 1024 * 1024;

/** A tracker, one shared file, and helpers to add sources and fetchers; disposing stops them all. */
async function swarmWorld(dir: string, size: number) {
  const tracker = await startLocalTracker(dir);
  const file = join(dir, "original.bin");
  await writeRandomFile(file, size);
  const peers: LocalPeer[] = [];
  const sources: HeldSource[] = [];
  const peer = async (name: string) => {
    const p = await localPeer(dir, name, tracker.address);
    peers.push(p);
    return p;
  };
  return {
    file,
    peer,
    /** A peer that publishes the file (under its own name for it) and serves it. */
    source: async (
      name: string,
      faults: Pick<PieceServerOptions, "corruptPieces" | "pieceDelayMs"> = {},
    ) => {
      sources.push(await heldSource(await peer(name), file, `data-${name}`, Infinity, faults));
    },
    /** As `peer.ts fetch NAME --json --output OUTPUT` does. */
    fetch: async (fetcher: LocalPeer, name: string, output: string): Promise<DownloadSummary> => {
      const { owners } = await otherOwners(fetcher.home, fetcher.endpoint, name);
      const fetching = fetchFile(fetcher.home, fetcher.endpoint, pickSource(owners), {
        output,
        serveHost: "127.0.0.1",
      });
      return (await deadline(fetching, 60_000, { what: `fetching ${name}` })).summary;
    },
    async [Symbol.asyncDispose]() {
      for (const source of sources) await source[Symbol.asyncDispose]();
      for (const p of peers) p[Symbol.dispose]();
      await tracker.stop();
    },
  };
}

Deno.test("swarm - four sources of one file all serve pieces, whatever name they used", async () => {
  await using dir = await tempDir();
  await using world = await swarmWorld(dir.path, 16 * MIB);
  // Slow enough that one source alone would take seconds: every source connects in time.
  for (const name of ["s1", "s2", "s3", "s4"]) await world.source(name, { pieceDelayMs: 50 });
  const fetcher = await world.peer("fetcher");
  const output = join(dir.path, "fetched.bin");
  const summary = await world.fetch(fetcher, "data-s1", output);
  assert.equal(await sha256File(output), await sha256File(world.file));
  const served = Object.fromEntries(summary.sources.map((s) => [s.owner, s.pieces]));
  for (const name of ["s1", "s2", "s3", "s4"]) {
    assert.ok(served[name] > 0, `${name} served no piece: ${JSON.stringify(summary.sources)}`);
  }
  assert.deepEqual(summary.dropped, []);
});

Deno.test("swarm - a source that corrupts pieces is dropped and named; the file is still right", async () => {
  await using dir = await tempDir();
  await using world = await swarmWorld(dir.path, 6 * MIB);
  await world.source("liar", { corruptPieces: true });
  await world.source("honest", { pieceDelayMs: 20 });
  const fetcher = await world.peer("fetcher");
  const output = join(dir.path, "fetched.bin");
  const summary = await world.fetch(fetcher, "data-honest", output);
  assert.equal(await sha256File(output), await sha256File(world.file));
  assert.equal(summary.dropped.length, 1);
  assert.equal(summary.dropped[0].owner, "liar");
  assert.match(summary.dropped[0].reason, /corrupt/);
  const liar = summary.sources.find((s) => s.owner === "liar");
  assert.equal(liar?.pieces ?? 0, 0);
});

Deno.test("swarm - a peer still downloading serves the pieces it has to a second downloader", async () => {
  await using dir = await tempDir();
  await using world = await swarmWorld(dir.path, 16 * MIB);
  await world.source("origin", { pieceDelayMs: 80 });
  const early = await world.peer("early");
  const late = await world.peer("late");
  const earlyRun = world.fetch(early, "data-origin", join(dir.path, "early.bin"));
  try {
    await waitForPieces(early.home.dir, 16);
  } catch (error) {
    await earlyRun.catch(() => {});
    throw error;
  }
  const summary = await world.fetch(late, "data-origin", join(dir.path, "late.bin"));
  const fromEarly = summary.sources.find((s) => s.owner === "early");
  assert.ok(fromEarly && fromEarly.pieces > 0, JSON.stringify(summary.sources));
  assert.equal(await sha256File(join(dir.path, "late.bin")), await sha256File(world.file));
  // `peer.ts fetch` exits 0 when the fetch resolves.
  await earlyRun;
  assert.equal(await sha256File(join(dir.path, "early.bin")), await sha256File(world.file));
});

Deno.test("swarm - an empty file can be published and fetched", async () => {
  await using dir = await tempDir();
  await using world = await swarmWorld(dir.path, 0);
  await world.source("origin");
  const fetcher = await world.peer("fetcher");
  const output = join(dir.path, "empty.bin");
  const summary = await world.fetch(fetcher, "data-origin", output);
  assert.equal(summary.size, 0);
  assert.equal((await Deno.stat(output)).size, 0);
});
