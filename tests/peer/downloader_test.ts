import assert from "node:assert/strict";
import { join } from "node:path";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { download, PART_SUFFIX } from "../../lib/peer/downloader.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { TicketAuthority } from "../helpers/sources.ts";
import { shoalError } from "../helpers/errors.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
const CONTENT = Uint8Array.from({ length: MIB + 300 * KIB }, (_, i) => (i * 11 + 1) & 0xff);

/**
 * A fresh home, and "alice" serving CONTENT cut into `pieceSize` pieces;
 * `fetch` downloads it into the home's folder as if `listing` had been chosen.
 */
async function setUp(pieceSize: number) {
  const dir = await Deno.makeTempDir({ prefix: "shoal-downloader-" });
  const home = PeerHome.open(join(dir, "home"));
  const authority = await TicketAuthority.create();
  const alice = await authority.serve(memoryCatalog(CONTENT, pieceSize), "alice");
  const { contentId } = manifestOf(CONTENT, pieceSize);
  const list = { sources: [alice.source], ticket: await authority.ticket(contentId) };
  const output = join(dir, "notes.bin");
  return {
    home,
    output,
    contentId,
    fetch: (listing: { owner: string; size: number }) =>
      download({
        home,
        contentId,
        name: "notes",
        type: "bin",
        output,
        listing,
        sources: list,
        findSources: () => Promise.resolve(list),
        plaintext: true,
      }),
    /** Whether anything of the download reached the disk or the home. */
    async leftovers(): Promise<string[]> {
      const found: string[] = [];
      for (const path of [output, output + PART_SUFFIX]) {
        if (await Deno.lstat(path).then(() => true, () => false)) found.push(path);
      }
      if (home.download(contentId)) found.push("a download record");
      return found;
    },
    async [Symbol.asyncDispose]() {
      await alice.server.close();
      home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("download - fetches a content whose size is the one its listing shows", async () => {
  await using world = await setUp(256 * KIB);
  const summary = await world.fetch({ owner: "alice", size: CONTENT.length });
  assert.equal(summary.size, CONTENT.length);
  assert.deepEqual(await Deno.readFile(world.output), CONTENT);
});

Deno.test("download - a listing whose size disagrees with the manifest is refused, naming both, and nothing is written", async () => {
  await using world = await setUp(256 * KIB);
  await assert.rejects(
    world.fetch({ owner: "mallory", size: 1000 }),
    shoalError(
      "INTEGRITY",
      new RegExp(
        `^refusing "notes": mallory lists it as 1000 B, but its content is ${CONTENT.length} B ` +
          `\\(manifest from alice\\)$`,
      ),
    ),
  );
  assert.deepEqual(await world.leftovers(), []);
});

Deno.test("download - a manifest with pieces larger than a publisher cuts is refused, and nothing is written", async () => {
  // 1.3 MiB in 1 MiB pieces: a publisher cuts it into 256 KiB pieces.
  await using world = await setUp(MIB);
  await assert.rejects(
    world.fetch({ owner: "alice", size: CONTENT.length }),
    (error: unknown) =>
      shoalError("INTEGRITY", /pieces of 1048576 B, where a publisher uses 262144 B/)(error) &&
      /--from <username>/.test((error as ShoalError).hint ?? ""),
  );
  assert.deepEqual(await world.leftovers(), []);
});
