/**
 * `pieces`, a batch of small contents, against a real piece server: over a
 * folder share in a real home (ShareCatalog), each item is refused on its
 * own (a missing content, a changed file, a link, another inode, a FIFO) while
 * the rest arrives; a batch over its bounds is refused whole, and the
 * connection goes on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describeFolder } from "../../lib/peer/folder_publish.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { choosePieceSize } from "../../lib/peer/manifest.ts";
import { ShareCatalog } from "../../lib/peer/share_catalog.ts";
import { RateLimiter } from "../../lib/peer/rate.ts";
import { UploadLog } from "../../lib/peer/upload_log.ts";
import { type BatchItem, MAX_BATCH_ITEMS } from "../../lib/protocol/messages.ts";
import { ANY_CONTENT } from "../../lib/protocol/tickets.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { shoalError } from "../helpers/errors.ts";
import { connectTo, TicketAuthority } from "../helpers/sources.ts";

const FILES = 6;

/** File `i` of the tree: a few hundred bytes of its own. */
function bytesOf(i: number): Uint8Array {
  return Uint8Array.from({ length: 300 + i * 100 }, (_, k) => (k * 7 + i * 31 + 1) & 0xff);
}

/**
 * A folder "tree" of FILES small files and one of 70,000 bytes (too large
 * for a batch), published in a real home and served by a real piece server
 * over its ShareCatalog; a client connected to it, and a ticket for anything.
 */
async function servedFolder() {
  const dir = await Deno.makeTempDir({ prefix: "shoal-piece-batch-" });
  const tree = join(dir, "tree");
  await Deno.mkdir(tree);
  for (let i = 0; i < FILES; i++) await Deno.writeFile(join(tree, `f${i}.bin`), bytesOf(i));
  await Deno.writeFile(join(tree, "large.bin"), new Uint8Array(70_000).fill(9));
  const home = PeerHome.open(join(dir, "home"));
  const folder = await describeFolder("tree", tree, []);
  home.addShare(folder.share, folder.files);
  const ids = new Map([...folder.files].map((file) => [file.relative, file.contentId]));
  const warnings: string[] = [];
  const lines: string[] = [];
  const authority = await TicketAuthority.create();
  const { server, source } = await authority.serve(
    new ShareCatalog(home, { warn: (line) => warnings.push(line) }),
    "alice",
    { uploads: new UploadLog({ format: "json", write: (line) => lines.push(line) }) },
  );
  const client = await connectTo(source);
  return {
    dir,
    tree,
    home,
    folder,
    /** The content id of the file at `relative`. */
    id: (relative: string) => ids.get(relative)!,
    warnings,
    lines,
    client,
    ticket: await authority.ticket(ANY_CONTENT),
    authority,
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
      home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The body cut into the items sent, in order (null for an item refused). */
function itemsOf(items: BatchItem[], body: Uint8Array): (Uint8Array | null)[] {
  let at = 0;
  return items.map((item) => "length" in item ? body.slice(at, at += item.length) : null);
}

/** The error code of each item refused, "ok" for each sent. */
function codesOf(items: BatchItem[]): string[] {
  return items.map((item) => "error" in item ? item.error.code : "ok");
}

Deno.test("pieces - a batch with a missing content and a changed file: each refused on its own, the rest arrives", async () => {
  await using served = await servedFolder();
  const { client, ticket, id } = served;
  await Deno.writeFile(join(served.tree, "f2.bin"), new Uint8Array(bytesOf(2).length).fill(1));
  await Deno.utime(join(served.tree, "f2.bin"), 1, 1);
  const { result, body } = await client.callWithBody("pieces", {
    items: [
      { contentId: id("f0.bin"), index: 0 },
      { contentId: "ab".repeat(32), index: 0 },
      { contentId: id("f2.bin"), index: 0 },
      { contentId: id("f1.bin"), index: 1 },
      { contentId: id("large.bin"), index: 0 },
      { contentId: id("f3.bin"), index: 0 },
    ],
    ticket,
  });
  assert.deepEqual(codesOf(result.items), [
    "ok",
    "NOT_FOUND",
    "CONTENT_CHANGED",
    "NOT_FOUND",
    "BAD_MESSAGE",
    "ok",
  ]);
  const sent = itemsOf(result.items, body);
  assert.deepEqual(sent[0], bytesOf(0));
  assert.deepEqual(sent[5], bytesOf(3));
  assert.equal(body.length, bytesOf(0).length + bytesOf(3).length);
  assert.match(JSON.stringify(result.items[4]), /ask for its pieces with piece/);
  // The owner is told which file changed, once; the downloader never learns the path.
  assert.ok(served.warnings.some((line) => /f2\.bin changed since it was published/.test(line)));
  assert.ok(!JSON.stringify(result).includes(served.tree));
  // The folder's files are logged under the folder: one line for the connection, two files sent.
  client.close();
  for (let i = 0; i < 200 && served.lines.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(served.lines.length, 1, served.lines.join("\n"));
  const line = JSON.parse(served.lines[0]);
  assert.equal(line.share, "tree");
  assert.equal(line.contentId, served.folder.share.contentId);
  assert.equal(line.pieces, 2);
  assert.equal(line.bytes, body.length);
});

Deno.test("pieces - a file swapped for a link, another file with the same size and time, or a FIFO is refused in a batch", async () => {
  await using served = await servedFolder();
  const { client, ticket, id, tree } = served;
  // f0: a link to a copy of its very bytes; f1: another file (another inode) of the same size and time.
  await Deno.writeFile(join(served.dir, "copy0.bin"), bytesOf(0));
  await Deno.remove(join(tree, "f0.bin"));
  await Deno.symlink(join(served.dir, "copy0.bin"), join(tree, "f0.bin"));
  const before = await Deno.stat(join(tree, "f1.bin"));
  await Deno.writeFile(join(served.dir, "other1.bin"), bytesOf(1));
  await Deno.utime(join(served.dir, "other1.bin"), before.atime!, before.mtime!);
  await Deno.rename(join(served.dir, "other1.bin"), join(tree, "f1.bin"));
  // f4: a FIFO nobody writes to; reading it would hang a process that opened it blocking.
  await Deno.remove(join(tree, "f4.bin"));
  const fifo = await new Deno.Command("mkfifo", { args: [join(tree, "f4.bin")] }).output()
    .then((output) => output.success, () => false);
  const { result, body } = await client.callWithBody("pieces", {
    items: ["f0.bin", "f1.bin", "f4.bin", "f5.bin"].map((relative) => ({
      contentId: id(relative),
      index: 0,
    })),
    ticket,
  });
  assert.deepEqual(codesOf(result.items), [
    "CONTENT_CHANGED",
    "CONTENT_CHANGED",
    fifo ? "CONTENT_CHANGED" : "NOT_FOUND",
    "ok",
  ]);
  assert.deepEqual(body, bytesOf(5));
});

Deno.test("pieces - a ticket for one content serves that item only; a bad ticket fails the whole batch", async () => {
  await using served = await servedFolder();
  const { client, id } = served;
  const only = await served.authority.ticket(id("f1.bin"));
  const items = [{ contentId: id("f0.bin"), index: 0 }, { contentId: id("f1.bin"), index: 0 }];
  const { result, body } = await client.callWithBody("pieces", { items, ticket: only });
  assert.deepEqual(codesOf(result.items), ["TICKET_INVALID", "ok"]);
  assert.deepEqual(body, bytesOf(1));
  await assert.rejects(
    client.callWithBody("pieces", { items, ticket: "forged.ticket" }),
    shoalError("TICKET_INVALID"),
  );
  await assert.rejects(client.callWithBody("pieces", { items }), shoalError("TICKET_REQUIRED"));
  assert.equal(client.closed, false, "a refused batch leaves the connection usable");
});

Deno.test("pieces - a batch over its bounds is refused whole with BAD_MESSAGE, and the connection goes on", async () => {
  const authority = await TicketAuthority.create();
  // One content of 65,535 bytes, just under the batch limit per item: 65 of them pass 4 MiB.
  const content = Uint8Array.from({ length: 65_535 }, (_, i) => i & 0xff);
  const { contentId } = manifestOf(content, choosePieceSize(content.length));
  const catalog: Catalog = memoryCatalog(content, choosePieceSize(content.length));
  const { server, source } = await authority.serve(catalog, "alice");
  const client = await connectTo(source);
  try {
    const ticket = await authority.ticket(ANY_CONTENT);
    const item = { contentId, index: 0 };
    await assert.rejects(
      client.callWithBody("pieces", { items: Array(MAX_BATCH_ITEMS + 1).fill(item), ticket }),
      shoalError("BAD_MESSAGE", /items/),
    );
    await assert.rejects(
      client.callWithBody("pieces", { items: [], ticket }),
      shoalError("BAD_MESSAGE", /items/),
    );
    await assert.rejects(
      client.callWithBody("pieces", { items: Array(65).fill(item), ticket }),
      shoalError("BAD_MESSAGE", /4259775 bytes, more than the 4194304/),
    );
    const { result, body } = await client.callWithBody("pieces", {
      items: Array(64).fill(item),
      ticket,
    });
    assert.equal(result.items.length, 64);
    assert.equal(body.length, 64 * 65_535);
    assert.deepEqual(body.subarray(63 * 65_535), content);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("pieces - the upload limit paces a batch's body as a piece's, every byte taken from the budget", async () => {
  const authority = await TicketAuthority.create();
  const content = Uint8Array.from({ length: 60_000 }, (_, i) => (i * 3) & 0xff);
  const { contentId } = manifestOf(content, choosePieceSize(content.length));
  let taken = 0;
  const limiter = new RateLimiter({ bytesPerSecond: 1e12 });
  const take = limiter.take.bind(limiter);
  limiter.take = (bytes) => {
    taken += bytes;
    return take(bytes);
  };
  const { server, source } = await authority.serve(
    memoryCatalog(content, choosePieceSize(content.length)),
    "alice",
    { uploadLimiter: limiter },
  );
  const client = await connectTo(source);
  try {
    const { body } = await client.callWithBody("pieces", {
      items: Array(5).fill({ contentId, index: 0 }),
      ticket: await authority.ticket(ANY_CONTENT),
    });
    assert.equal(body.length, 5 * 60_000);
    assert.equal(taken, 5 * 60_000);
  } finally {
    client.close();
    await server.close();
  }
});
