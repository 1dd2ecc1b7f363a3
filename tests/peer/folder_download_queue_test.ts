/**
 * A folder's files from a source whose upload slots are all taken: the
 * download waits in its queue, shows its place, and completes once served.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { FolderDownload, type FolderProgress } from "../../lib/peer/folder_download.ts";
import { choosePieceSize } from "../../lib/peer/manifest.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { connectTo, TicketAuthority } from "../helpers/sources.ts";

const SIZE = 3 * 1024 * 1024 + 5;
const CONTENT = Uint8Array.from({ length: SIZE }, (_, i) => (i * 17 + 1) & 0xff);
const PIECE_SIZE = choosePieceSize(SIZE);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);

Deno.test("Folder download - a source with every upload slot taken queues the folder, which completes once promoted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shoal-folder-queue-" });
  const authority = await TicketAuthority.create();
  const ticket = await authority.ticket(CONTENT_ID);
  const { server, source: alice } = await authority.serve(
    memoryCatalog(CONTENT, PIECE_SIZE),
    "alice",
    {
      uploadSlots: { slots: 1, slotIdleMs: 600_000, queueIdleMs: 600_000 },
    },
  );
  const holder = await connectTo(alice);
  try {
    // Another downloader takes alice's only slot and keeps its connection open.
    await holder.callWithBody("piece", { contentId: CONTENT_ID, index: 0, ticket }, PIECE_SIZE);
    const planned = { sources: [{ source: alice, holds: null }], ticket };
    const told: FolderProgress[] = [];
    const download = new FolderDownload({
      files: [{ path: "big.bin", size: SIZE, pieces: MANIFEST.pieces }],
      place: (relative) => join(dir, relative),
      findSources: () => Promise.resolve(planned),
      plaintext: true,
      onProgress: (progress) => told.push(progress),
    });
    const running = deadline(download.run(planned), 60_000, { what: "the folder download" });
    // Bounded wait until the download has been told its place, then let the other one go.
    for (let i = 0; i < 400 && download.queuedAt.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.deepEqual(download.queuedAt, [{ owner: "alice", place: 1 }]);
    // The place is told to the progress line before any piece comes (alice is the only source).
    for (let i = 0; i < 400 && told.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.deepEqual(told[0]?.queued, [{ owner: "alice", place: 1 }]);
    assert.equal(told[0]?.verifiedBytes, 0);
    holder.close();
    const report = await running;
    assert.deepEqual(await Deno.readFile(join(dir, "big.bin")), CONTENT);
    assert.deepEqual(report[0].queued?.place, 1);
    assert.equal(download.dropped.length, 0, "a queued source is not dropped");
  } finally {
    holder.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
