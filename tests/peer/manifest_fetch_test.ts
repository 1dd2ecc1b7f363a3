import assert from "node:assert/strict";
import type { Source } from "../../lib/protocol/messages.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { fetchManifest } from "../../lib/peer/manifest_fetch.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";
import { DripProxy } from "../helpers/drip_proxy.ts";
import { TicketAuthority, via } from "../helpers/sources.ts";
import { shoalError } from "../helpers/errors.ts";

const PIECE_SIZE = 256 * 1024;
/** Enough pieces that the manifest is a few KiB: a byte at a time, it would take minutes. */
const CONTENT = Uint8Array.from({ length: 40 * PIECE_SIZE + 5 }, (_, i) => (i * 29 + 3) & 0xff);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE_SIZE);
const OTHER = Uint8Array.from({ length: PIECE_SIZE }, (_, i) => i & 0xff);

/** Answers for CONTENT_ID with another content's manifest, as a lying source would. */
const LYING_CATALOG: Catalog = {
  find: async (contentId) => {
    const other = await memoryCatalog(OTHER, PIECE_SIZE).find(
      manifestOf(OTHER, PIECE_SIZE).contentId,
    );
    return contentId === CONTENT_ID ? other : null;
  },
};

/**
 * An honest source, a liar, and a dripper: a proxy in front of the honest
 * source that lets `hello` through and then sends a byte every 20 ms.
 */
async function startSources() {
  const authority = await TicketAuthority.create();
  const honest = await authority.serve(memoryCatalog(CONTENT, PIECE_SIZE), "honest");
  const liar = await authority.serve(LYING_CATALOG, "liar");
  const [host, port] = honest.source.address.split(":");
  const proxy = new DripProxy({
    target: { hostname: host, port: Number(port) },
    passFrames: 1,
    everyMs: 20,
  });
  const dripper = via(honest.source, "dripper", proxy.address);
  return {
    honest: honest.source,
    liar: liar.source,
    dripper,
    ticket: await authority.ticket(CONTENT_ID),
    async [Symbol.asyncDispose]() {
      await proxy.close();
      await honest.server.close();
      await liar.server.close();
    },
  };
}

function listOf(sources: Source[], ticket: string) {
  return { sources, ticket };
}

Deno.test("fetchManifest - a source dripping the manifest loses to an honest one asked at the same time", async () => {
  await using world = await startSources();
  const { manifest, source } = await fetchManifest(
    CONTENT_ID,
    listOf([world.dripper, world.honest], world.ticket),
    { plaintext: true },
  );
  assert.equal(source.owner, "honest");
  assert.deepEqual(manifest, MANIFEST);
});

Deno.test("fetchManifest - asked one at a time, a dripping source is given up at its deadline and the next one answers", async () => {
  await using world = await startSources();
  const { manifest, source } = await fetchManifest(
    CONTENT_ID,
    listOf([world.dripper, world.honest], world.ticket),
    { plaintext: true, concurrency: 1, deadlineMs: 1_000 },
  );
  assert.equal(source.owner, "honest");
  assert.deepEqual(manifest, MANIFEST);
});

Deno.test("fetchManifest - a source answering with another manifest is passed over", async () => {
  await using world = await startSources();
  const { source } = await fetchManifest(
    CONTENT_ID,
    listOf([world.liar, world.honest], world.ticket),
    { plaintext: true, concurrency: 1 },
  );
  assert.equal(source.owner, "honest");
});

Deno.test("fetchManifest - when no source gives a matching manifest in time, the error names each and why", async () => {
  await using world = await startSources();
  await assert.rejects(
    fetchManifest(CONTENT_ID, listOf([world.liar, world.dripper], world.ticket), {
      plaintext: true,
      deadlineMs: 1_000,
    }),
    shoalError(
      "UNREACHABLE",
      /^no source gave the manifest \(.*liar: the manifest does not match the content id.*\)$/,
    ),
  );
  await assert.rejects(
    fetchManifest(CONTENT_ID, listOf([world.dripper], world.ticket), {
      plaintext: true,
      deadlineMs: 1_000,
    }),
    shoalError("UNREACHABLE", /dripper: .*took over 1000 ms to answer a manifest request/),
  );
  await assert.rejects(
    fetchManifest(CONTENT_ID, listOf([], world.ticket), { plaintext: true }),
    shoalError("UNREACHABLE", /no source is online/),
  );
});
