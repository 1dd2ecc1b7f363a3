/**
 * Connecting to a source the tracker listed: the one way a file's swarm and a
 * folder download both reach a peer.
 */
import { parseAddress } from "../protocol/address.ts";
import type { BufferPool } from "../protocol/buffer_pool.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { PEER_METHODS, type Source } from "../protocol/messages.ts";
import { PEER_AGENT } from "./tracker_link.ts";

/** Options of {@link connectSource}. */
export interface SourceConnectionOptions {
  /** True with --insecure-plaintext; otherwise only TLS with the certificate the tracker vouched for. */
  plaintext: boolean;
  /** Piece bodies arrive in these buffers. */
  bodyPool: BufferPool;
  /** Paces the reading of piece bodies (a download rate limit). */
  pace?: (bytes: number) => Promise<void>;
  /** The connection's request timeout; the client's own default when absent. */
  timeoutMs?: number;
}

/**
 * Connects to `source` as a peer. Fails with a ShoalError whose message is
 * the reason to drop the source: it has no certificate the tracker vouched
 * for (unless plaintext), or it is unreachable. A source that cannot be tried
 * (no certificate, a malformed address) throws at once, before anything is
 * awaited, so a caller drops it in the same turn.
 */
export function connectSource(
  source: Source,
  options: SourceConnectionOptions,
): Promise<ProtocolClient<typeof PEER_METHODS>> {
  const { certificate } = source;
  if (!options.plaintext && !certificate) {
    throw new ShoalError(
      "UNREACHABLE",
      "no TLS certificate vouched for by the tracker (a plaintext peer?)",
    );
  }
  let address;
  try {
    address = parseAddress(source.address);
  } catch (error) {
    throw unreachable(error);
  }
  return ProtocolClient.connect(address, PEER_METHODS, {
    expect: "peer",
    agent: PEER_AGENT,
    timeoutMs: options.timeoutMs,
    bodyPool: options.bodyPool,
    pace: options.pace,
    tls: options.plaintext || !certificate
      ? undefined
      : { certificate, whose: "the one the tracker vouched for" },
  }).catch((error) => {
    throw unreachable(error);
  });
}

function unreachable(error: unknown): ShoalError {
  const failure = toShoalError(error);
  return new ShoalError(failure.code, `unreachable: ${failure.message}`);
}

/**
 * A download's wait in a source's queue for an upload slot (the source
 * answered QUEUED): its place while waiting (Infinity until told; 1 is
 * next), else null; the first place it was told; and how long it waited.
 */
export interface QueueWait {
  queuedPlace: number | null;
  firstPlace: number | null;
  /** When the current wait began, and how long the earlier waits took (ms). */
  queuedSince: number;
  queuedMs: number;
}

/** A source that has never been queued. */
export function notWaiting(): QueueWait {
  return { queuedPlace: null, firstPlace: null, queuedSince: 0, queuedMs: 0 };
}

/**
 * What a download's report says of its waits in a source's queue: the first
 * place it was told and the seconds it waited in all (a wait still under way
 * included); null if it was never queued there.
 */
export function queueReport(wait: QueueWait): { place: number; seconds: number } | null {
  if (wait.firstPlace === null) return null;
  const waiting = wait.queuedPlace === null ? 0 : performance.now() - wait.queuedSince;
  return { place: wait.firstPlace, seconds: (wait.queuedMs + waiting) / 1000 };
}

/** Starts a wait in the source's queue; false when one is already under way. */
export function startWaiting(wait: QueueWait): boolean {
  if (wait.queuedPlace !== null) return false;
  wait.queuedPlace = Infinity;
  wait.queuedSince = performance.now();
  return true;
}

/**
 * Asks the source our place in its queue (which keeps us in it) and notes
 * it: place 0 ends the wait (`queuedPlace` null again). Resolves to how long
 * the source asks us to wait before asking again (ms); fails as the call does
 * (BUSY: its queue is full).
 */
export async function askQueuePlace(
  client: ProtocolClient<typeof PEER_METHODS>,
  wait: QueueWait,
  ask: { contentId: string; ticket: string },
  deadlineMs: number,
): Promise<number> {
  const reply = await client.call("queue", ask, { deadlineMs });
  if (reply.place === 0) {
    wait.queuedMs += performance.now() - wait.queuedSince;
    wait.queuedPlace = null;
  } else {
    wait.firstPlace ??= reply.place;
    wait.queuedPlace = reply.place;
  }
  return reply.retryMs;
}
