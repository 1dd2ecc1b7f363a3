/**
 * State the benchmarks put in place before a tracker starts, straight into
 * its database and the peers' homes through the same stores the programs
 * use: accounts with sessions, and published files. Setting up many peers
 * through `register`, `login` and `publish` would measure process start-up
 * and scrypt, not what a benchmark is about.
 */
import { createHash, randomBytes } from "node:crypto";
import { PeerHome, type Share } from "../lib/peer/home.ts";
import { describeFile } from "../lib/peer/shares.ts";
import { hashPassword } from "../lib/tracker/passwords.ts";
import { SqliteTrackerStore } from "../lib/tracker/sqlite_store.ts";

/**
 * Creates accounts with a logged-in session each, straight in the tracker's
 * database and the peers' homes, before the tracker starts: the same state
 * `register` and `login` leave, without two processes and two scrypt hashes
 * per peer. Returns the session tokens, in order.
 */
export async function seedAccounts(
  trackerDb: string,
  accounts: { username: string; home?: string }[],
): Promise<string[]> {
  // One hash for every account: the benchmarks never log in with a password.
  const passwordHash = await hashPassword("bench-password");
  using store = SqliteTrackerStore.open(trackerDb);
  const tokens: string[] = [];
  for (const { username, home } of accounts) {
    const token = randomBytes(24).toString("base64url");
    await store.createUser(username, passwordHash);
    await store.createSession(createHash("sha256").update(token).digest("hex"), username);
    if (home) {
      using peerHome = PeerHome.open(home);
      peerHome.saveSession({ username, token });
    }
    tokens.push(token);
  }
  return tokens;
}

/**
 * Publishes files straight into the tracker's database and the owners'
 * homes, before the tracker starts: what `peer.ts publish` leaves, without a
 * process per file. Each file is hashed once, however many owners share it.
 */
export async function seedShares(
  trackerDb: string,
  shares: { owner: string; home: string; name: string; path: string }[],
): Promise<void> {
  const described = new Map<string, Share>();
  using store = SqliteTrackerStore.open(trackerDb);
  for (const { owner, home, name, path } of shares) {
    let share = described.get(`${name}\0${path}`);
    if (!share) {
      share = await describeFile(name, path);
      described.set(`${name}\0${path}`, share);
    }
    const { type, size, contentId, publishedAt } = share;
    await store.publish({ owner, name, type, size, contentId, publishedAt });
    using peerHome = PeerHome.open(home);
    peerHome.addShare(share);
  }
}
