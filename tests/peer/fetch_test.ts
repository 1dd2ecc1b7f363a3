/**
 * A fetch in one process with an in-process tracker: where and what it
 * serves while it runs, how a hostile source's words reach its summary, and
 * a part file planted as a link.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatAddress, parseAddress } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PEER_METHODS } from "../../lib/protocol/messages.ts";
import { loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { login, register } from "../../lib/peer/account.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { saveConfig } from "../../lib/peer/config.ts";
import { fetchFile, listOwners, pickSource } from "../../lib/peer/fetch.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { PieceServer } from "../../lib/peer/piece_server.ts";
import { describeFile } from "../../lib/peer/shares.ts";
import { connectSession, PEER_AGENT, type TrackerEndpoint } from "../../lib/peer/tracker_link.ts";
import { summaryLine } from "../../lib/cli/fetch_command.ts";
import { manifestOf, memoryCatalog } from "../helpers/catalog.ts";

const PIECE = 256 * 1024;
const CONTENT = Uint8Array.from({ length: 3 * PIECE + 77 }, (_, i) => (i * 29 + 3) & 0xff);
const { manifest: MANIFEST, contentId: CONTENT_ID } = manifestOf(CONTENT, PIECE);
const PASSWORD = "correct horse battery";
/** What a hostile source answers: a terminal title, a screen wipe, a reversed ending. */
const HOSTILE = "\x1b]0;owned\x07\x1b[2Jdisk \u202efull";

/** An in-process plaintext tracker on loopback, and a folder for everyone's homes. */
async function startNetwork() {
  const dir = await Deno.makeTempDir({ prefix: "shoal-fetch-test-" });
  const store = SqliteTrackerStore.open(join(dir, "tracker.db"));
  const ticketKey = await loadOrCreateTicketKey(dir, "ticket-key.pem");
  const tracker = new Tracker(store, { ticketKey, warn: () => {} });
  const address = await tracker.listen({ host: "127.0.0.1", port: 0 });
  const endpoint: TrackerEndpoint = { addresses: [address], plaintext: true, notice: () => {} };
  const homes: PeerHome[] = [];
  const stops: (() => Promise<void>)[] = [];
  return {
    dir,
    endpoint,
    /** A registered, logged-in user with a home of their own. */
    async user(name: string): Promise<PeerHome> {
      const home = PeerHome.open(join(dir, name));
      homes.push(home);
      await register(home, endpoint, name, PASSWORD);
      await login(home, endpoint, name, PASSWORD);
      return home;
    },
    /** Publishes CONTENT as "plan" for `home`'s user and serves `catalog` for it, online. */
    async source(home: PeerHome, catalog: Catalog): Promise<void> {
      const { tracker: client, username } = await connectSession(home, endpoint);
      const server = new PieceServer(catalog, { username: () => username, warn: () => {} });
      stops.push(async () => {
        client.close();
        await server.close();
      });
      const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
      await client.call("publish", {
        name: "plan",
        type: "pdf",
        size: CONTENT.length,
        contentId: CONTENT_ID,
      });
      const { ticketKey } = await client.call("announce", { port, host: "127.0.0.1" });
      await server.trustTicketKey(ticketKey);
    },
    async [Symbol.asyncDispose]() {
      for (const stop of stops) await stop();
      await tracker.close();
      for (const home of homes) home.close();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Serves CONTENT, holding every piece back until `open` is called; `asked` resolves at the first. */
function gatedCatalog() {
  const memory = memoryCatalog(CONTENT, PIECE);
  const gate = Promise.withResolvers<void>();
  const asked = Promise.withResolvers<void>();
  const catalog: Catalog = {
    async find(contentId) {
      const content = await memory.find(contentId);
      return content && {
        ...content,
        read: async (index, into) => {
          asked.resolve();
          await gate.promise;
          return content.read(index, into);
        },
      };
    },
  };
  return { catalog, asked: asked.promise, open: () => gate.resolve() };
}

/** Connects to a peer's piece server, as another downloader would. */
function dial(address: string) {
  return ProtocolClient.connect(parseAddress(address), PEER_METHODS, {
    expect: "peer",
    agent: PEER_AGENT,
  });
}

Deno.test("fetch - serves only the content being fetched, only on the configured serve host, only while it runs", async () => {
  await using network = await startNetwork();
  const alice = await network.user("alice");
  const bob = await network.user("bob");
  const carol = await network.user("carol");
  const source = gatedCatalog();
  await network.source(alice, source.catalog);
  // Bob shares something else; a fetch must not hand it out.
  const secretPath = join(network.dir, "diary.txt");
  await Deno.writeTextFile(secretPath, "dear diary");
  const secret = await describeFile("diary", secretPath);
  bob.addShare(secret);
  saveConfig(bob.dir, { "serve.host": "127.0.0.1" });

  const served: string[] = [];
  const chosen = pickSource((await listOwners(bob, network.endpoint, "plan")).owners);
  const fetching = fetchFile(bob, network.endpoint, chosen, {
    output: join(network.dir, "plan.pdf"),
    onServing: (address) => served.push(formatAddress(address)),
  });
  try {
    await source.asked;
    assert.equal(served.length, 1, "it says once where it serves");
    const [address] = served;
    assert.match(address, /^127\.0\.0\.1:\d+$/, "on the configured host, not 0.0.0.0");

    const { tracker: client } = await connectSession(carol, network.endpoint);
    try {
      const { sources, ticket } = await client.call("sources", { contentId: CONTENT_ID });
      const listed = sources.find((s) => s.owner === "bob");
      assert.deepEqual(listed && { address: listed.address, partial: listed.partial }, {
        address,
        partial: true,
      });
      const { ticket: secretTicket } = await client.call("sources", {
        contentId: secret.contentId,
      });
      using peer = await dial(address);
      const { manifest } = await peer.call("manifest", { contentId: CONTENT_ID, ticket });
      assert.deepEqual(manifest, MANIFEST);
      await assert.rejects(
        peer.call("manifest", { contentId: secret.contentId, ticket: secretTicket }),
        (error) => error instanceof ShoalError && error.code === "NOT_FOUND",
      );
    } finally {
      client.close();
    }
  } finally {
    source.open();
  }
  const { summary } = await fetching;
  assert.deepEqual(await Deno.readFile(summary.path), CONTENT);
  await assert.rejects(dial(served[0]), "nothing listens there once the fetch is over");
});

Deno.test("fetch - a hostile source's error text reaches the summary escaped", async () => {
  await using network = await startNetwork();
  const mallory = await network.user("mallory");
  const alice = await network.user("alice");
  const bob = await network.user("bob");
  const honest = memoryCatalog(CONTENT, PIECE);
  const alicePublished = Promise.withResolvers<void>();
  let finds = 0;
  // Mallory hands out the manifest, then answers everything else with terminal escapes.
  await network.source(mallory, {
    async find(contentId) {
      if (++finds === 1) return await honest.find(contentId);
      // Alice comes online only now, so the download cannot be over before Mallory is dropped.
      await network.source(alice, honest).then(alicePublished.resolve);
      throw new ShoalError("IO", HOSTILE);
    },
  });
  const chosen = pickSource((await listOwners(bob, network.endpoint, "plan")).owners);
  const { summary } = await fetchFile(bob, network.endpoint, chosen, {
    output: join(network.dir, "plan.pdf"),
  });
  await alicePublished.promise;
  assert.deepEqual(await Deno.readFile(summary.path), CONTENT);
  assert.deepEqual(summary.dropped.map((d) => [d.owner, d.reason]), [["mallory", HOSTILE]]);
  const line = summaryLine(summary, "plan");
  assert.ok(
    line.endsWith(
      "; dropped mallory (\\u{1b}]0;owned\\u{7}\\u{1b}[2Jdisk \\u{202e}full)",
    ),
    line,
  );
});

Deno.test("fetch - a symbolic link planted as the part file fails the fetch in one line, its target untouched", async () => {
  await using network = await startNetwork();
  const alice = await network.user("alice");
  const bob = await network.user("bob");
  await network.source(alice, memoryCatalog(CONTENT, PIECE));
  const victim = join(network.dir, "bashrc");
  await Deno.writeTextFile(victim, "alias ls='ls --color'\n");
  const output = join(network.dir, "plan.pdf");
  await Deno.symlink(victim, `${output}.shoal-part`);

  const chosen = pickSource((await listOwners(bob, network.endpoint, "plan")).owners);
  await assert.rejects(fetchFile(bob, network.endpoint, chosen, { output }), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "IO");
    assert.equal(
      error.message,
      `${output}.shoal-part is a symbolic link, not a partial download of ours; ` +
        "remove it or fetch with another --output",
    );
    return true;
  });
  assert.equal(await Deno.readTextFile(victim), "alias ls='ls --color'\n");
  await assert.rejects(Deno.lstat(output), Deno.errors.NotFound);
});
