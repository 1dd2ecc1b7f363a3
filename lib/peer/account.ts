import type { PeerHome } from "./home.ts";
import { connectTracker, type TrackerEndpoint, withSession } from "./tracker_link.ts";

/** Creates an account; the password is hashed by the tracker, never stored here. */
export async function register(
  home: PeerHome,
  tracker: TrackerEndpoint,
  username: string,
  password: string,
) {
  using client = await connectTracker(home, tracker);
  await client.call("register", { username, password });
}

/**
 * Logs in and keeps the session token in the home for later commands;
 * returns the username as registered.
 */
export async function login(
  home: PeerHome,
  tracker: TrackerEndpoint,
  name: string,
  password: string,
  options: {
    /**
     * Called once the new login succeeded, before the session it replaces is
     * revoked: the shell stops serving under that session there, or its
     * connection would be dropped and said as a lost tracker.
     */
    beforeRevoke?: () => Promise<void>;
  } = {},
): Promise<string> {
  using client = await connectTracker(home, tracker);
  const { token, username } = await client.call("login", { username: name, password });
  const previous = home.session();
  if (previous) {
    await options.beforeRevoke?.();
    // The session this one replaces is revoked, so it cannot linger on the tracker.
    await client.call("resume", { token: previous.token })
      .then(() => client.call("logout", {}))
      .catch(() => {});
    // Shares published under another account are not this one's to serve.
    if (previous.username.toLowerCase() !== username.toLowerCase()) home.clearShares();
  }
  home.saveSession({ username, token });
  return username;
}

/** Revokes the session on the tracker and forgets it here. */
export async function logout(home: PeerHome, tracker: TrackerEndpoint): Promise<string> {
  return await withSession(home, tracker, async (client, username) => {
    await client.call("logout", {});
    home.clearSession();
    return username;
  });
}

/** Deletes the account and its publications, after checking the password again. */
export async function unregister(home: PeerHome, tracker: TrackerEndpoint, password: string) {
  return await withSession(home, tracker, async (client, username) => {
    await client.call("unregister", { password });
    home.clearSession();
    home.clearShares();
    return username;
  });
}

/** One of the user's login sessions, as the tracker lists it. */
export interface SessionInfo {
  id: string;
  created: string;
  lastSeen: string;
  address: string | null;
  /** The session this home uses. */
  current: boolean;
}

/** The user's sessions on the tracker, this home's among them. */
export async function listSessions(
  home: PeerHome,
  tracker: TrackerEndpoint,
): Promise<SessionInfo[]> {
  return await withSession(home, tracker, async (client) => {
    const { sessions } = await client.call("sessions", {});
    return sessions;
  });
}

/**
 * Ends one of the user's sessions (say, on a lost machine). Revoking this
 * home's own session logs out here too; returns whether it was that one.
 */
export async function revokeSession(
  home: PeerHome,
  tracker: TrackerEndpoint,
  id: string,
): Promise<boolean> {
  return await withSession(home, tracker, async (client) => {
    const { current } = await client.call("revoke", { id });
    if (current) home.clearSession();
    return current;
  });
}
