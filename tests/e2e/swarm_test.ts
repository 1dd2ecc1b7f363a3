import assert from "node:assert/strict";
import { join } from "node:path";
import { downloadState, waitForPieces } from "../helpers/downloads.ts";
import {
  type Daemon,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";

const MIB = 1024 * 1024;

interface Summary {
  size: number;
  transferred: number;
  resumed: number;
  sources: { owner: string; partial: boolean; pieces: number; bytes: number }[];
  dropped: { owner: string; reason: string }[];
}

/** A tracker, one shared file, and helpers to add sources and fetchers. */
async function swarmWorld(dir: string, size: number) {
  const tracker = await startTracker({ db: join(dir, "tracker.db") });
  const file = join(dir, "original.bin");
  await writeRandomFile(file, size);
  const daemons: Daemon[] = [];
  const peer = async (name: string) => {
    const p = new TestPeer(join(dir, name), tracker.address);
    await p.signUp(name);
    return p;
  };
  return {
    tracker,
    file,
    peer,
    /** A peer that publishes the file (under its own name for it) and serves it. */
    source: async (name: string, env: Record<string, string> = {}) => {
      const p = await peer(name);
      await p.ok(["publish", `data-${name}`, file]);
      const daemon = await p.serve([], env);
      daemons.push(daemon);
      return daemon;
    },
    close: async () => {
      await Promise.all(daemons.map((d) => d.stop()));
      await tracker.daemon.stop();
    },
  };
}

async function fetchJson(peer: TestPeer, name: string, output: string): Promise<Summary> {
  return JSON.parse(await peer.ok(["fetch", name, "--json", "--output", output]));
}

Deno.test("swarm - a source killed mid-download: the others finish it", async () => {
  await using dir = await tempDir();
  const world = await swarmWorld(dir.path, 16 * MIB);
  try {
    const doomed = await world.source("doomed", { SHOAL_TEST_PIECE_DELAY_MS: "60" });
    await world.source("steady", { SHOAL_TEST_PIECE_DELAY_MS: "60" });
    const fetcher = await world.peer("fetcher");
    const output = join(dir.path, "fetched.bin");
    const child = fetcher.spawn(["fetch", "data-steady", "--json", "--output", output]);
    await waitForPieces(fetcher.home, 8);
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
    await world.source("origin", { SHOAL_TEST_PIECE_DELAY_MS: "40" });
    const fetcher = await world.peer("fetcher");
    const output = join(dir.path, "fetched.bin");
    const first = fetcher.spawn(["fetch", "data-origin", "--json", "--output", output]);
    const { total } = await waitForPieces(fetcher.home, 32);
    first.kill("SIGKILL");
    await first.output();
    const kept = downloadState(fetcher.home)!;
    assert.ok(kept.have >= total / 2 && kept.have < total, `kept ${kept.have} of ${total}`);
    assert.match(await fetcher.ok(["downloads"]), /data-origin/);

    const summary = await fetchJson(fetcher, "data-origin", output);
    assert.equal(await sha256File(output), await sha256File(world.file));
    const missing = summary.size - kept.have * kept.pieceSize;
    assert.ok(
      summary.transferred <= missing + 2 * kept.pieceSize,
      `transferred ${summary.transferred} bytes, but only ${missing} were missing`,
    );
    assert.equal(summary.resumed, kept.have * kept.pieceSize);
    assert.match(await fetcher.ok(["downloads"]), /no unfinished downloads/);
  } finally {
    await world.close();
  }
});

Deno.test("swarm - a cancelled download loses its partial file and its record", async () => {
  await using dir = await tempDir();
  const world = await swarmWorld(dir.path, 8 * MIB);
  try {
    await world.source("origin", { SHOAL_TEST_PIECE_DELAY_MS: "100" });
    const fetcher = await world.peer("fetcher");
    const output = join(dir.path, "fetched.bin");
    const child = fetcher.spawn(["fetch", "data-origin", "--output", output]);
    await waitForPieces(fetcher.home, 2);
    child.kill("SIGKILL");
    await child.output();
    await Deno.stat(`${output}.shoal-part`);
    await fetcher.ok(["cancel", "data-origin"]);
    await assert.rejects(Deno.stat(`${output}.shoal-part`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(output), Deno.errors.NotFound);
    assert.match(await fetcher.ok(["downloads"]), /no unfinished downloads/);
  } finally {
    await world.close();
  }
});
