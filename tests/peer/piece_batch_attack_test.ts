/**
 * `pieces` under attack, over real sockets in one process: a hostile
 * downloader (the same content 256 times, large contents, a connection cut
 * mid-body, long item errors, descriptors left open) against a real piece
 * server, and hostile sources (a huge length, too few items, an item too
 * long for a batch, a body cut or stalled halfway, an unknown item error)
 * against a real folder download, which must drop them and finish from an
 * honest source.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { deadline } from "../../lib/async/deadline.ts";
import { FolderDownload, type PlannedFile } from "../../lib/peer/folder_download.ts";
import { BATCH_BYTES_PER_USER } from "../../lib/peer/batch_budget.ts";
import { describeFolder } from "../../lib/peer/folder_publish.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { choosePieceSize } from "../../lib/peer/manifest.ts";
import { ShareCatalog } from "../../lib/peer/share_catalog.ts";
import { PEER_AGENT } from "../../lib/peer/tracker_link.ts";
import { parseAddress } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import {
  type BatchItem,
  checkBatchReply,
  MAX_BATCH_BYTES,
  MAX_BATCH_ITEMS,
  PEER_METHODS,
  PROTOCOL_VERSION,
} from "../../lib/protocol/messages.ts";
import { WithBody } from "../../lib/protocol/server.ts";
import { ANY_CONTENT } from "../../lib/protocol/tickets.ts";
import { contentsCatalog, manifestOf } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";
import { batchAnswering, connectTo, TicketAuthority } from "../helpers/sources.ts";

const SMALL_FILES = 40;

function contentOf(i: number): Uint8Array {
  const length = 1 + (i * 1237) % 20_000;
  return Uint8Array.from({ length }, (_, k) => (k * 11 + i * 5 + 1) & 0xff);
}

const CONTENTS = Array.from({ length: SMALL_FILES }, (_, i) => contentOf(i));
const MANIFESTS = CONTENTS.map((content) => manifestOf(content, choosePieceSize(content.length)));
const FILES: PlannedFile[] = MANIFESTS.map(({ manifest }, i) => ({
  path: `f${i}.bin`,
  size: manifest.size,
  pieces: manifest.pieces,
}));

/** Waits (bounded) until `done` holds. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), `timed out waiting for ${what}`);
}

Deno.test("pieces attack - 256 items of one 16 KiB content are exactly 4 MiB: served whole", async () => {
  const authority = await TicketAuthority.create();
  const content = Uint8Array.from({ length: 16 * 1024 }, (_, i) => (i * 5) & 0xff);
  const { contentId } = manifestOf(content, choosePieceSize(content.length));
  const { catalog } = contentsCatalog([content]);
  const { server, source } = await authority.serve(catalog, "alice");
  const client = await connectTo(source);
  try {
    const ticket = await authority.ticket(ANY_CONTENT);
    const { result, body } = await client.callWithBody("pieces", {
      items: Array(MAX_BATCH_ITEMS).fill({ contentId, index: 0 }),
      ticket,
    });
    assert.equal(result.length, MAX_BATCH_BYTES);
    assert.equal(body.length, MAX_BATCH_BYTES);
    assert.deepEqual(body.subarray(MAX_BATCH_BYTES - content.length), content);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("pieces attack - a downloader cutting the connection mid-body: the batch's buffer goes back to the pool once, and the server serves on", async () => {
  const authority = await TicketAuthority.create();
  const contents = Array.from(
    { length: 64 },
    (_, i) => Uint8Array.from({ length: 60_000 }, (_, k) => (k + i) & 0xff),
  );
  const { catalog, reads } = contentsCatalog(contents);
  const ids = contents.map((content) =>
    manifestOf(content, choosePieceSize(content.length)).contentId
  );
  const items = ids.map((contentId) => ({ contentId, index: 0 }));
  const { server, source } = await authority.serve(catalog, "alice");
  const ticket = await authority.ticket(ANY_CONTENT);
  try {
    // A downloader that asks for a batch and never reads a byte of the reply, then goes away.
    const cut = await Deno.connect({
      hostname: "127.0.0.1",
      port: parseAddress(source.address).port,
    });
    await cut.write(
      encodeFrame({
        id: 0,
        type: "hello",
        params: { protocol: PROTOCOL_VERSION, agent: PEER_AGENT },
      }),
    );
    await cut.write(encodeFrame({ id: 1, type: "pieces", params: { items, ticket } }));
    await until(() => reads.length === 64, "the batch to be read");
    cut.close();
    const first = reads[0];
    // The server notices the cut once its write fails; then that buffer is free again. Three
    // batches at once on another connection: never one buffer for two, and the cut one reused.
    const client = await connectTo(source);
    try {
      let reused = false;
      for (let round = 0; round < 50 && !reused; round++) {
        reads.length = 0;
        const replies = await Promise.all(
          [0, 1, 2].map(() => client.callWithBody("pieces", { items, ticket })),
        );
        for (const { body } of replies) assert.equal(body.length, 64 * 60_000);
        const buffers = new Set(reads);
        assert.equal(buffers.size, 3, "three batches in flight, three buffers");
        reused = buffers.has(first);
        if (!reused) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(reused, "the cut batch's buffer came back to the pool");
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
});

Deno.test("pieces attack - an item whose read fails with a long message is refused on its own; the reply stays valid", async () => {
  const authority = await TicketAuthority.create();
  const [good, bad] = [CONTENTS[1], CONTENTS[2]];
  const badId = MANIFESTS[2].contentId;
  const { catalog } = contentsCatalog(
    [good, bad],
    (contentId) => contentId === badId ? new Error(`EIO: ${"x".repeat(5000)}`) : null,
  );
  const { server, source } = await authority.serve(catalog, "alice");
  const client = await connectTo(source);
  try {
    const { result, body } = await client.callWithBody("pieces", {
      items: [MANIFESTS[1], MANIFESTS[2]].map(({ contentId }) => ({ contentId, index: 0 })),
      ticket: await authority.ticket(ANY_CONTENT),
    });
    assert.deepEqual(body, good);
    const refused = result.items[1];
    assert.ok("error" in refused);
    assert.ok(refused.error.message.length <= 1000);
    assert.equal(client.closed, false);
  } finally {
    client.close();
    await server.close();
  }
});

const contentIndex = (contentId: string) =>
  MANIFESTS.findIndex((manifest) => manifest.contentId === contentId);

/** The honest reply's items and body for `items`. */
function honest(items: { contentId: string }[]) {
  const contents = items.map(({ contentId }) => CONTENTS[contentIndex(contentId)]);
  const length = contents.reduce((sum, content) => sum + content.length, 0);
  const body = new Uint8Array(length);
  let at = 0;
  for (const content of contents) body.set(content, (at += content.length) - content.length);
  return { items: contents.map((content) => ({ length: content.length })), length, body };
}

/** Lets a stalled body go at the end of a test. */
const stalls: (() => void)[] = [];

const HOSTILE: {
  name: string;
  answer: Parameters<typeof batchAnswering>[0];
  reason: RegExp;
  /**
   * The download may end before the source is dropped: once every file was
   * asked for, the honest source is asked for what this one owes (the endgame).
   */
  mayFinishFirst?: boolean;
}[] = [
  {
    name: "a length over MAX_BATCH_BYTES",
    answer: (items) =>
      new WithBody({ length: 1 << 40, items: Array(items.length).fill({ length: 1 }) }, []),
    reason: /do not add up|Too big/,
  },
  {
    name: "fewer items than asked",
    answer: (items) => {
      const told = honest(items.slice(1));
      return new WithBody({ length: told.length, items: told.items }, [told.body]);
    },
    reason: /listed \d+ items where \d+ were asked/,
  },
  {
    name: "an item of 64 KiB, too long for a batch",
    answer: (items) =>
      new WithBody({
        length: 65_536,
        items: [
          { length: 65_536 },
          ...Array(items.length - 1).fill({ error: { code: "NOT_FOUND", message: "-" } }),
        ],
      }, [new Uint8Array(65_536)]),
    reason: /items\.0\.length.*Too big/,
  },
  {
    name: "a body cut halfway (the connection closed)",
    answer: (items) => {
      const told = honest(items);
      return new WithBody(
        { length: told.length, items: told.items },
        (async function* () {
          yield told.body.subarray(0, told.body.length >> 1);
          throw new Error("cut");
        })(),
      );
    },
    reason: /connection closed after \d+ of \d+ bytes/,
  },
  {
    name: "a body that stalls halfway",
    answer: (items) => {
      const told = honest(items);
      return new WithBody(
        { length: told.length, items: told.items },
        (async function* () {
          yield told.body.subarray(0, told.body.length >> 1);
          await new Promise<void>((resolve) => stalls.push(resolve));
        })(),
      );
    },
    reason: /too slow/,
    mayFinishFirst: true,
  },
  {
    name: "an item error with an unknown code",
    answer: (items) =>
      new WithBody({
        length: 0,
        items: Array(items.length).fill({ error: { code: "WHATEVER", message: "go away" } }),
      }, []),
    reason: /go away/,
  },
];

for (const { name, answer, reason, mayFinishFirst } of HOSTILE) {
  Deno.test(`pieces attack - a source answering with ${name} is dropped; the folder comes from the honest one`, async () => {
    const authority = await TicketAuthority.create();
    const hostile = await batchAnswering(answer);
    const good = await authority.serve(contentsCatalog(CONTENTS).catalog, "alice");
    const dir = await Deno.makeTempDir({ prefix: "shoal-batch-attack-" });
    const planned = {
      sources: [hostile.source, good.source].map((source) => ({ source, holds: null })),
      ticket: await authority.ticket(ANY_CONTENT),
    };
    const fetch = new FolderDownload({
      files: FILES,
      place: (relative) => join(dir, relative),
      findSources: () => Promise.resolve(planned),
      plaintext: true,
      pieceGraceMs: 300,
    });
    try {
      await deadline(fetch.run(planned), 30_000, { what: "the folder download" });
      for (let i = 0; i < FILES.length; i++) {
        assert.deepEqual(await Deno.readFile(join(dir, FILES[i].path)), CONTENTS[i]);
      }
      if (mayFinishFirst && fetch.dropped.length === 0) return;
      assert.equal(fetch.dropped.length, 1, JSON.stringify(fetch.dropped));
      assert.equal(fetch.dropped[0].owner, "mallory");
      assert.match(fetch.dropped[0].reason, reason);
    } finally {
      for (const go of stalls.splice(0)) go();
      await hostile.server.close();
      await good.server.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("pieces attack - a reply with a huge length fails the connection before any body is read", async () => {
  const hostile = await batchAnswering((items) =>
    new WithBody({
      length: MAX_BATCH_BYTES + 1,
      items: [{ length: 1 }].concat(items.slice(1).map(() => ({ length: 1 }))),
    }, [])
  );
  const client = await connectTo(hostile.source);
  try {
    await assert.rejects(
      client.callWithBody(
        "pieces",
        { items: [{ contentId: MANIFESTS[0].contentId, index: 0 }] },
        undefined,
        { checkResult: (result) => checkBatchReply([CONTENTS[0].length], result) },
      ),
      shoalError("BAD_MESSAGE"),
    );
    assert.ok(client.closed);
  } finally {
    client.close();
    await hostile.server.close();
  }
});

/** Descriptors this process holds open on files under `dir` (other tests may run beside). */
function openUnder(dir: string): string[] {
  const open: string[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // Closed meanwhile.
    }
  }
  return open;
}

/**
 * A folder "tree" (files a.bin … e.bin of a few hundred bytes, and sub/f.bin,
 * and large.bin of 70,000 bytes) published in a real home, served by a real
 * piece server over its ShareCatalog; a client connected, a ticket for anything.
 */
async function servedTree() {
  const dir = await Deno.makeTempDir({ prefix: "shoal-batch-attack-tree-" });
  const tree = join(dir, "tree");
  await Deno.mkdir(join(tree, "sub"), { recursive: true });
  const bytes = (i: number) => Uint8Array.from({ length: 200 + i * 50 }, (_, k) => (k + i) & 0xff);
  const names = ["a.bin", "b.bin", "c.bin", "d.bin", "e.bin", "sub/f.bin"];
  for (const [i, name] of names.entries()) await Deno.writeFile(join(tree, name), bytes(i));
  await Deno.writeFile(join(tree, "large.bin"), new Uint8Array(70_000).fill(3));
  const home = PeerHome.open(join(dir, "home"));
  const folder = await describeFolder("tree", tree, []);
  home.addShare(folder.share, folder.files);
  const ids = new Map([...folder.files].map((file) => [file.relative, file.contentId]));
  const authority = await TicketAuthority.create();
  const { server, source } = await authority.serve(
    new ShareCatalog(home, { warn: () => {} }),
    "alice",
  );
  const client = await connectTo(source);
  return {
    dir,
    tree,
    home,
    client,
    bytes: (name: string) => bytes(names.indexOf(name)),
    /** The batch items of these files. */
    items: (...relative: string[]) =>
      relative.map((name) => ({ contentId: ids.get(name)!, index: 0 })),
    ticket: await authority.ticket(ANY_CONTENT),
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
      home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const codes = (items: BatchItem[]) => items.map((item) => "error" in item ? item.error.code : "ok");

Deno.test("pieces attack - a directory at a file's path, a linked parent directory, or a device is refused in a batch", async () => {
  await using served = await servedTree();
  const { tree, dir } = served;
  // a.bin: a directory now. sub: a link to a copy of it (same names, same bytes, same times).
  await Deno.remove(join(tree, "a.bin"));
  await Deno.mkdir(join(tree, "a.bin"));
  const before = await Deno.stat(join(tree, "sub", "f.bin"));
  await Deno.mkdir(join(dir, "elsewhere"));
  await Deno.writeFile(join(dir, "elsewhere", "f.bin"), served.bytes("sub/f.bin"));
  await Deno.utime(join(dir, "elsewhere", "f.bin"), before.atime!, before.mtime!);
  await Deno.rename(join(tree, "sub"), join(dir, "old-sub"));
  await Deno.symlink(join(dir, "elsewhere"), join(tree, "sub"));
  // b.bin: a character device (null's numbers) where root may make one.
  await Deno.remove(join(tree, "b.bin"));
  const device = await new Deno.Command("mknod", { args: [join(tree, "b.bin"), "c", "1", "3"] })
    .output().then((output) => output.success, () => false);
  const { result, body } = await served.client.callWithBody("pieces", {
    items: served.items("a.bin", "sub/f.bin", "b.bin", "c.bin"),
    ticket: served.ticket,
  });
  assert.deepEqual(codes(result.items), [
    "CONTENT_CHANGED",
    "CONTENT_CHANGED",
    device ? "CONTENT_CHANGED" : "NOT_FOUND",
    "ok",
  ]);
  assert.deepEqual(body, served.bytes("c.bin"));
});

Deno.test("pieces attack - a large file in a batch is refused unopened: a FIFO at its path does not change the answer", async () => {
  await using served = await servedTree();
  await Deno.remove(join(served.tree, "large.bin"));
  await new Deno.Command("mkfifo", { args: [join(served.tree, "large.bin")] }).output()
    .catch(() => null);
  const { result } = await served.client.callWithBody("pieces", {
    items: served.items("large.bin", "c.bin"),
    ticket: served.ticket,
  });
  assert.deepEqual(codes(result.items), ["BAD_MESSAGE", "ok"]);
});

Deno.test("pieces attack - 256 items refused or sent leave no descriptor open", async () => {
  await using served = await servedTree();
  const { tree } = served;
  await Deno.remove(join(tree, "a.bin"));
  await Deno.symlink(join(tree, "c.bin"), join(tree, "a.bin"));
  await Deno.remove(join(tree, "d.bin"));
  await new Deno.Command("mkfifo", { args: [join(tree, "d.bin")] }).output().catch(() => null);
  const items = served.items("a.bin", "b.bin", "c.bin", "d.bin", "e.bin", "large.bin");
  for (let round = 0; round < 4; round++) {
    const { result } = await served.client.callWithBody("pieces", {
      items: Array.from({ length: MAX_BATCH_ITEMS }, (_, i) => items[i % items.length]),
      ticket: served.ticket,
    });
    assert.equal(result.items.length, MAX_BATCH_ITEMS);
  }
  assert.deepEqual(openUnder(served.tree), []);
});

Deno.test("pieces attack - the files of a folder unpublished since are NOT_FOUND in a batch", async () => {
  await using served = await servedTree();
  assert.ok(served.home.removeShare("tree"));
  const { result, body } = await served.client.callWithBody("pieces", {
    items: served.items("c.bin"),
    ticket: served.ticket,
  });
  assert.deepEqual(codes(result.items), ["NOT_FOUND"]);
  assert.equal(body.length, 0);
});

Deno.test("pieces attack - the batches one downloader has the server hold are bounded across its connections; past that BUSY, while another is served", async () => {
  const authority = await TicketAuthority.create();
  const contents = Array.from(
    { length: 64 },
    (_, i) => Uint8Array.from({ length: 65_000 }, (_, k) => (k * 3 + i) & 0xff),
  );
  const { catalog, reads } = contentsCatalog(contents);
  const items = contents.map((content) => ({
    contentId: manifestOf(content, choosePieceSize(content.length)).contentId,
    index: 0,
  }));
  // Each batch waits a while between its read and its reply: held, as an unread one would be.
  const { server, source } = await authority.serve(catalog, "alice", { pieceDelayMs: 50 });
  const clients: ProtocolClient<typeof PEER_METHODS>[] = [];
  try {
    const ticket = await authority.ticketFor("mallory", ANY_CONTENT);
    for (let c = 0; c < 8; c++) clients.push(await connectTo(source));
    // Mallory: 4 batches of 4,160,000 bytes on each of 8 connections, all at once.
    const asked = clients.flatMap((client) =>
      [0, 1, 2, 3].map(() =>
        client.callWithBody("pieces", { items, ticket }).then(() => "served", (error) => error)
      )
    );
    const carol = await connectTo(source);
    clients.push(carol);
    const { body } = await carol.callWithBody("pieces", {
      items: items.slice(0, 2),
      ticket: await authority.ticketFor("carol", ANY_CONTENT),
    });
    assert.equal(body.length, 2 * 65_000);
    const outcomes = await Promise.all(asked);
    const served = outcomes.filter((outcome) => outcome === "served").length;
    const busy = outcomes.filter((outcome) =>
      outcome instanceof ShoalError && outcome.code === "BUSY"
    ).length;
    assert.equal(served + busy, asked.length);
    assert.ok(served >= 1 && served * 4_160_000 <= BATCH_BYTES_PER_USER, `${served} served`);
    assert.equal(reads.length, (served * 64) + 2);
    // Once they arrived, her budget is whole again.
    const again = await clients[0].callWithBody("pieces", { items, ticket });
    assert.equal(again.body.length, 4_160_000);
  } finally {
    for (const client of clients) client.close();
    await server.close();
  }
});

Deno.test("pieces attack - with a source lacking half the files and a tiny in-flight cap, progress counts each file once and ends at the totals", async () => {
  const authority = await TicketAuthority.create();
  const half = await authority.serve(
    contentsCatalog(CONTENTS.filter((_, i) => i % 2 === 0)).catalog,
    "mallory",
  );
  const whole = await authority.serve(contentsCatalog(CONTENTS).catalog, "alice");
  const dir = await Deno.makeTempDir({ prefix: "shoal-batch-attack-progress-" });
  const planned = {
    sources: [half.source, whole.source].map((source) => ({ source, holds: null })),
    ticket: await authority.ticket(ANY_CONTENT),
  };
  const seen: { verifiedBytes: number; filesDone: number }[] = [];
  const done = new Set<number>();
  const fetch = new FolderDownload({
    files: FILES,
    place: (relative) => join(dir, relative),
    findSources: () => Promise.resolve(planned),
    plaintext: true,
    maxInFlightBytes: 1,
    onProgress: ({ verifiedBytes, filesDone }) => seen.push({ verifiedBytes, filesDone }),
    onFileDone: (index) => {
      assert.ok(!done.has(index), `file ${index} done twice`);
      done.add(index);
    },
  });
  try {
    await deadline(fetch.run(planned), 30_000, { what: "the folder download" });
    const total = CONTENTS.reduce((sum, content) => sum + content.length, 0);
    assert.equal(done.size, FILES.length);
    const last = seen.at(-1)!;
    assert.equal(last.verifiedBytes, total);
    assert.equal(last.filesDone, FILES.length);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i].verifiedBytes >= seen[i - 1].verifiedBytes, "progress never goes back");
    }
    // Mallory lacked files (NOT_FOUND items), which is no reason to drop her.
    assert.deepEqual(fetch.dropped, []);
  } finally {
    await half.server.close();
    await whole.server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
