/**
 * A tracker at several addresses (its processes on one store and one
 * identity): a peer moves to the next address when one is down, without a
 * new login, trusts the shared certificate at an address it has not met,
 * refuses any other, and does not move on an answer. In this process: the
 * two trackers of tests/helpers/tracker_pair.ts; a plain TCP listener where
 * an address must count or swallow connections.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fingerprintOf } from "../../lib/identity/certificate.ts";
import { login } from "../../lib/peer/account.ts";
import { search } from "../../lib/peer/search.ts";
import { publish } from "../../lib/peer/shares.ts";
import { fetchFile, listOwners } from "../../lib/peer/fetch.ts";
import { connectSession, type TrackerEndpoint, withSession } from "../../lib/peer/tracker_link.ts";
import { parseAddress } from "../../lib/protocol/address.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { eventually } from "../helpers/eventually.ts";
import { heldSource, localPeer, servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { deadline } from "../../lib/async/deadline.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";
import { startTrackerPair } from "../helpers/tracker_pair.ts";

/** A TCP listener on 127.0.0.1 that counts connections and never says a word. */
function silentListener(port = 0) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const held: Deno.Conn[] = [];
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      held.push(conn);
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get accepted() {
      return accepted;
    },
    [Symbol.dispose]() {
      listener.close();
      for (const conn of held) conn.close();
    },
  };
}

/**
 * A TCP relay on 127.0.0.1 to `target`; `kill()` drops every connection and
 * the listener without a TLS close_notify, as a tracker process killed with
 * SIGKILL does (its peers read an unexpected end of the TLS stream).
 */
function killableRelay(target: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const port = Number(target.split(":")[1]);
  (async () => {
    for await (const conn of listener) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn, upstream);
      conn.readable.pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    kill() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed by its pipe.
        }
      }
    },
  };
}

/** The endpoint of `peer`, pointed at `tracker` (`A` or `A,B`). */
function at(endpoint: TrackerEndpoint, tracker: string, connectTimeoutMs?: number) {
  return {
    ...endpoint,
    addresses: tracker.split(",").map((a) => parseAddress(a)),
    connectTimeoutMs,
  };
}

Deno.test("failover - a command moves to the tracker's next address with the same session; the next command starts there", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  using alice = await localPeer(dir.path, "alice", pair.both);
  const notes = join(dir.path, "notes.txt");
  await Deno.writeTextFile(notes, "lecture notes\n");
  await publish(alice.home, alice.endpoint, notes, "notes");
  assert.equal(alice.home.pinnedTracker(pair.a.address), pair.certificate);
  assert.equal(alice.home.pinnedTracker(pair.b.address), null);

  await pair.a.stop();
  const { files } = await search(alice.home, alice.endpoint, "notes");
  assert.deepEqual(files.map((f) => f.name), ["notes"]);
  // No new login, no new first contact: B presents the certificate pinned at A.
  assert.equal(alice.home.session()?.username, "alice");
  assert.equal(alice.home.pinnedTracker(pair.b.address), pair.certificate);
  assert.ok(
    alice.notices.some((n) => n.includes(`${pair.b.address} presents the certificate pinned`)),
    alice.notices.join("\n"),
  );
  assert.equal(alice.notices.filter((n) => n.startsWith("first contact")).length, 1);
  assert.equal(alice.home.lastTrackerAddress(), pair.b.address);

  // A's port now swallows connections: the next command starts at B and never goes there.
  using hole = silentListener(parseAddress(pair.a.address).port);
  await search(alice.home, alice.endpoint, "notes");
  assert.equal(hole.accepted, 0);
});

Deno.test("failover - an address where nobody answers in time is passed over for the next", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  using alice = await localPeer(dir.path, "alice", tracker.address);
  using hole = silentListener();
  const endpoint = at(alice.endpoint, `${hole.address},${tracker.address}`, 300);
  const { tracker: client, username } = await connectSession(alice.home, endpoint);
  client.close();
  assert.equal(username, "alice");
  assert.equal(hole.accepted, 1);
  assert.equal(alice.home.lastTrackerAddress(), tracker.address);
});

Deno.test("failover - an error a live tracker answers with is its answer: the next address is not tried", async () => {
  await using dir = await tempDir();
  await using tracker = await startLocalTracker(dir.path);
  using alice = await localPeer(dir.path, "alice", tracker.address);
  using other = silentListener();
  const endpoint = at(alice.endpoint, `${tracker.address},${other.address}`);
  await assert.rejects(
    login(alice.home, endpoint, "alice", "not the password"),
    (error: ShoalError) => error.code === "AUTH_FAILED",
  );
  await assert.rejects(
    listOwners(alice.home, endpoint, "no such file"),
    (error: ShoalError) => error.code === "NOT_FOUND",
  );
  assert.equal(other.accepted, 0);
});

Deno.test("failover - with every address down, one error names each and what to check", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  using alice = await localPeer(dir.path, "alice", pair.both);
  await pair.a.stop();
  await pair.b.stop();
  await assert.rejects(connectSession(alice.home, alice.endpoint), (error: ShoalError) => {
    assert.equal(error.code, "UNREACHABLE");
    assert.match(error.message, /^cannot reach the tracker at any of its 2 addresses: /);
    assert.ok(error.message.includes(`${pair.a.address} (`), error.message);
    assert.ok(error.message.includes(`${pair.b.address} (`), error.message);
    assert.doesNotMatch(error.message, /\n/);
    assert.ok(error.hint?.includes(`--tracker ${pair.both}`), error.hint ?? "no hint");
    return true;
  });
  // Unreachable is not logged out: the session waits for the tracker.
  assert.equal(alice.home.session()?.username, "alice");
});

Deno.test("failover - a listed address with another certificate is refused, naming both fingerprints", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  await Deno.mkdir(join(dir.path, "impostor"));
  await using impostor = await startLocalTracker(join(dir.path, "impostor"));
  using alice = await localPeer(dir.path, "alice", pair.a.address);
  await pair.a.stop();
  const endpoint = at(alice.endpoint, `${pair.a.address},${impostor.address}`);
  const impostorCertificate = await Deno.readTextFile(
    join(dir.path, "impostor", "tracker.db.tls-cert.pem"),
  );
  await assert.rejects(connectSession(alice.home, endpoint), (error: ShoalError) => {
    assert.equal(error.code, "CERTIFICATE_MISMATCH");
    assert.ok(error.message.includes(impostor.address), error.message);
    assert.ok(error.message.includes(fingerprintOf(impostorCertificate)), error.message);
    assert.ok(error.message.includes(fingerprintOf(pair.certificate)), error.message);
    assert.match(error.message, /Nothing was sent/);
    assert.match(error.hint ?? "", /forget-tracker/);
    return true;
  });
  assert.equal(alice.home.pinnedTracker(impostor.address), null);
  assert.equal(alice.home.session()?.username, "alice");
});

Deno.test("failover - serve moves its control connection to the next address, says so once, and stays findable and fetchable", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  using alice = await localPeer(dir.path, "alice", pair.both);
  using bob = await localPeer(dir.path, "bob", pair.both);
  const song = join(dir.path, "song.ogg");
  await writeRandomFile(song, 700_000);
  await publish(alice.home, alice.endpoint, song, "song.ogg");
  await using serving = await servePeer(join(dir.path, "alice"), pair.both);
  assert.ok(serving.lines.some((l) => l.includes(`at tracker ${pair.a.address}`)));

  await pair.a.stop();
  const moved = `tracker ${pair.a.address} lost; now connected to ${pair.b.address}`;
  await eventually(
    () => serving.lines.some((line) => line.startsWith(moved)),
    () => `serve said:\n${serving.lines.join("\n")}`,
    { tries: 2000 },
  );
  assert.equal(serving.lines.filter((line) => line.startsWith(moved)).length, 1);
  assert.ok(!serving.lines.some((l) => l.startsWith("lost the tracker")), serving.lines.join("\n"));

  // Found through B alone: online, at the address it serves on.
  const throughB = at(bob.endpoint, pair.b.address);
  await eventually(
    async () => {
      const { owners } = await listOwners(bob.home, throughB, "song.ogg");
      return owners[0]?.online === true && owners[0].address === `127.0.0.1:${serving.port}`;
    },
    "alice online at B",
    { tries: 200, everyMs: 100 },
  );
  const { owners } = await listOwners(bob.home, bob.endpoint, "song.ogg");
  const output = join(dir.path, "copy.ogg");
  await fetchFile(bob.home, bob.endpoint, owners[0], { output });
  assert.equal(await sha256File(output), await sha256File(song));
});

Deno.test("failover - serve moves in one line when its tracker is killed outright (no TLS close_notify)", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  const relay = killableRelay(pair.a.address);
  const list = `${relay.address},${pair.b.address}`;
  using alice = await localPeer(dir.path, "alice", list);
  const notes = join(dir.path, "notes.txt");
  await Deno.writeTextFile(notes, "lecture notes\n");
  await publish(alice.home, alice.endpoint, notes, "notes");
  await using serving = await servePeer(join(dir.path, "alice"), list);
  assert.ok(serving.lines.some((l) => l.includes(`at tracker ${relay.address}`)));

  relay.kill();
  const moved = `tracker ${relay.address} lost; now connected to ${pair.b.address}`;
  await eventually(
    () => serving.lines.some((line) => line.startsWith(moved)),
    () => `serve said:\n${serving.lines.join("\n")}`,
    { tries: 2000 },
  );
  assert.ok(!serving.lines.some((l) => l.startsWith("lost the tracker")), serving.lines.join("\n"));
  assert.ok(!serving.lines.some((l) => l.includes("close_notify")), serving.lines.join("\n"));
});

Deno.test("failover - a fetch whose tracker address dies midway finishes from its source and is published at the next address", async () => {
  await using dir = await tempDir();
  await using pair = await startTrackerPair(dir.path);
  const original = join(dir.path, "notes.bin");
  await writeRandomFile(original, 2 * 1024 * 1024);
  using alice = await localPeer(dir.path, "alice", pair.both);
  using bob = await localPeer(dir.path, "bob", pair.both);
  await using source = await heldSource(alice, original, "notes", 2);
  const { owners: [listing] } = await listOwners(bob.home, bob.endpoint, "notes");

  const output = join(dir.path, "fetched.bin");
  const firstPiece = Promise.withResolvers<void>();
  const fetching = fetchFile(bob.home, bob.endpoint, listing, {
    output,
    onProgress: () => firstPiece.resolve(),
  });
  await deadline(firstPiece.promise, 30_000, { what: "the first piece" });
  await pair.a.stop();
  // At its next look for sources the fetch moves to B and lists itself there as a partial source.
  using carol = await localPeer(dir.path, "carol", pair.b.address);
  await eventually(
    async () => {
      const { sources } = await withSession(
        carol.home,
        carol.endpoint,
        (client) => client.call("sources", { contentId: listing.contentId }),
      );
      return sources.some((s) => s.owner === "bob" && s.partial);
    },
    "bob listed at B as a partial source",
    { tries: 100, everyMs: 200 },
  );
  source.release();
  const { shared, unpublished } = await deadline(fetching, 60_000, { what: "the fetch" });
  assert.equal(await sha256File(output), await sha256File(original));
  assert.ok(shared);
  assert.equal(unpublished, null, "published at B, nothing pending");
  const { owners } = await listOwners(alice.home, at(alice.endpoint, pair.b.address), "notes");
  assert.deepEqual(owners.map((o) => o.owner).sort(), ["alice", "bob"]);
});
