import type { Address } from "../protocol/address.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError } from "../protocol/errors.ts";
import { TRACKER_METHODS, type TrackerMethods } from "../protocol/messages.ts";
import { SHOAL_VERSION } from "../version.ts";
import type { PeerHome } from "./home.ts";

export type TrackerClient = ProtocolClient<TrackerMethods>;

/** What a peer sends in `hello`. */
export const PEER_AGENT = `shoal-peer/${SHOAL_VERSION}`;

/** Connects to the tracker without logging in (register, login). */
export function connectTracker(address: Address): Promise<TrackerClient> {
  return ProtocolClient.connect(address, TRACKER_METHODS, { agent: PEER_AGENT, expect: "tracker" });
}

/** The error every command but register and login gives without a session. */
export function notLoggedIn(detail = ""): ShoalError {
  return new ShoalError("AUTH_REQUIRED", `not logged in${detail}`);
}

/**
 * Connects and resumes the session stored in the home. A session the tracker
 * no longer knows is forgotten locally, so the next command says so at once.
 */
export async function connectSession(
  home: PeerHome,
  address: Address,
): Promise<{ tracker: TrackerClient; username: string }> {
  const session = home.session();
  if (!session) throw notLoggedIn();
  const tracker = await connectTracker(address);
  try {
    const { username } = await tracker.call("resume", { token: session.token });
    return { tracker, username };
  } catch (error) {
    tracker.close();
    if (error instanceof ShoalError && error.code === "AUTH_REQUIRED") {
      home.clearSession();
      throw notLoggedIn(" (the session has ended)");
    }
    throw error;
  }
}

/**
 * Runs `work` on a tracker connection with the stored session, and closes
 * the connection afterwards, however `work` ends.
 *
 * @example
 * ```ts
 * const files = await withSession(home, tracker, (client) => client.call("search", { text }));
 * ```
 */
export async function withSession<V>(
  home: PeerHome,
  address: Address,
  work: (tracker: TrackerClient, username: string) => Promise<V>,
): Promise<V> {
  const { tracker, username } = await connectSession(home, address);
  try {
    return await work(tracker, username);
  } finally {
    tracker.close();
  }
}
