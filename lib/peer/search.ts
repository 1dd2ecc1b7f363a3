/** Finding files across the network by name. */
import type { Listing } from "../protocol/messages.ts";
import type { PeerHome } from "./home.ts";
import { type TrackerEndpoint, withSession } from "./tracker_link.ts";

/**
 * The files whose names contain `text`, as many as the tracker's reply
 * carries, and how many match in all.
 */
export function search(
  home: PeerHome,
  tracker: TrackerEndpoint,
  text: string,
): Promise<{ files: Listing[]; total: number }> {
  return withSession(home, tracker, (client) => client.call("search", { text }));
}
