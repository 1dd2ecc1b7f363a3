/**
 * Shares fetched while the tracker was unreachable: the home keeps them
 * pending, and the next connection with a session (`serve`, or any command)
 * publishes them.
 */
import { formatAddress } from "../protocol/address.ts";
import { toShoalError } from "../protocol/errors.ts";
import type { PeerHome } from "./home.ts";
import type { TrackerClient, TrackerEndpoint } from "./tracker_link.ts";

const TRY_AGAIN_LATER = new Set([
  "UNREACHABLE",
  "TIMEOUT",
  "AUTH_REQUIRED",
  "BUSY",
  "STORE_UNAVAILABLE",
]);

/**
 * Whether a publish that failed with `code` may succeed on a later
 * connection (the tracker away, busy, or wanting a new login): then the share
 * waits as pending instead of being given up.
 */
export function publishCanWait(code: string): boolean {
  return TRY_AGAIN_LATER.has(code);
}

/**
 * Publishes the shares pending for this tracker, on a connection that has a
 * session, and says so through `notice`. A share removed or replaced since
 * is forgotten; one the tracker refuses is forgotten with a notice; when the
 * tracker goes away again the rest wait for the next time. Never throws.
 *
 * @example
 * ```ts
 * await publishPending(home, endpoint, client);
 * ```
 */
export async function publishPending(
  home: PeerHome,
  endpoint: TrackerEndpoint,
  client: TrackerClient,
): Promise<void> {
  // Kept under the address the tracker was named by then; any of its addresses is the tracker.
  for (const address of endpoint.addresses) {
    if (!await publishPendingAt(home, formatAddress(address), endpoint, client)) return;
  }
}

/** Publishes what is pending under `tracker`; false when the tracker went away meanwhile. */
async function publishPendingAt(
  home: PeerHome,
  tracker: string,
  endpoint: TrackerEndpoint,
  client: TrackerClient,
): Promise<boolean> {
  try {
    for (const { name, contentId } of home.pendingPublishes(tracker)) {
      const share = home.share(name);
      if (!share || share.contentId !== contentId) {
        home.removePendingPublish(tracker, name);
        continue;
      }
      try {
        await client.call("publish", { name, type: share.type, size: share.size, contentId });
      } catch (caught) {
        const error = toShoalError(caught);
        if (publishCanWait(error.code)) return false;
        home.removePendingPublish(tracker, name);
        endpoint.notice(`the tracker at ${tracker} refused to publish "${name}": ${error.message}`);
        continue;
      }
      home.removePendingPublish(tracker, name);
      endpoint.notice(
        `published "${name}" at the tracker ${tracker} (fetched while it was unreachable)`,
      );
    }
    return true;
  } catch {
    // The home is busy or closing: what is left waits for the next connection.
    return false;
  }
}
