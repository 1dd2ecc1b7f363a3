/**
 * Getting a content's manifest from its sources. Any account can publish
 * any content id, so a source may be hostile: it may answer with another
 * manifest, or drip the right one a byte at a time. Several sources are
 * asked at once, each within a deadline, and the first manifest that
 * matches the content id wins.
 */
import { parseAddress } from "../protocol/address.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { type Manifest, PEER_METHODS, type Source } from "../protocol/messages.ts";
import { verifyManifest } from "./manifest.ts";
import type { SourceList } from "./swarm.ts";
import { PEER_AGENT } from "./tracker_link.ts";

/** Options of {@link fetchManifest}. */
export interface ManifestFetchOptions {
  /** True with --insecure-plaintext; otherwise only TLS sources the tracker vouched for. */
  plaintext: boolean;
  /** Sources asked at once; another is asked as soon as one fails. @default {4} */
  concurrency?: number;
  /**
   * Time allowed to one source for the manifest once connected (a manifest is
   * at most one 1 MiB frame), in milliseconds; connecting and `hello` have
   * deadlines of their own.
   * @default {30000}
   */
  deadlineMs?: number;
  /** Connecting (and `hello`) to one source, in milliseconds. @default {15000} */
  connectTimeoutMs?: number;
}

/** A manifest that matches its content id, and the source that gave it. */
export interface FetchedManifest {
  manifest: Manifest;
  source: Source;
}

/**
 * Asks up to `concurrency` sources at once for the manifest of `contentId`,
 * and returns the first that matches it; the other requests are dropped.
 * Fails with UNREACHABLE, naming every source and what went wrong with it,
 * when none gives a matching manifest.
 *
 * @example
 * ```ts
 * const { manifest, source } = await fetchManifest(contentId, list, { plaintext: false });
 * ```
 */
export function fetchManifest(
  contentId: string,
  { sources, ticket }: SourceList,
  options: ManifestFetchOptions,
): Promise<FetchedManifest> {
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const open = new Set<ProtocolClient<typeof PEER_METHODS>>();
  const problems: string[] = [];
  const result = Promise.withResolvers<FetchedManifest>();
  let next = 0;
  let running = 0;
  let done = false;

  const ask = async (source: Source): Promise<Manifest> => {
    if (!options.plaintext && !source.certificate) {
      throw new ShoalError("CERTIFICATE_MISMATCH", "no TLS certificate vouched for by the tracker");
    }
    const peer = await ProtocolClient.connect(parseAddress(source.address), PEER_METHODS, {
      expect: "peer",
      agent: PEER_AGENT,
      timeoutMs: options.connectTimeoutMs,
      tls: options.plaintext || !source.certificate
        ? undefined
        : { certificate: source.certificate, whose: "the one the tracker vouched for" },
    });
    if (done) {
      peer.close();
      throw new ShoalError("CANCELLED", "another source answered first");
    }
    open.add(peer);
    try {
      const { manifest } = await peer.call("manifest", { contentId, ticket }, {
        deadlineMs: options.deadlineMs ?? 30_000,
      });
      verifyManifest(manifest, contentId);
      return manifest;
    } finally {
      open.delete(peer);
      peer.close();
    }
  };

  const finish = (outcome: () => void) => {
    if (done) return;
    done = true;
    // Closing fails the requests still out; their outcome no longer matters.
    for (const peer of open) peer.close();
    outcome();
  };

  const launch = () => {
    while (!done && running < concurrency && next < sources.length) {
      const source = sources[next++];
      running++;
      ask(source).then(
        (manifest) => finish(() => result.resolve({ manifest, source })),
        (error) => problems.push(`${source.owner}: ${toShoalError(error).message}`),
      ).finally(() => {
        running--;
        launch();
      });
    }
    if (!done && running === 0) {
      finish(() =>
        result.reject(
          new ShoalError(
            "UNREACHABLE",
            problems.length
              ? `no source gave the manifest (${problems.join("; ")})`
              : "no source is online",
          ),
        )
      );
    }
  };
  launch();
  return result.promise;
}
