/**
 * Fuzzing a real tracker and a real serving peer with thousands of random and
 * mutated frames inside TLS, then checking that both still serve real peers.
 * Every run prints its seed; `SHOAL_FUZZ_SEED=<seed>` replays the same frames.
 * The tracker and the serving peer are real processes (a crash is an exit);
 * the peers' other commands run the peer's program in this process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TLS_SERVER_NAME } from "../../lib/protocol/tls.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { PEER_METHODS, PROTOCOL_VERSION, TRACKER_METHODS } from "../../lib/protocol/messages.ts";
import { CliPeer } from "../helpers/cli.ts";
import {
  type Daemon,
  sha256File,
  startTracker,
  tempDir,
  TestPeer,
  writeRandomFile,
} from "../helpers/processes.ts";
import { concat } from "../helpers/bytes.ts";

/** Payloads sent to each server; connections keep opening until they are all sent. */
const PAYLOADS_PER_SERVER = 2000;
const MAX_CONNECTIONS_PER_SERVER = 300;
const PAYLOADS_PER_CONNECTION = 20;
/** Fuzz connections open at once: well under the 64 a server allows one address. */
const CONCURRENCY = 12;
/** How long to keep listening after the last payload of a connection. */
const LINGER_MS = 100;
/** However a server behaves, one connection gets no longer than this. */
const CONNECTION_DEADLINE_MS = 3000;
/** Fuzzing one server stops starting connections after this. */
const SERVER_BUDGET_MS = 15_000;
const AGENT = "shoal-fuzz/0";

/** mulberry32: small, fast, and the same on every machine. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random choices drawn from one seeded stream. */
class Dice {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<V>(values: readonly V[]): V {
    return values[this.int(values.length)];
  }
  bytes(length: number): Uint8Array {
    return Uint8Array.from({ length }, () => this.int(256));
  }
  string(maxLength: number): string {
    const alphabets = [
      "abcdefghijklmnopqrstuvwxyz0123456789",
      "\u0000\u0001\u001f\u007f\u0085\u200e\u202e\u2066/\\.%_\"'\n\t ",
      "🦈ßé中文\ud800\udfff\ufffd",
    ];
    let text = "";
    const length = this.int(maxLength + 1);
    for (let i = 0; i < length; i++) {
      const alphabet = this.pick(alphabets);
      text += alphabet[this.int(alphabet.length)];
    }
    return text;
  }
}

const WEIRD_NUMBERS = [
  0,
  -1,
  1,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  1e-300,
  65535,
  65536,
];

/** Any JSON value, nested up to `depth`. */
function randomJson(dice: Dice, depth = 3): unknown {
  switch (dice.int(depth > 0 ? 8 : 6)) {
    case 0:
      return null;
    case 1:
      return dice.chance(0.5);
    case 2:
      return dice.pick(WEIRD_NUMBERS);
    case 3:
      return dice.next() * 1e6 - 5e5;
    case 4:
    case 5:
      return dice.string(dice.chance(0.05) ? 5000 : 40);
    case 6:
      return Array.from({ length: dice.int(5) }, () => randomJson(dice, depth - 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = dice.int(5); i > 0; i--) {
        const key = dice.chance(0.2)
          ? dice.pick(["__proto__", "constructor", "prototype", "toString", "id", "type", "params"])
          : dice.string(12);
        object[key] = randomJson(dice, depth - 1);
      }
      return object;
    }
  }
}

/** A copy of a message with a few of its values replaced, removed or added. */
function mutate(dice: Dice, value: unknown): unknown {
  if (dice.chance(0.15)) return randomJson(dice);
  if (Array.isArray(value)) return value.map((item) => mutate(dice, item));
  if (value !== null && typeof value === "object") {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (dice.chance(0.1)) continue;
      copy[key] = mutate(dice, item);
    }
    if (dice.chance(0.1)) copy[dice.string(10)] = randomJson(dice);
    return copy;
  }
  return value;
}

const encoder = new TextEncoder();

/** A frame header announcing `length`, whatever follows it. */
function header(length: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

/** A correctly framed body of arbitrary bytes. */
function framed(body: Uint8Array): Uint8Array {
  return concat(header(body.length), body);
}

type Template = { type: string; params?: unknown };

/**
 * One payload: the bytes of one fuzzed frame, and whether it leaves the
 * stream framed correctly (the server keeps the connection for those).
 */
function payload(dice: Dice, templates: Template[], id: number): Uint8Array {
  const template = dice.pick(templates);
  const real = { id, ...template };
  const realBytes = encodeFrame(real);
  // Most payloads keep the framing intact, so the connection lives on to take more.
  switch (dice.int(dice.chance(0.9) ? 7 : 16)) {
    case 0:
      return realBytes;
    case 1:
      return encodeFrame(mutate(dice, real));
    case 2: // Wrong JSON types: not even an object.
      return encodeFrame(
        dice.pick([[], [real], 42, null, "hello", true, { id: "1", type: 5, params: [] }]),
      );
    case 3: // An unknown type.
      return encodeFrame({ id, type: dice.string(70), params: randomJson(dice) });
    case 4: // A huge, negative or fractional id.
      return encodeFrame({ ...real, id: dice.pick(WEIRD_NUMBERS) });
    case 5: // Missing or wrongly typed params.
      return encodeFrame(
        dice.chance(0.5)
          ? { id, type: template.type }
          : { id, type: template.type, params: dice.pick([null, [], 7, "x", [{}]]) },
      );
    case 6: // Nested garbage as params.
      return encodeFrame({ id, type: template.type, params: randomJson(dice, 6) });
    // From here on the framing itself is broken: the server closes the connection.
    case 7: // A valid prefix of a real frame.
      return realBytes.subarray(0, dice.int(realBytes.length));
    case 8: // A length longer than the body: the next payloads are read as its rest.
      return concat(header(realBytes.length - 4 + 1 + dice.int(200)), realBytes.subarray(4));
    case 9: // A length shorter than the body.
      return concat(header(dice.int(realBytes.length - 4)), realBytes.subarray(4));
    case 10: { // Truncated JSON, framed to its truncated length.
      const json = JSON.stringify(real);
      return framed(encoder.encode(json.slice(0, dice.int(json.length))));
    }
    case 11: // Raw random bytes.
      return dice.bytes(1 + dice.int(dice.chance(0.1) ? 70_000 : 300));
    case 12: // A length far over the limit.
      return concat(header(dice.pick([0xffffffff, 0x00100001, 0x7fffffff])), dice.bytes(8));
    case 13: // Not UTF-8.
      return framed(
        concat(encoder.encode('{"id":1,"type":"'), dice.bytes(10), encoder.encode('"}')),
      );
    case 14: // An empty body, or deeply nested arrays.
      return dice.chance(0.5)
        ? header(0)
        : framed(encoder.encode("[".repeat(20_000) + "]".repeat(20_000)));
    default: // A frame split across writes is fine; a header cut short is not.
      return header(realBytes.length).subarray(0, 1 + dice.int(3));
  }
}

/** What one fuzz run against one server did. */
interface Tally {
  connections: number;
  payloads: number;
  replyBytes: number;
  /** How many replies carried each error code, and `ok` the successes. */
  replies: Map<string, number>;
}

const decoder = new TextDecoder();

/** Counts the replies in the bytes one connection received, by their error code. */
function countReplies(received: Uint8Array[], tally: Tally): void {
  const text = received.map((bytes) => decoder.decode(bytes, { stream: true })).join("");
  for (const [, code] of text.matchAll(/"ok":(?:true|false,"error":\{"code":"([A-Z_]+)")/g)) {
    tally.replies.set(code ?? "ok", (tally.replies.get(code ?? "ok") ?? 0) + 1);
  }
}

/** Writes all of `bytes`, or returns false once the server has closed. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    for (let offset = 0; offset < bytes.length;) {
      offset += await conn.write(bytes.subarray(offset));
    }
    return true;
  } catch {
    return false;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** One fuzz connection: its opening, its payloads, a short wait for replies, then close. */
async function fuzzConnection(
  port: number,
  certificate: string,
  dice: Dice,
  templates: Template[],
  opening: Uint8Array[],
  tally: Tally,
): Promise<void> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  // A few connections skip TLS and send garbage where the handshake should be.
  if (dice.chance(0.03)) {
    await writeAll(tcp, dice.bytes(1 + dice.int(2000)));
    tally.payloads++;
    closeQuietly(tcp);
    return;
  }
  const conn = await Deno.startTls(tcp, { hostname: TLS_SERVER_NAME, caCerts: [certificate] });
  const deadline = setTimeout(() => closeQuietly(conn), CONNECTION_DEADLINE_MS);
  // Replies are read and dropped as they come, so the server never blocks on us.
  const received: Uint8Array[] = [];
  const drained = (async () => {
    const buffer = new Uint8Array(65536);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) return;
        tally.replyBytes += n;
        received.push(buffer.slice(0, n));
      }
    } catch {
      // Closed by either side.
    } finally {
      countReplies(received, tally);
    }
  })();
  try {
    tally.connections++;
    let id = dice.int(100);
    for (const bytes of opening) {
      if (!await writeAll(conn, bytes)) return;
    }
    for (let i = 0; i < PAYLOADS_PER_CONNECTION; i++) {
      if (!await writeAll(conn, payload(dice, templates, id++))) return;
      tally.payloads++;
    }
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, LINGER_MS))]);
  } finally {
    clearTimeout(deadline);
    closeQuietly(conn);
    await drained;
  }
}

/** Fuzzes one server over many connections, a few at a time, within a time budget. */
async function fuzzServer(
  name: string,
  port: number,
  certificate: string,
  seed: number,
  templates: Template[],
  openings: (dice: Dice) => Uint8Array[],
): Promise<Tally> {
  const tally: Tally = { connections: 0, payloads: 0, replyBytes: 0, replies: new Map() };
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (
      tally.payloads < PAYLOADS_PER_SERVER && next < MAX_CONNECTIONS_PER_SERVER &&
      Date.now() - started < SERVER_BUDGET_MS
    ) {
      // Each connection draws from its own stream, so concurrency does not change its frames.
      const dice = new Dice(seed ^ Math.imul(next++ + 1, 0x9e3779b1));
      await fuzzConnection(port, certificate, dice, templates, openings(dice), tally);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  console.log(
    `fuzzed the ${name}: ${tally.payloads} payloads over ${tally.connections} TLS connections ` +
      `in ${Date.now() - started} ms; replies: ${
        [...tally.replies].sort().map(([code, n]) => `${code} ${n}`).join(", ")
      }`,
  );
  // An INTERNAL reply means some input reached a handler it crashed.
  assert.equal(tally.replies.get("INTERNAL"), undefined, `the ${name} answered INTERNAL`);
  return tally;
}

/** How a fuzz connection starts: mostly a proper hello, sometimes not. */
function hellos(dice: Dice): Uint8Array[] {
  const hello = { id: 0, type: "hello", params: { protocol: PROTOCOL_VERSION, agent: AGENT } };
  switch (dice.int(20)) {
    case 0:
      return [];
    case 1:
      return [encodeFrame({ ...hello, params: { protocol: PROTOCOL_VERSION + 1, agent: AGENT } })];
    case 2:
      return [encodeFrame(mutate(dice, hello))];
    default:
      return [encodeFrame(hello)];
  }
}

/** Fails if the daemon has exited. */
async function assertRunning(daemon: Daemon, name: string): Promise<void> {
  const exited = await Promise.race([
    daemon.status.then((status) => status),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 50)),
  ]);
  assert.equal(exited, null, `the ${name} exited: ${JSON.stringify(exited)}`);
}

Deno.test("fuzz - thousands of random and mutated frames leave the tracker and a peer serving", async () => {
  const seed = Number(
    Deno.env.get("SHOAL_FUZZ_SEED") ?? crypto.getRandomValues(new Uint32Array(1))[0],
  );
  console.log(`fuzz seed ${seed} (replay with SHOAL_FUZZ_SEED=${seed})`);
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  const tracker = await startTracker({ db });
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
  const source = join(dir.path, "fuzz-target.bin");
  await writeRandomFile(source, 300_000);
  let serving: Daemon | null = null;
  try {
    await alice.signUp("alice");
    await bob.signUp("bob");
    await alice.ok(["publish", source]);
    serving = await new TestPeer(alice.home, tracker.address).serve();
    const peerPort = Number((await serving.waitFor(/serving on \S+:(\d+)/))[1]);
    const trackerCertificate = await Deno.readTextFile(`${db}.tls-cert.pem`);
    const peerCertificate = await Deno.readTextFile(join(alice.home, "tls-cert.pem"));

    // A session for the fuzzer, so some connections reach the handlers behind login.
    const trackerAddress = { host: tracker.host, port: tracker.port };
    using account = await ProtocolClient.connect(trackerAddress, TRACKER_METHODS, {
      agent: AGENT,
      tls: { certificate: trackerCertificate, whose: "the test tracker" },
    });
    await account.call("register", { username: "fuzzer", password: "fuzzer-password" });
    const { token } = await account.call("login", {
      username: "fuzzer",
      password: "fuzzer-password",
    });
    const { files } = await account.call("lookup", { name: "fuzz-target.bin" });
    const contentId = files[0].contentId;
    const certificate = peerCertificate;
    // A real ticket, so some requests reach the peer's catalog and its piece reads.
    const { ticket } = await account.call("sources", { contentId });

    // Every tracker request except those ending the fuzzer's own session.
    const trackerTemplates: Template[] = [
      { type: "hello", params: { protocol: PROTOCOL_VERSION, agent: AGENT } },
      { type: "register", params: { username: "fz-new", password: "long-enough-1" } },
      { type: "login", params: { username: "fuzzer", password: "wrong-password" } },
      { type: "resume", params: { token } },
      { type: "announce", params: { port: 9, host: "127.0.0.1", instance: "fuzzfuzz" } },
      { type: "announce", params: { port: 9, certificate } },
      { type: "heartbeat", params: {} },
      { type: "sessions", params: {} },
      // No session has this id: revoking it can never end the fuzzer's own.
      { type: "revoke", params: { id: "0123456789abcdef" } },
      { type: "publish", params: { name: "plan", type: "", size: 3, contentId } },
      { type: "unpublish", params: { name: "plan" } },
      { type: "lookup", params: { name: "fuzz-target.bin" } },
      { type: "search", params: { text: "fuzz" } },
      { type: "sources", params: { contentId } },
      { type: "downloading", params: { contentId: "ab".repeat(32), port: 9 } },
    ];
    const trackerOpenings = (dice: Dice) => {
      const opening = hellos(dice);
      if (opening.length > 0 && dice.chance(0.4)) {
        opening.push(encodeFrame({ id: 1, type: "resume", params: { token } }));
      }
      return opening;
    };
    await fuzzServer(
      "tracker",
      tracker.port,
      trackerCertificate,
      seed,
      trackerTemplates,
      trackerOpenings,
    );
    await assertRunning(tracker.daemon, "tracker");

    const peerTemplates: Template[] = [
      { type: "hello", params: { protocol: PROTOCOL_VERSION, agent: AGENT } },
      { type: "ping", params: {} },
      { type: "manifest", params: { contentId } },
      { type: "have", params: { contentId, ticket: "x.y" } },
      { type: "piece", params: { contentId, index: 0 } },
      { type: "piece", params: { contentId, index: 0, ticket: `${token}.${token}` } },
      { type: "manifest", params: { contentId, ticket } },
      { type: "piece", params: { contentId, index: 1, ticket } },
    ];
    await fuzzServer("peer", peerPort, peerCertificate, seed, peerTemplates, hellos);
    await assertRunning(serving, "serving peer");
    await assertRunning(tracker.daemon, "tracker");

    // Both still answer real requests: hello and ping directly, then a real search and fetch.
    using peer = await ProtocolClient.connect({ host: "127.0.0.1", port: peerPort }, PEER_METHODS, {
      agent: AGENT,
      tls: { certificate: peerCertificate, whose: "alice" },
    });
    assert.equal((await peer.call("ping", {})).username, "alice");
    const found = JSON.parse(await bob.ok(["search", "fuzz-target", "--json"]));
    assert.deepEqual(found.map((f: { name: string; owner: string }) => [f.name, f.owner]), [
      ["fuzz-target.bin", "alice"],
    ]);
    const output = join(dir.path, "fetched.bin");
    await bob.ok(["fetch", "fuzz-target.bin", "--output", output]);
    assert.equal(await sha256File(output), await sha256File(source));
    await assertRunning(serving, "serving peer");
    await assertRunning(tracker.daemon, "tracker");
  } finally {
    await serving?.stop();
    await tracker.daemon.stop();
  }
});
