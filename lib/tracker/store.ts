/**
 * The tracker's persistent state, as the {@link TrackerStore} interface its
 * handlers talk to, and what its two backends share (records, row
 * conversions). The SQL is the backends': sqlite_store.ts (one process per
 * database file) and postgres_store.ts (several processes on one database).
 */
import { ShoalError } from "../protocol/errors.ts";
import type { LoginFailureCount, LoginFailureKey } from "./login_limiter.ts";
import type { RegistrationBucket } from "./register_limiter.ts";

export interface UserRecord {
  username: string;
  passwordHash: string;
  createdAt: string;
}

/** A login session, as its owner may list it. The token itself is never stored. */
export interface SessionRecord {
  /** SHA-256 of the token, hex: the key it is stored under. */
  tokenHash: string;
  username: string;
  createdAt: string;
  /** When the session was last used to log in or resume (kept to within an hour). */
  lastSeen: string;
  /** The address it logged in from, if known. */
  address: string | null;
}

export interface PeerRecord {
  username: string;
  host: string;
  port: number;
  /** The certificate the peer announced; null for a plaintext peer. */
  certificate: string | null;
  online: boolean;
  /** When the peer last came online or went offline. */
  since: string;
}

/** Where a peer serves, and with which TLS certificate (PEM), if any. */
export interface PeerAddress {
  username: string;
  host: string;
  port: number;
  certificate: string | null;
}

export interface FileRecord {
  owner: string;
  name: string;
  type: string;
  size: number;
  contentId: string;
  publishedAt: string;
  /** How many files it holds: a folder's file count (type `folder`), else 1. @default {1} */
  files?: number;
}

/** A published file with its owner's serving state. */
export interface FileListing extends FileRecord {
  online: boolean;
  host: string | null;
  port: number | null;
  certificate: string | null;
}

/** Which rows of a list to return: at most `limit` of them, only `owner`'s if given. */
export interface Page {
  owner?: string;
  limit?: number;
}

/** What one minute saw, as the dashboard's history counts it. */
export interface MinuteActivity {
  /** The minute's start, ISO. */
  time: string;
  publishes: number;
  logins: number;
  loginsFailed: number;
  tickets: number;
}

/** A row of `activity` sums (time, publishes, logins, logins_failed, tickets). */
export function toActivity(row: Row): MinuteActivity {
  return {
    time: String(row.minute),
    publishes: Number(row.publishes),
    logins: Number(row.logins),
    loginsFailed: Number(row.logins_failed),
    tickets: Number(row.tickets),
  };
}

/** Counts for the operator's view (`/metrics`, `/api/v1/summary`). */
export interface TrackerStats {
  accounts: number;
  /** Accounts that have served at some time. */
  peers: number;
  peersOnline: number;
  shares: number;
  /** The sum of the published sizes. */
  bytesPublished: number;
}

/** An account as the operator's view lists it: where it serves, if it has, and how much. */
export interface AccountSummary {
  username: string;
  online: boolean;
  host: string | null;
  port: number | null;
  /** When it last came online or went offline; its creation if it never served. */
  lastSeen: string;
  shares: number;
}

export interface TrackerStore {
  createUser(username: string, passwordHash: string): Promise<void>;
  getUser(username: string): Promise<UserRecord | null>;
  /** Deletes the account with its sessions, peer record and publications. */
  deleteUser(username: string): Promise<void>;

  /** Stores a session under the SHA-256 of its token, never the token itself. */
  createSession(
    tokenHash: string,
    username: string,
    address?: string | null,
    at?: string,
  ): Promise<void>;
  sessionUser(tokenHash: string): Promise<string | null>;
  /**
   * The users of many sessions in one query, by token hash; a hash with no
   * session is left out (the tracker's check of every request, batched).
   */
  sessionUsers(tokenHashes: string[]): Promise<Map<string, string>>;
  getSession(tokenHash: string): Promise<SessionRecord | null>;
  /** Records that the session was used at `at`. */
  touchSession(tokenHash: string, at: string): Promise<void>;
  /** The user's sessions (username as registered), newest first. */
  sessionsOf(username: string): Promise<SessionRecord[]>;
  deleteSession(tokenHash: string): Promise<void>;
  /** Deletes the sessions last used before `before`; returns how many. */
  deleteIdleSessions(before: string): Promise<number>;

  /** Records where a peer serves and the TLS certificate (PEM) it serves with, if any. */
  setPeerOnline(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<void>;
  /**
   * Puts a peer back online at that address and certificate if the store has
   * it otherwise (offline, say); writes nothing when it already has it so.
   */
  restorePeer(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<void>;
  /**
   * Shared stores only: which serving instance holds `username` online
   * through another live process, or null.
   */
  peerHeldElsewhere?(username: string): Promise<{ instance: string | null } | null>;
  /** Shared stores only: records the serving instance a peer announced from through this process. */
  setPeerInstance?(username: string, instance: string | null): Promise<void>;
  /**
   * Shared stores only: {@link restorePeer}, unless another live process
   * holds the peer now; resolves to false then (this process's connection
   * was replaced there).
   */
  keepPeer?(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<boolean>;
  /**
   * Shared stores only: {@link keepPeer} for many peers (distinct usernames)
   * in one round trip; whether each was kept, by username as given.
   */
  keepPeers?(peers: PeerAddress[]): Promise<Map<string, boolean>>;
  /**
   * Shared stores only: the login back-off's counts recorded by every
   * process (see LoginLimiter.adopt), so spreading guesses over the
   * processes gains nothing.
   */
  loginFailures?(
    keys: string[],
    username: string,
    address: string,
    at: number,
    forgetAfterMs: number,
  ): Promise<{ counts: Map<string, LoginFailureCount>; known: boolean }>;
  /** Shared stores only: records a failed login under each key. */
  addLoginFailure?(
    keys: LoginFailureKey[],
    address: string,
    at: number,
    forgetAfterMs: number,
  ): Promise<void>;
  /** Shared stores only: a correct login clears `key` and remembers the address as the name's. */
  loginSucceeded?(
    key: string,
    username: string,
    address: string,
    at: number,
    keep: number,
  ): Promise<void>;
  /**
   * Shared stores only: takes one registration from `address`'s bucket and
   * the whole tracker's, as `decide` says (it throws RATE_LIMITED to take
   * none), with both locked meanwhile; forgets address buckets last taken
   * from before `fullBefore`.
   */
  takeRegistration?(
    address: string,
    decide: (
      own: RegistrationBucket | null,
      total: RegistrationBucket | null,
    ) => { own: RegistrationBucket; total: RegistrationBucket },
    fullBefore: number,
  ): Promise<void>;
  /** Takes a peer offline; on a store shared by several processes, only if this one holds it. */
  setPeerOffline(username: string): Promise<void>;
  getPeer(username: string): Promise<PeerRecord | null>;
  peersAt(host: string, port?: number): Promise<PeerRecord[]>;
  listPeers(): Promise<PeerRecord[]>;

  /** Publishes or replaces (owner, name); returns whether it replaced one. */
  publish(file: FileRecord): Promise<boolean>;
  /** Returns whether there was such a publication. */
  unpublish(owner: string, name: string): Promise<boolean>;
  filesOf(owner: string): Promise<FileListing[]>;
  /**
   * Owners of files with this name (only `owner`'s, if given), online first.
   * The name is found without regard to case: the exact spelling wins, else
   * the one spelling that differs only in case; several such are AMBIGUOUS.
   */
  filesNamed(name: string, page?: Page): Promise<FileListing[]>;
  countFilesNamed(name: string, owner?: string): Promise<number>;
  /**
   * Online owners of this content (only `owner`, if given), one row per
   * owner, in random order: a page of them is a random sample, so past the
   * limit every owner is named in turn, not always the same few.
   */
  onlineOwnersOf(contentId: string, page?: Page): Promise<PeerRecord[]>;
  countOnlineOwnersOf(contentId: string, owner?: string): Promise<number>;
  /** Files whose name holds `text` (ASCII case ignored), by name. @default limit 500 */
  searchFiles(text: string, limit?: number): Promise<FileListing[]>;
  countSearch(text: string): Promise<number>;
  allFiles(): Promise<FileListing[]>;

  /**
   * A tracker process starts serving: it records itself and takes offline
   * the peers no live process holds. On SQLite (one process per database)
   * that is every peer; on a shared store only those of dead processes, so
   * starting never changes another process's peers.
   */
  joinPresence(): Promise<void>;
  /**
   * Says this process is alive, and takes offline the peers of processes
   * silent past the liveness window. Resolves to whether this process had
   * itself been taken for dead (its peers then need writing again).
   */
  presenceHeartbeat(): Promise<{ rejoined: boolean }>;
  /** This process stops serving: its peers go offline and its record goes. */
  leavePresence(): Promise<void>;
  /** A cheap check that the store answers (for health checks); rejects with STORE_UNAVAILABLE if not. */
  ping(): Promise<void>;
  /** What the store is, for one line at start: "database tracker.db", "PostgreSQL at host:port/db". */
  readonly description: string;

  /** Makes an account an admin of the operator's view, or not; false when there is no such account. Revoking deletes its API tokens. */
  setAdmin(username: string, admin: boolean): Promise<boolean>;
  isAdmin(username: string): Promise<boolean>;
  /** Stores an API token under the SHA-256 of the token, never the token itself. */
  createApiToken(tokenHash: string, username: string): Promise<void>;
  /** Whose API token this is (username as registered), or null. */
  apiTokenUser(tokenHash: string): Promise<string | null>;
  stats(): Promise<TrackerStats>;
  /** Every account with where it serves and how many files it publishes, by username. */
  listAccounts(): Promise<AccountSummary[]>;
  /** The database's size in bytes, or null where the backend cannot say. */
  databaseBytes(): Promise<number | null>;

  /**
   * Records that `owner`'s folder `folderId` holds files with these content
   * ids, within `limits` (see {@link MemberLimits}); past one it changes
   * nothing and throws LIMIT_EXCEEDED. A peer sends a folder's members before
   * its `publish`: members of a folder not (yet) published are kept for at
   * most `pendingFolders` such folders per account, the least recently
   * added to forgotten first (also to make room under `perAccount`, see
   * {@link pendingToForget}), and name nobody a holder until it is.
   */
  addFolderMembers(
    owner: string,
    folderId: string,
    contentIds: string[],
    limits?: MemberLimits,
  ): Promise<void>;
  /**
   * For each content id, the online peers holding it, published alone or in
   * a folder they publish: a random sample of at most `perId` each. One
   * random order of the accounts serves the whole call, so ids held by the
   * same accounts (one folder's files) get the same sample.
   */
  holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>>;
  /**
   * Records this process's activity for these minutes (replacing what it
   * recorded for them before), and forgets every process's minutes before
   * `forgetBefore` (ISO).
   */
  recordActivity(minutes: MinuteActivity[], forgetBefore: string): Promise<void>;
  /** Every process's activity summed per minute, from `since` (ISO) on, oldest first. */
  activitySince(since: string): Promise<MinuteActivity[]>;

  /** The publications of this content id, online first. */
  filesWithContent(contentId: string, limit: number): Promise<FileListing[]>;

  close(): Promise<void>;
}

/**
 * How many folder members (file content ids) the tracker keeps, so that a
 * hostile account's `members` cannot fill its database.
 */
export interface MemberLimits {
  /** Most members of one folder, published or not; a published folder's own file count bounds it too. */
  perFolder: number;
  /** Most member rows one account keeps over all its folders. */
  perAccount: number;
  /** Most folders one account has sent members for without publishing them. */
  pendingFolders: number;
}

/**
 * The limits the tracker keeps: a folder share has at most 1,000,000
 * entries (the peer's MAX_FOLDER_ENTRIES), an account four such folders'
 * worth of files, and four folders on their way to being published.
 */
export const MEMBER_LIMITS: MemberLimits = {
  perFolder: 1_000_000,
  perAccount: 4_000_000,
  pendingFolders: 4,
};

/** The LIMIT_EXCEEDED of a `members` batch past one of {@link MemberLimits}. */
export function tooManyMembers(what: string): ShoalError {
  return new ShoalError(
    "LIMIT_EXCEEDED",
    `${what}; nothing of this batch was recorded (publish the folder again; ` +
      "unpublish folders you no longer share)",
  );
}

/**
 * Throws LIMIT_EXCEEDED when a folder would have `members` members (its
 * owner `others` in their other folders), past `limits` or past the file
 * count it is published with (`published`; null for a folder not published).
 */
export function checkMembers(
  members: number,
  others: number,
  published: unknown,
  limits: MemberLimits,
): void {
  const files = published === null || published === undefined ? null : Number(published);
  if (files !== null && members > files) {
    throw tooManyMembers(`the folder is published with ${files} files, not ${members}`);
  }
  if (members > limits.perFolder) {
    throw tooManyMembers(`a folder may have at most ${limits.perFolder} files, not ${members}`);
  }
  if (members + others > limits.perAccount) {
    throw tooManyMembers(
      `an account may have at most ${limits.perAccount} files in its folders, not ` +
        `${members + others}`,
    );
  }
}

/**
 * Which of an account's other folders not published (`pending`, oldest
 * first, with their member counts) to forget so that a folder of `members`
 * members fits its account's limit beside the `others` members of its other
 * folders; and `others` once they are gone. So members of publishes cut
 * short (Ctrl-C, a lost connection), which name nobody, never keep a
 * publisher of big folders from publishing.
 */
export function pendingToForget(
  pending: { folderId: string; members: number }[],
  members: number,
  others: number,
  limits: MemberLimits,
): { forget: string[]; others: number } {
  const forget: string[] = [];
  for (const folder of pending) {
    if (members + others <= limits.perAccount) break;
    forget.push(folder.folderId);
    others -= folder.members;
  }
  return { forget, others };
}

/**
 * The LIMIT_EXCEEDED of a publication whose content id has more members
 * recorded than the file count it publishes (they are forgotten).
 */
export function membersPastCount(contentId: string, members: number, files: number): ShoalError {
  return new ShoalError(
    "LIMIT_EXCEEDED",
    `${members} member files were sent for ${contentId.slice(0, 12)}…, more than the ${files} ` +
      "it is published with; they are forgotten: publish the folder again",
  );
}

/**
 * Whether several tracker processes may share `store` (PostgreSQL): it has
 * the shared stores' methods. Then what one process counts in memory (its
 * event feed) is that process's only.
 */
export const isSharedStore = (store: TrackerStore): boolean => store.keepPeer !== undefined;

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

/** A row of `accounts`, `peers`, `peersOnline`, `shares` and `bytesPublished` counts. */
export function toStats(row: Row): TrackerStats {
  return {
    accounts: Number(row.accounts),
    peers: Number(row.peers),
    peersOnline: Number(row.peersOnline),
    shares: Number(row.shares),
    bytesPublished: Number(row.bytesPublished),
  };
}

/**
 * Every account, with where its peer was last and how many shares it has
 * (rows for {@link toAccountSummary}): plain SQL both backends run as it is.
 */
export const ACCOUNTS_QUERY =
  `SELECT u.username, u.created_at, p.host, p.port, p.online, p.last_seen,
     (SELECT COUNT(*) FROM files f WHERE f.owner = u.username) AS shares
   FROM users u LEFT JOIN peers p ON p.username = u.username ORDER BY u.username`;

/** An account row of {@link TrackerStore.listAccounts}, on either backend. */
export function toAccountSummary(row: Row): AccountSummary {
  return {
    username: String(row.username),
    online: Number(row.online) === 1 || row.online === true,
    host: row.host == null ? null : String(row.host),
    port: row.port == null ? null : Number(row.port),
    lastSeen: String(row.last_seen ?? row.created_at),
    shares: Number(row.shares),
  };
}

/** A row of a files listing (LISTING on either backend). */
export function toListing(row: Row): FileListing {
  return {
    owner: String(row.owner),
    name: String(row.name),
    type: String(row.type),
    size: Number(row.size),
    contentId: String(row.contentId),
    publishedAt: String(row.publishedAt),
    files: row.files == null ? 1 : Number(row.files),
    online: Number(row.online) === 1,
    host: row.host === null ? null : String(row.host),
    port: row.port === null ? null : Number(row.port),
    certificate: row.certificate == null ? null : String(row.certificate),
  };
}

/** A row of `users` (username, password_hash, created_at). */
export function toUser(row: Row): UserRecord {
  return {
    username: String(row.username),
    passwordHash: String(row.password_hash),
    createdAt: String(row.created_at),
  };
}

/** A row of `sessions`. */
export function toSession(row: Row): SessionRecord {
  return {
    tokenHash: String(row.token_hash),
    username: String(row.username),
    createdAt: String(row.created_at),
    lastSeen: String(row.last_seen_at ?? row.created_at),
    address: row.address == null ? null : String(row.address),
  };
}

/** A row of `peers`. */
export function toPeer(row: Row): PeerRecord {
  return {
    username: String(row.username),
    host: String(row.host),
    port: Number(row.port),
    certificate: row.certificate == null ? null : String(row.certificate),
    online: Number(row.online) === 1,
    since: String(row.last_seen),
  };
}

/** Now, as the stores write times: ISO 8601 in UTC. */
export const now = (): string => new Date().toISOString();

/** A `LIKE` pattern matching names that contain `text`, its wildcards taken literally. */
export const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** The AMBIGUOUS error of a name that several published spellings differ from only in case. */
export function ambiguousName(name: string, spellings: string[]): ShoalError {
  return new ShoalError(
    "AMBIGUOUS",
    `${spellings.length} files are named "${name}" but for case: ${
      spellings.map((spelling) => `"${spelling}"`).join(", ")
    }; give the name exactly`,
  );
}
