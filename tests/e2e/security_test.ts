/**
 * What a wiretap and an impostor can get out of Shoal. The wiretapped flows
 * and the impostor run the tracker, the peers' programs and the serving peer
 * in this process (the same code the binaries run); the pinned tracker
 * certificate keeps a real tracker process, whose printed fingerprint is
 * part of the check, with the peer's program in this process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File, startTracker, tempDir } from "../helpers/processes.ts";
import { CliPeer } from "../helpers/cli.ts";
import { servePeer } from "../helpers/local_peers.ts";
import { startTestTracker } from "../helpers/tracker.ts";
import { RecordingProxy, startRecordingProxy } from "../helpers/proxy.ts";
import { createIdentity, fingerprintOf } from "../../lib/identity/certificate.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";

const PLAINTEXT = "--insecure-plaintext";
/** A loopback address other than the one everything listens on, for the wiretaps. */
const TAPPED_HOST = "127.0.0.2";

/**
 * A tracker in this process on `dir`/tracker.db, as `tracker.ts serve
 * --allow-advertise [--insecure-plaintext]` runs it.
 */
async function advertisingTracker(dir: string, plaintext: boolean) {
  return await startTestTracker({
    db: join(dir, "tracker.db"),
    tls: plaintext ? undefined : await loadOrCreateIdentity(dir, "tracker.db.tls-"),
    ticketKey: await loadOrCreateTicketKey(dir, "tracker.db.ticket-key.pem"),
    allowAdvertisedHosts: true,
  });
}

/** Registers and logs in with the given password. */
async function signUp(peer: CliPeer, global: string[], username: string, password: string) {
  const stdin = `${password}\n`;
  await peer.ok([...global, "register", username, "--password-stdin"], { stdin });
  await peer.ok([...global, "login", username, "--password-stdin"], { stdin });
}

/** A file of `size` bytes that is `marker` over and over. */
async function writeMarkerFile(path: string, marker: string, size: number): Promise<void> {
  const text = marker.repeat(Math.ceil(size / marker.length)).slice(0, size);
  await Deno.writeTextFile(path, text);
}

/** What one run of the wiretapped flow saw. */
interface Capture {
  tracker: RecordingProxy;
  peer: RecordingProxy;
  /** The --json output of the fetch. */
  fetched: { sources: { owner: string; address: string; pieces: number }[] };
  sourcePort: number;
  fileSize: number;
}

const ALICE_PASSWORD = "Alice-Wiretap-Passw0rd-4f81c2";
const BOB_PASSWORD = "Bob-Wiretap-Passw0rd-9d37e5";
const MARKER = "SHOAL-CONFIDENTIAL-MARKER-b7e0a1|";

/**
 * Alice and Bob sign up and log in through a recording proxy in front of the
 * tracker; Alice publishes a file of markers and serves it, advertised at
 * 127.0.0.2 where a second recording proxy forwards to her; Bob fetches it
 * through both. `check` sees both captures before everything is stopped.
 */
async function wiretappedFlow(
  plaintext: boolean,
  check: (capture: Capture) => void | Promise<void>,
): Promise<void> {
  await using dir = await tempDir();
  const global = plaintext ? [PLAINTEXT] : [];
  // Alice advertises the proxy's address, so the tracker must accept advertised hosts.
  await using tracker = await advertisingTracker(dir.path, plaintext);
  const trackerProxy = startRecordingProxy({
    listen: { hostname: "127.0.0.1", port: 0 },
    target: { hostname: "127.0.0.1", port: tracker.port },
  });
  let peerProxy: RecordingProxy | undefined;
  try {
    const alice = new CliPeer(join(dir.path, "alice"), trackerProxy.address);
    const bob = new CliPeer(join(dir.path, "bob"), trackerProxy.address);
    const source = join(dir.path, "secret-plans.txt");
    const fileSize = 600_000;
    await writeMarkerFile(source, MARKER, fileSize);
    await signUp(alice, global, "alice", ALICE_PASSWORD);
    await signUp(bob, global, "bob", BOB_PASSWORD);
    await alice.ok([...global, "publish", source]);

    await using serving = await servePeer(alice.home, trackerProxy.address, {
      plaintext,
      advertise: TAPPED_HOST,
    });
    peerProxy = startRecordingProxy({
      listen: { hostname: TAPPED_HOST, port: serving.port },
      target: { hostname: "127.0.0.1", port: serving.port },
    });
    const output = join(dir.path, "copy.txt");
    const fetched = JSON.parse(
      await bob.ok([...global, "fetch", "secret-plans.txt", "--output", output, "--json"]),
    );
    assert.equal(await sha256File(output), await sha256File(source));
    await check({
      tracker: trackerProxy,
      peer: peerProxy,
      fetched,
      sourcePort: serving.port,
      fileSize,
    });
  } finally {
    await peerProxy?.close();
    await trackerProxy.close();
  }
}

/** The checks both runs share: the traffic really went through both proxies. */
function assertWentThroughProxies(capture: Capture): void {
  const [source, ...others] = capture.fetched.sources;
  assert.equal(others.length, 0, JSON.stringify(capture.fetched.sources));
  assert.equal(source.owner, "alice");
  assert.equal(source.address, `${TAPPED_HOST}:${capture.sourcePort}`);
  assert.ok(source.pieces > 0);
  assert.ok(capture.peer.connections > 0, "the fetch did not go through the peer's proxy");
  assert.ok(capture.peer.bytes().length >= capture.fileSize);
  // register, login ×2 each, publish, serve, fetch: every one through the tracker's proxy.
  assert.ok(capture.tracker.connections >= 6);
}

Deno.test("passwords and file bytes never cross the wire in clear", async () => {
  await wiretappedFlow(false, (capture) => {
    assertWentThroughProxies(capture);
    for (const [what, proxy] of [["tracker", capture.tracker], ["peer", capture.peer]] as const) {
      for (const secret of [ALICE_PASSWORD, BOB_PASSWORD, MARKER]) {
        assert.ok(!proxy.contains(secret), `"${secret}" crossed the ${what} connection in clear`);
      }
    }
  });
});

Deno.test("with --insecure-plaintext the same wiretap does see them (control)", async () => {
  await wiretappedFlow(true, (capture) => {
    assertWentThroughProxies(capture);
    assert.ok(capture.tracker.contains(ALICE_PASSWORD));
    assert.ok(capture.tracker.contains(BOB_PASSWORD));
    assert.ok(capture.peer.contains(MARKER));
  });
});

Deno.test("a tracker whose certificate changed is refused until forgotten", async () => {
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  let tracker = await startTracker({ db });
  try {
    // Alice's commands run in this process, against the real tracker.
    const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
    await alice.signUp("alice");
    await alice.ok(["search", "x"]);

    await tracker.daemon.stop();
    await Deno.remove(`${db}.tls-cert.pem`);
    await Deno.remove(`${db}.tls-key.pem`);
    tracker = await startTracker({ db, port: tracker.port });
    const fingerprint = fingerprintOf(await Deno.readTextFile(`${db}.tls-cert.pem`));
    assert.ok((await tracker.daemon.waitFor(/fingerprint: (\S+)/))[1] === fingerprint);

    const refused = await alice.run(["search", "x"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^error: .*DIFFERENT certificate/m);
    assert.ok(refused.stderr.includes(fingerprint), refused.stderr);
    assert.match(refused.stderr, /^hint: .*forget-tracker/m);
    assert.equal(refused.stdout, "");

    const forgot = await alice.ok(["forget-tracker", tracker.address]);
    assert.match(forgot, /forgot the certificate pinned for 127\.0\.0\.1:\d+/);
    // Pinned again on this contact; the session lives in the tracker's database, so it holds.
    const again = await alice.run(["search", "x"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing matches "x"/);
    assert.ok(again.stderr.includes(fingerprint), again.stderr);
    await alice.ok(["search", "x"]);
  } finally {
    await tracker.daemon.stop();
  }
});

Deno.test("a source whose certificate is not the one the tracker vouched for is refused", async () => {
  await using dir = await tempDir();
  await using tracker = await advertisingTracker(dir.path, false);
  const address = `127.0.0.1:${tracker.port}`;
  let impostor: Deno.TlsListener | undefined;
  const handshakes: Promise<void>[] = [];
  let accepting: Promise<void> | undefined;
  try {
    const alice = new CliPeer(join(dir.path, "alice"), address);
    const bob = new CliPeer(join(dir.path, "bob"), address);
    const source = join(dir.path, "report.txt");
    await writeMarkerFile(source, MARKER, 300_000);
    await alice.signUp("alice");
    await bob.signUp("bob");
    await alice.ok(["publish", source]);
    await using serving = await servePeer(alice.home, address, { advertise: TAPPED_HOST });

    // Someone else answers at the address the tracker hands out, with a certificate of its own.
    const { certificate, key } = await createIdentity();
    const listener = Deno.listenTls({
      hostname: TAPPED_HOST,
      port: serving.port,
      cert: certificate,
      key,
    });
    impostor = listener;
    let connections = 0;
    accepting = (async () => {
      for await (const conn of listener) {
        connections++;
        handshakes.push(conn.handshake().then(() => {}, () => {}).finally(() => conn.close()));
      }
    })().catch(() => {});

    const output = join(dir.path, "copy.txt");
    const result = await bob.run(["fetch", "report.txt", "--output", output, "--json"]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    // With --json the error is one JSON object on stdout.
    const { error } = JSON.parse(result.stdout);
    assert.match(error.message, /certificate/);
    assert.match(error.message, /no source (left|gave the manifest)/);
    assert.ok(connections > 0, "the fetch never reached the impostor");
    await assert.rejects(Deno.lstat(output), Deno.errors.NotFound);
  } finally {
    impostor?.close();
    await accepting;
    await Promise.all(handshakes);
  }
});
