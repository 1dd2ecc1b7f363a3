/**
 * Upload rate limits (issue 17): how close a piece server held to
 * `--max-upload-rate` gets to the limit, at 1, 10 and 100 MB/s, and how a
 * few downloaders on one source with upload slots share it (all finish,
 * Jain's fairness index of their rates, and no one waits longer than its
 * queue place implies). In process, over loopback, plaintext: the limit is
 * the only bottleneck.
 */
import { Bitfield } from "../lib/peer/bitfield.ts";
import type { Catalog } from "../lib/peer/catalog.ts";
import { PieceServer } from "../lib/peer/piece_server.ts";
import { RateLimiter } from "../lib/peer/rate.ts";
import { Swarm } from "../lib/peer/swarm.ts";
import { QUEUE_POLL_MS } from "../lib/peer/upload_slots.ts";
import { PEER_AGENT } from "../lib/peer/tracker_link.ts";
import { parseAddress } from "../lib/protocol/address.ts";
import { ProtocolClient } from "../lib/protocol/client.ts";
import { type Manifest, PEER_METHODS, type Source } from "../lib/protocol/messages.ts";
import { manifestOf, memoryCatalog } from "../tests/helpers/catalog.ts";
import { TicketAuthority } from "../tests/helpers/sources.ts";
import { type BenchContext, type Benchmark, type Entry, entry } from "./results.ts";

const MB = 1_000_000;
const MIB = 1024 * 1024;
const PIECE_SIZE = 256 * 1024;

/** Random-looking bytes, cheaply (what they are does not matter, only that they verify). */
function content(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  crypto.getRandomValues(bytes.subarray(0, Math.min(size, 65536)));
  for (let at = 65536; at < size; at += 65536) bytes.copyWithin(at, 0, Math.min(65536, size - at));
  // Each piece distinct, so no two pieces share a hash by accident of the copy.
  for (let at = 0; at < size; at += PIECE_SIZE) new DataView(bytes.buffer).setUint32(at, at);
  return bytes;
}

/** A plaintext piece server for `catalog` on loopback, and the source and ticket to reach it. */
async function startSource(
  catalog: Catalog,
  contentId: string,
  options: ConstructorParameters<typeof PieceServer>[1],
) {
  const authority = await TicketAuthority.create();
  const server = new PieceServer(catalog, options);
  await server.trustTicketKey(authority.publicKey);
  const { host, port } = await server.listen({ host: "127.0.0.1", port: 0 });
  const source: Source = {
    owner: "alice",
    address: `${host}:${port}`,
    partial: false,
    certificate: null,
  };
  return { server, source, authority, ticket: await authority.ticket(contentId) };
}

/**
 * Bytes a second one downloader gets from a source limited to `limit`, over
 * about `seconds`: whole pieces, eight requests in flight, from the first
 * request to the last byte.
 */
async function measureLimit(limit: number, seconds: number): Promise<number> {
  const bytes = content(16 * MIB);
  const { manifest, contentId } = manifestOf(bytes, PIECE_SIZE);
  const { server, source, ticket } = await startSource(
    memoryCatalog(bytes, PIECE_SIZE),
    contentId,
    {
      username: () => "alice",
      warn: () => {},
      uploadLimiter: new RateLimiter({ bytesPerSecond: limit }),
    },
  );
  const client = await ProtocolClient.connect(parseAddress(source.address), PEER_METHODS, {
    expect: "peer",
    agent: PEER_AGENT,
    timeoutMs: 60_000,
  });
  try {
    const pieces = Math.max(8, Math.round(limit * seconds / PIECE_SIZE));
    const count = manifest.pieces.length;
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < pieces) {
        const index = next++ % count;
        await client.callWithBody("piece", { contentId, index, ticket }, PIECE_SIZE, {
          deadlineMs: 600_000,
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return pieces * PIECE_SIZE / ((performance.now() - started) / 1000);
  } finally {
    client.close();
    await server.close();
  }
}

/** Jain's fairness index of `rates`: 1 when all are equal, 1/n when one gets everything. */
export function jainIndex(rates: number[]): number {
  const sum = rates.reduce((a, b) => a + b, 0);
  const squares = rates.reduce((a, b) => a + b * b, 0);
  return sum * sum / (rates.length * squares);
}

interface Downloader {
  /** Seconds from the start of all downloads. */
  finishedAt: number;
  /** Seconds spent waiting in the source's queue, and the first place it was told. */
  waited: number;
  place: number | null;
  /** Bytes a second while it held a slot. */
  servedRate: number;
}

/** Downloads of one content by `crowd` swarms at once from one source with `slots` slots. */
async function shareSlots(
  crowd: number,
  slots: number,
  size: number,
  limit: number,
): Promise<Downloader[]> {
  const bytes = content(size);
  const { manifest, contentId } = manifestOf(bytes, PIECE_SIZE);
  const { server, source, authority } = await startSource(
    memoryCatalog(bytes, PIECE_SIZE),
    contentId,
    {
      username: () => "alice",
      warn: () => {},
      uploadSlots: slots,
      uploadLimiter: new RateLimiter({ bytesPerSecond: limit }),
    },
  );
  try {
    // Eight downloaders are eight users: the slots bound each user to half of them and four
    // places in line, so one user's eight downloads would be turned away (BUSY).
    const lists = await Promise.all(
      Array.from({ length: crowd }, async (_, i) => ({
        sources: [source],
        ticket: await authority.ticketFor(`user${i + 1}`, contentId),
      })),
    );
    const started = performance.now();
    return await Promise.all(lists.map(async (list) => {
      const report = await download(manifest, contentId, list);
      const finishedAt = (performance.now() - started) / 1000;
      const queued = report.sources[0]?.queued ?? null;
      const waited = queued?.seconds ?? 0;
      return {
        finishedAt,
        waited,
        place: queued?.place ?? null,
        servedRate: size / (finishedAt - waited),
      };
    }));
  } finally {
    await server.close();
  }
}

function download(
  manifest: Manifest,
  contentId: string,
  list: { sources: Source[]; ticket: string },
) {
  return new Swarm({
    contentId,
    manifest,
    have: new Bitfield(manifest.pieces.length),
    plaintext: true,
    findSources: () => Promise.resolve(list),
    store: () => Promise.resolve(),
  }).run(list);
}

/**
 * How much longer than its place implies each queued downloader waited:
 * place p should be served once p downloaders have finished (each finish
 * frees a slot), plus one poll of the queue and a margin. Returns the worst
 * excess in seconds (0 when none waited too long).
 */
export function worstExcessWait(downloaders: Downloader[], slackSeconds: number): number {
  const finishes = downloaders.map((d) => d.finishedAt).toSorted((a, b) => a - b);
  let worst = 0;
  for (const d of downloaders) {
    if (d.place === null) continue;
    const due = finishes[d.place - 1] + slackSeconds;
    worst = Math.max(worst, d.waited - due);
  }
  return worst;
}

async function rateLimits({ quick, log }: BenchContext): Promise<Entry[]> {
  const entries: Entry[] = [];
  const seconds = quick ? 2 : 10;
  for (const limit of [1 * MB, 10 * MB, 100 * MB]) {
    const measured = await measureLimit(limit, seconds);
    log(
      `  limit ${limit / MB} MB/s: measured ${(measured / MB).toFixed(2)} MB/s over ~${seconds} s`,
    );
    entries.push(
      entry(`upload limit ${limit / MB} MB/s`, measured / MB, "MB/s", {
        baseline: limit / MB,
        target: { on: "ratio", min: 0.9, max: 1.1 },
        note: `one downloader, 8 requests in flight, ~${seconds} s, loopback`,
      }),
    );
  }

  const crowd = 8;
  const slots = 4;
  const size = quick ? 8 * MIB : 32 * MIB;
  const limit = quick ? 20 * MB : 40 * MB;
  const downloaders = await shareSlots(crowd, slots, size, limit);
  const fairness = jainIndex(downloaders.map((d) => d.servedRate));
  const overall = jainIndex(downloaders.map((d) => size / d.finishedAt));
  const slack = (QUEUE_POLL_MS + 500) / 1000;
  const excess = worstExcessWait(downloaders, slack);
  const queued = downloaders.filter((d) => d.place !== null);
  log(
    `  ${crowd} downloaders, ${slots} slots, ${size / MIB} MiB at ${
      limit / MB
    } MB/s: all done in ` +
      `${
        Math.max(...downloaders.map((d) => d.finishedAt)).toFixed(2)
      } s; ${queued.length} queued ` +
      `(places ${queued.map((d) => d.place).join(", ")}, waits ${
        queued.map((d) => d.waited.toFixed(2)).join(", ")
      } s); Jain's index of served rates ${fairness.toFixed(3)}; worst wait beyond its place ${
        excess.toFixed(2)
      } s`,
  );
  entries.push(
    entry(`fairness: ${crowd} downloaders, ${slots} slots (Jain's index)`, fairness, "index", {
      target: { on: "value", min: 0.9 },
      note: "rates while holding a slot; all finished",
    }),
    entry(`fairness: Jain's index of whole-download rates`, overall, "index", {
      note: `waits included: with ${crowd} on ${slots} slots, half wait one turn (0.9 at best)`,
    }),
    entry(`fairness: longest wait beyond the queue place`, excess, "s", {
      target: { on: "value", max: 0.001 },
      note: `place p is due when p downloaders have finished, plus ${slack} s (a queue poll)`,
    }),
  );
  return entries;
}

export const rateLimitBenchmark: Benchmark = {
  name: "rate-limit",
  description: "upload limit accuracy at 1, 10, 100 MB/s; fairness of 8 downloaders on 4 slots",
  run: rateLimits,
};
