import assert from "node:assert/strict";
import { encodeFrame, MAX_FRAME_BYTES } from "../../lib/protocol/frame.ts";
import {
  type Listing,
  MAX_CERTIFICATE_CHARS,
  MAX_LISTINGS,
  MAX_SOURCES,
  parseResult,
  type Source,
  TRACKER_METHODS,
} from "../../lib/protocol/messages.ts";
import type { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { startTestTracker } from "../helpers/tracker.ts";

const CONTENT_ID = "ef".repeat(32);
/** The longest name a client may publish, of two-byte characters (244 bytes of UTF-8). */
const LONG_NAME = "ü".repeat(122);
/** A host of the longest length the protocol allows. */
const LONG_HOST = `${"h".repeat(250)}.test`;
/** A certificate-shaped string of the longest length the protocol hands out. */
const LONG_CERTIFICATE = (() => {
  const head = "-----BEGIN CERTIFICATE-----\n";
  const tail = "\n-----END CERTIFICATE-----\n";
  return head + "A".repeat(MAX_CERTIFICATE_CHARS - head.length - tail.length) + tail;
})();

/** `count` accounts (u0000, u0001, ...), each online with the longest host and certificate. */
async function manyOnlineAccounts(store: SqliteTrackerStore, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `u${String(i).padStart(4, "0")}`);
  for (const [i, username] of names.entries()) {
    await store.createUser(username, "not-a-real-hash");
    await store.setPeerOnline(username, LONG_HOST, 1000 + i, LONG_CERTIFICATE);
  }
  return names;
}

Deno.test("4,400 owners of one name: lookup carries the first 400 and says how many there are", async () => {
  await using running = await startTestTracker();
  const owners = await manyOnlineAccounts(running.store, 4_400);
  for (const owner of owners) {
    await running.store.publish({
      owner,
      name: LONG_NAME,
      type: "bin",
      size: Number.MAX_SAFE_INTEGER,
      contentId: CONTENT_ID,
      publishedAt: new Date().toISOString(),
    });
  }
  const bob = await running.login("bob");

  const all = await bob.call("lookup", { name: LONG_NAME });
  assert.equal(all.files.length, MAX_LISTINGS);
  assert.equal(all.total, 4_400);
  assert.deepEqual(all.files.slice(0, 2).map((f) => f.owner), ["u0000", "u0001"]);

  const one = await bob.call("lookup", { name: LONG_NAME, owner: "U4399" });
  assert.deepEqual(one.files.map((f) => f.owner), ["u4399"]);
  assert.equal(one.total, 1);

  const found = await bob.call("search", { text: "üü" });
  assert.equal(found.files.length, MAX_LISTINGS);
  assert.equal(found.total, 4_400);

  const few = await bob.call("search", { text: "no such name" });
  assert.deepEqual(few, { files: [], total: 0 });
});

Deno.test("300 online owners of one content with the longest certificates: sources fit, and one owner can be asked for", async () => {
  await using running = await startTestTracker();
  const owners = await manyOnlineAccounts(running.store, 300);
  for (const owner of owners) {
    await running.store.publish({
      owner,
      name: "big.iso",
      type: "iso",
      size: 1,
      contentId: CONTENT_ID,
      publishedAt: new Date().toISOString(),
    });
  }
  const bob = await running.login("bob");
  const all = await bob.call("sources", { contentId: CONTENT_ID });
  assert.equal(all.sources.length, MAX_SOURCES);
  assert.equal(all.total, 300);
  assert.equal(all.sources[0].certificate, LONG_CERTIFICATE);

  // `fetch --from u0299` asks for that owner, beyond the first 200.
  const pinned = await bob.call("sources", { contentId: CONTENT_ID, owner: "u0299" });
  assert.deepEqual(pinned.sources.map((s) => [s.owner, s.partial]), [["u0299", false]]);
  assert.equal(pinned.total, 1);
});

Deno.test("a partial source is offered once per account, after the complete ones", async () => {
  await using running = await startTestTracker();
  await manyOnlineAccounts(running.store, 1);
  await running.store.publish({
    owner: "u0000",
    name: "big.iso",
    type: "iso",
    size: 1,
    contentId: CONTENT_ID,
    publishedAt: new Date().toISOString(),
  });
  const carol = await running.login("carol");
  await carol.call("downloading", { contentId: CONTENT_ID, port: 5001 });
  const carolAgain = await running.login("carol");
  await carolAgain.call("downloading", { contentId: CONTENT_ID, port: 5002 });
  const bob = await running.login("bob");
  const { sources, total } = await bob.call("sources", { contentId: CONTENT_ID });
  assert.deepEqual(sources.map((s) => [s.owner, s.partial]), [["u0000", false], ["carol", true]]);
  assert.equal(total, 2);
});

Deno.test("the largest lookup, search and sources replies the protocol allows fit in one frame", () => {
  // Every field at its longest: a name of lone surrogates, which JSON escapes to 6 bytes each.
  const listing: Listing = {
    owner: "a".repeat(32),
    name: "\ud800".repeat(255),
    type: "a".repeat(16),
    size: Number.MAX_SAFE_INTEGER,
    contentId: "f".repeat(64),
    publishedAt: new Date(8.64e15).toISOString(),
    online: true,
    address: `${"h".repeat(255)}:65535`,
    files: Number.MAX_SAFE_INTEGER,
  };
  const files = Array.from({ length: MAX_LISTINGS }, () => listing);
  const lookup = { files, total: Number.MAX_SAFE_INTEGER };
  parseResult(TRACKER_METHODS, "lookup", lookup);
  parseResult(TRACKER_METHODS, "search", lookup);
  const lookupBytes = encodeFrame({ id: Number.MAX_SAFE_INTEGER, ok: true, result: lookup })
    .byteLength;
  assert.ok(lookupBytes <= MAX_FRAME_BYTES, `a full lookup reply is ${lookupBytes} bytes`);

  const source: Source = {
    owner: "a".repeat(32),
    address: `${"h".repeat(255)}:65535`,
    partial: true,
    certificate: LONG_CERTIFICATE,
  };
  const sources = {
    sources: Array.from({ length: MAX_SOURCES }, () => source),
    total: Number.MAX_SAFE_INTEGER,
    ticket: "t".repeat(2048),
  };
  parseResult(TRACKER_METHODS, "sources", sources);
  const sourcesBytes = encodeFrame({ id: Number.MAX_SAFE_INTEGER, ok: true, result: sources })
    .byteLength;
  assert.ok(sourcesBytes <= MAX_FRAME_BYTES, `a full sources reply is ${sourcesBytes} bytes`);
});
