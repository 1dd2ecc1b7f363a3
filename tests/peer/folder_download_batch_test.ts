/**
 * A folder download of many small files asks for them in `pieces` batches:
 * each file verified as a piece is, a file a source lacks asked of another,
 * a source sending a corrupt file or a reply that does not answer its batch
 * dropped (BAD_MESSAGE, nothing crashes), while the files of several pieces
 * still come by `piece`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { delay } from "../../lib/async/delay.ts";
import { FolderDownload, type PlannedFile } from "../../lib/peer/folder_download.ts";
import { BatchPlacer } from "../../lib/peer/batch_placer.ts";
import { choosePieceSize, type FileIdentity, identityOf } from "../../lib/peer/manifest.ts";
import { type BatchItem, checkBatchReply, type Source } from "../../lib/protocol/messages.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { WithBody } from "../../lib/protocol/server.ts";
import { ANY_CONTENT } from "../../lib/protocol/tickets.ts";
import { contentsCatalog, manifestOf } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";
import { eventually } from "../helpers/eventually.ts";
import { batchAnswering, connectTo, fakeSource, TicketAuthority } from "../helpers/sources.ts";

const SMALL_FILES = 300;

/** File `i`: small files of a few hundred to a few thousand bytes, and one of three pieces last. */
function contentOf(i: number): Uint8Array {
  const length = i === SMALL_FILES ? 600_000 : 1 + (i * 997) % 5000;
  return Uint8Array.from({ length }, (_, k) => (k * 13 + i * 7 + 3) & 0xff);
}

const CONTENTS = Array.from({ length: SMALL_FILES + 1 }, (_, i) => contentOf(i));
const MANIFESTS = CONTENTS.map((content) => manifestOf(content, choosePieceSize(content.length)));
const FILES: PlannedFile[] = MANIFESTS.map(({ manifest }, i) => ({
  path: `f${i}.bin`,
  size: manifest.size,
  pieces: manifest.pieces,
}));

/** A catalog of the files `which` says it has (contentsCatalog of tests/helpers/catalog.ts). */
function filesCatalog(which: (i: number) => boolean = () => true) {
  return contentsCatalog(CONTENTS.filter((_, i) => which(i)));
}

/**
 * Runs a download of FILES from `sources` into a fresh folder (with a
 * placing worker and `direct` as `options` say); returns what it reports,
 * and the identity it was told of each file as it was done.
 */
async function download(
  sources: Source[],
  ticket: string,
  options: { placer?: BatchPlacer; direct?: boolean; pieceGraceMs?: number; only?: number[] } = {},
) {
  const { only = FILES.map((_, i) => i), ...downloadOptions } = options;
  const files = only.map((i) => FILES[i]);
  const dir = await Deno.makeTempDir({ prefix: "shoal-folder-batch-" });
  const planned = { sources: sources.map((source) => ({ source, holds: null })), ticket };
  const identities = new Map<number, FileIdentity>();
  const fetch = new FolderDownload({
    files,
    place: (relative) => join(dir, relative),
    findSources: () => Promise.resolve(planned),
    plaintext: true,
    onFileDone: (index, identity) => identity && identities.set(only[index], identity),
    ...downloadOptions,
  });
  try {
    const report = await deadline(fetch.run(planned), 60_000, { what: "the folder download" });
    for (const i of only) {
      assert.deepEqual(await Deno.readFile(join(dir, FILES[i].path)), CONTENTS[i], FILES[i].path);
    }
    for (const [index, identity] of identities) {
      assert.deepEqual(identity, identityOf(Deno.lstatSync(join(dir, FILES[index].path))));
    }
    return { report, dropped: fetch.dropped, identities };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A placing worker that has started. */
async function startedPlacer(): Promise<BatchPlacer> {
  const placer = new BatchPlacer();
  await eventually(() => placer.ready, "the placing worker started");
  return placer;
}

Deno.test("Folder download - small files come in pieces batches, each verified; a file of several pieces by piece", async () => {
  const authority = await TicketAuthority.create();
  const { catalog, calls } = filesCatalog();
  const { server, source } = await authority.serve(catalog, "alice");
  try {
    const { report, dropped } = await download([source], await authority.ticket(ANY_CONTENT));
    assert.deepEqual(dropped, []);
    // 300 small files and 3 pieces, each counted once.
    assert.equal(report[0].pieces, SMALL_FILES + 3);
    assert.ok(calls.findSmall > 0 && calls.findSmall < 20, `${calls.findSmall} batches`);
    assert.equal(calls.find, 3, "only the large file's pieces are asked one by one");
  } finally {
    await server.close();
  }
});

Deno.test("Folder download - with a placing worker, the batches' files are verified and written there, each told with its identity", async () => {
  const authority = await TicketAuthority.create();
  const { catalog, calls } = filesCatalog();
  const { server, source } = await authority.serve(catalog, "alice");
  using placer = await startedPlacer();
  try {
    for (const direct of [false, true]) {
      const { report, dropped, identities } = await download(
        [source],
        await authority.ticket(ANY_CONTENT),
        { placer, direct },
      );
      assert.deepEqual(dropped, []);
      assert.equal(report[0].pieces, SMALL_FILES + 3);
      // Every small file came in a batch, placed on the worker, which read its identity.
      assert.equal(identities.size, SMALL_FILES, `direct: ${direct}`);
    }
    assert.ok(calls.findSmall > 0);
  } finally {
    await server.close();
  }
});

Deno.test("Folder download - a placing worker that fails with batches: their files are asked again and written here, and the download finishes", async () => {
  const authority = await TicketAuthority.create();
  const { catalog } = filesCatalog();
  const { server, source } = await authority.serve(catalog, "alice");
  const moduleDir = await Deno.makeTempDir({ prefix: "shoal-failing-worker-" });
  const failing = join(moduleDir, "failing_worker.ts");
  // Says it started, then dies with the first batch it is given.
  await Deno.writeTextFile(
    failing,
    'self.onmessage = (event) => { if (event.data === "ready?") self.postMessage("ready"); ' +
      'else throw new Error("the worker died"); };\n',
  );
  using placer = new BatchPlacer(new URL(`file://${failing}`).href);
  await eventually(() => placer.ready, "the failing worker started");
  try {
    const { report, dropped, identities } = await download(
      [source],
      await authority.ticket(ANY_CONTENT),
      { placer, direct: true },
    );
    assert.deepEqual(dropped, [], "the source is not blamed");
    assert.ok(report[0].pieces >= SMALL_FILES + 3);
    assert.equal(placer.ready, false, "the worker is not used again");
    assert.equal(identities.size, 0, "no file came back from the worker");
  } finally {
    await server.close();
    await Deno.remove(moduleDir, { recursive: true });
  }
});

Deno.test("Folder download - with a placing worker, a source sending a corrupt file is dropped; the files come from the honest one", async () => {
  const authority = await TicketAuthority.create();
  const liar = await authority.serve(filesCatalog().catalog, "mallory", { corruptPieces: true });
  const honest = await authority.serve(filesCatalog().catalog, "alice");
  using placer = await startedPlacer();
  try {
    const { dropped } = await download(
      [liar.source, honest.source],
      await authority.ticket(ANY_CONTENT),
      { placer },
    );
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0].owner, "mallory");
    assert.match(dropped[0].reason, /corrupt/);
  } finally {
    await liar.server.close();
    await honest.server.close();
  }
});

Deno.test("Folder download - files a source lacks (its own NOT_FOUND in a batch) come from another source, and neither is dropped", async () => {
  const authority = await TicketAuthority.create();
  const lacking = filesCatalog((i) => i % 10 !== 3);
  const other = filesCatalog((i) => i % 10 === 3);
  const a = await authority.serve(lacking.catalog, "alice");
  const b = await authority.serve(other.catalog, "bob");
  try {
    const { report, dropped } = await download(
      [a.source, b.source],
      await authority.ticket(ANY_CONTENT),
    );
    assert.deepEqual(dropped, []);
    const pieces = Object.fromEntries(report.map((row) => [row.owner, row.pieces]));
    assert.equal(pieces.bob, SMALL_FILES / 10);
    assert.equal(pieces.alice, SMALL_FILES - SMALL_FILES / 10 + 3);
  } finally {
    await a.server.close();
    await b.server.close();
  }
});

Deno.test("Folder download - a source sending a corrupt file in a batch is dropped; the files come from the honest one", async () => {
  const authority = await TicketAuthority.create();
  const { server: liar, source: mallory } = await authority.serve(
    filesCatalog().catalog,
    "mallory",
    { corruptPieces: true },
  );
  const honest = await authority.serve(filesCatalog().catalog, "alice");
  try {
    const { dropped } = await download(
      [mallory, honest.source],
      await authority.ticket(ANY_CONTENT),
    );
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0].owner, "mallory");
    assert.match(dropped[0].reason, /corrupt/);
  } finally {
    await liar.close();
    await honest.server.close();
  }
});

/** How a hostile source answers a batch of `count` items, the first `length` long. */
type Lie = (count: number, length: number) => { length: number; items: BatchItem[]; body: number };

const LIES: { name: string; lie: Lie; message: RegExp }[] = [
  {
    name: "item lengths not adding up to the body's",
    lie: (count, length) => ({
      length: length + 1,
      items: [{ length }, ...Array(count - 1).fill({ error: { code: "NOT_FOUND", message: "-" } })],
      body: length + 1,
    }),
    message: /do not add up/,
  },
  {
    name: "more items than asked",
    lie: (count) => ({
      length: 0,
      items: Array(count + 1).fill({ error: { code: "NOT_FOUND", message: "-" } }),
      body: 0,
    }),
    message: /listed \d+ items where \d+ were asked/,
  },
  {
    name: "an item of the wrong length",
    lie: (count, length) => ({
      length: length + 1,
      items: [
        { length: length + 1 },
        ...Array(count - 1).fill({ error: { code: "NOT_FOUND", message: "-" } }),
      ],
      body: length + 1,
    }),
    message: /announced \d+ bytes for item 0 where \d+ were expected/,
  },
];

/** A source whose `pieces` replies lie as `lie` says, and which knows nothing else. */
function hostileSource(lie: Lie) {
  return batchAnswering((items) => {
    const first = MANIFESTS.findIndex(({ contentId }) => contentId === items[0].contentId);
    const told = lie(items.length, CONTENTS[first].length);
    return new WithBody({ length: told.length, items: told.items }, [new Uint8Array(told.body)]);
  });
}

for (const { name, lie, message } of LIES) {
  Deno.test(`pieces - a reply with ${name} fails the connection with BAD_MESSAGE before its body is read`, async () => {
    const { server, source } = await hostileSource(lie);
    const client = await connectTo(source);
    try {
      const lengths = [CONTENTS[0].length, CONTENTS[1].length];
      await assert.rejects(
        client.callWithBody(
          "pieces",
          {
            items: [0, 1].map((i) => ({ contentId: MANIFESTS[i].contentId, index: 0 })),
          },
          undefined,
          { checkResult: (result) => checkBatchReply(lengths, result) },
        ),
        shoalError("BAD_MESSAGE", message),
      );
      assert.equal(client.closed, true);
    } finally {
      client.close();
      await server.close();
    }
  });

  Deno.test(`Folder download - a source replying with ${name} is dropped; the files come from the honest one`, async () => {
    const authority = await TicketAuthority.create();
    const hostile = await hostileSource(lie);
    const honest = await authority.serve(filesCatalog().catalog, "alice");
    try {
      const { dropped } = await download(
        [hostile.source, honest.source],
        await authority.ticket(ANY_CONTENT),
      );
      assert.equal(dropped.length, 1);
      assert.equal(dropped[0].owner, "mallory");
      assert.match(dropped[0].reason, message);
    } finally {
      await hostile.server.close();
      await honest.server.close();
    }
  });
}

Deno.test("Folder download - a source refusing batches with BUSY (its account's batches held there) is not dropped: its small files come by piece", async () => {
  const authority = await TicketAuthority.create();
  const { catalog, calls } = filesCatalog();
  // As if the account's other fetches held all of it: every batch is BUSY.
  const { server: full, source: alice } = await authority.serve(catalog, "alice", {
    batchBytesPerUser: 1,
  });
  try {
    const { report, dropped } = await download([alice], await authority.ticket(ANY_CONTENT));
    assert.deepEqual(dropped, []);
    assert.equal(report[0].pieces, SMALL_FILES + 3);
    assert.ok(calls.find >= SMALL_FILES, `${calls.find} files asked for by piece`);
  } finally {
    await full.close();
  }
});

/**
 * A source, "sloth", that takes every `piece` and `pieces` request and
 * answers none until the test is over ({@link release}, then NOT_FOUND).
 */
async function stallingSource() {
  const held: (() => void)[] = [];
  const never = () =>
    new Promise<never>((_, reject) => held.push(() => reject(new ShoalError("NOT_FOUND", "gone"))));
  const { server, source } = await fakeSource("sloth", {
    manifest: never,
    have: never,
    piece: never,
    queue: never,
    folder: never,
    pieces: never,
  }, { concurrency: 64 });
  return {
    source,
    asked: () => held.length,
    release: async () => {
      for (const go of held.splice(0)) go();
      await server.close();
    },
  };
}

/**
 * Downloads FILES (`only` those) from a source that never answers, first in
 * line, and alice: the endgame must ask alice for what the sloth owes. Says
 * how many pieces each sent, after checking nobody was dropped: had the
 * download waited for the sloth, its requests would have timed out (after
 * 15 s) and it would have been dropped as too slow.
 */
async function againstASloth(only?: number[]): Promise<Record<string, number>> {
  const authority = await TicketAuthority.create();
  const sloth = await stallingSource();
  const alice = await authority.serve(filesCatalog().catalog, "alice");
  try {
    // Without the endgame the download would wait for the sloth's deadline: ten minutes, past
    // its own bound of one.
    const { report, dropped } = await download(
      [sloth.source, alice.source],
      await authority.ticket(ANY_CONTENT),
      { pieceGraceMs: 600_000, only },
    );
    assert.ok(sloth.asked() > 0, "the sloth was asked first");
    assert.deepEqual(dropped, []);
    return Object.fromEntries(report.map((row) => [row.owner, row.pieces]));
  } finally {
    await sloth.release();
    await alice.server.close();
  }
}

Deno.test("Folder download - the endgame: files asked of a source that never answers come from another once it has sent the rest", async () => {
  const pieces = await againstASloth();
  assert.equal(pieces.sloth ?? 0, 0);
  assert.equal(pieces.alice, SMALL_FILES + 3);
});

Deno.test("Folder download - in the endgame each piece is used once: a slow source's late copies are dropped unread", async () => {
  const authority = await TicketAuthority.create();
  const slow = await authority.serve(filesCatalog().catalog, "slow", { pieceDelayMs: 40 });
  const fast = await authority.serve(filesCatalog().catalog, "fast");
  using placer = await startedPlacer();
  try {
    for (const options of [{}, { placer }]) {
      const { report, dropped } = await download(
        [slow.source, fast.source],
        await authority.ticket(ANY_CONTENT),
        options,
      );
      assert.deepEqual(dropped, []);
      // Every piece counted once, whichever source's copy came first.
      assert.equal(report.reduce((sum, row) => sum + row.pieces, 0), SMALL_FILES + 3);
    }
  } finally {
    await slow.server.close();
    await fast.server.close();
  }
});

Deno.test("Folder download - the endgame: pieces of a large file asked of a source that never answers come from another", async () => {
  // The file of three pieces alone: the sloth, first in line, is asked for all three.
  const pieces = await againstASloth([SMALL_FILES]);
  assert.equal(pieces.sloth ?? 0, 0);
  assert.equal(pieces.alice, 3);
});

/**
 * A source ("mallory") whose every `pieces` reply comes after `holdMs`, each
 * file in it corrupt; it has no file of several pieces.
 */
function lateLiar(holdMs: number) {
  return fakeSource("mallory", {
    pieces: async ({ items }) => {
      await delay(holdMs);
      const lengths = items.map(({ contentId }) =>
        CONTENTS[MANIFESTS.findIndex((m) => m.contentId === contentId)].length
      );
      const length = lengths.reduce((sum, n) => sum + n, 0);
      return new WithBody({ length, items: lengths.map((n) => ({ length: n })) }, [
        new Uint8Array(length).fill(0x5a),
      ]);
    },
  }, { concurrency: 64 });
}

Deno.test("Folder download - the endgame: a corrupt first copy while another source's copy is on its way waits for that copy, or is asked again; each file stored once", async () => {
  const authority = await TicketAuthority.create();
  using placer = await startedPlacer();
  for (const options of [{}, { placer }]) {
    // Mallory answers after a second, corrupt; alice, 10 ms a file, is by then asked too (the
    // endgame) for files mallory owes, and her copies are still on their way when its arrive.
    const mallory = await lateLiar(1_000);
    const alice = await authority.serve(filesCatalog().catalog, "alice", { pieceDelayMs: 10 });
    try {
      const { report, dropped } = await download(
        [mallory.source, alice.source],
        await authority.ticket(ANY_CONTENT),
        options,
      );
      assert.deepEqual(dropped.map((d) => d.owner), ["mallory"]);
      assert.match(dropped[0].reason, /corrupt/);
      const pieces = Object.fromEntries(report.map((row) => [row.owner, row.pieces]));
      assert.equal(pieces.alice, SMALL_FILES + 3, "each file counted once");
    } finally {
      await mallory.server.close();
      await alice.server.close();
    }
  }
});
