/**
 * The tracker's persistent state and the only SQL in the tracker. Handlers
 * talk to the {@link TrackerStore} interface, so another backend (say
 * PostgreSQL) can be added without touching the protocol code.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ShoalError } from "../protocol/errors.ts";
import type { LoginFailureCount, LoginFailureKey } from "./login_limiter.ts";
import type { RegistrationBucket } from "./register_limiter.ts";
import { openDatabase, Statements } from "../storage/sqlite.ts";

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
  /** Online owners of this content (only `owner`, if given), one row per owner. */
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

  /** Records that `owner`'s folder `folderId` holds files with these content ids. */
  addFolderMembers(owner: string, folderId: string, contentIds: string[]): Promise<void>;
  /**
   * For each content id, the online peers holding it, published alone or in
   * a folder they publish: at most `perId` each, by username.
   */
  holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>>;
  /** The publications of this content id, online first. */
  filesWithContent(contentId: string, limit: number): Promise<FileListing[]>;

  close(): Promise<void>;
}

/** Each entry upgrades the schema by one version (`PRAGMA user_version`). */
const MIGRATIONS = [
  `CREATE TABLE users (
     username TEXT PRIMARY KEY COLLATE NOCASE,
     password_hash TEXT NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE TABLE sessions (
     token_hash TEXT PRIMARY KEY,
     username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     created_at TEXT NOT NULL
   );
   CREATE TABLE peers (
     username TEXT PRIMARY KEY REFERENCES users(username) ON DELETE CASCADE,
     host TEXT NOT NULL,
     port INTEGER NOT NULL,
     online INTEGER NOT NULL,
     last_seen TEXT NOT NULL
   );
   CREATE INDEX peers_by_address ON peers(host, port);
   CREATE TABLE files (
     owner TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     name TEXT NOT NULL,
     type TEXT NOT NULL,
     size INTEGER NOT NULL,
     content_id TEXT NOT NULL,
     published_at TEXT NOT NULL,
     PRIMARY KEY (owner, name)
   );
   CREATE INDEX files_by_name ON files(name);
   CREATE INDEX files_by_content ON files(content_id);`,
  `ALTER TABLE peers ADD COLUMN certificate TEXT;`,
  `ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
   ALTER TABLE sessions ADD COLUMN address TEXT;
   UPDATE sessions SET last_seen_at = created_at;
   CREATE INDEX sessions_by_user ON sessions(username);`,
  `ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE api_tokens (
     token_hash TEXT PRIMARY KEY,
     username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     created_at TEXT NOT NULL
   );
   -- The counts /metrics reads every scrape, kept by triggers: counting 100,000 files there
   -- blocked the tracker for 20 ms a scrape.
   CREATE TABLE totals (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     accounts INTEGER NOT NULL,
     peers INTEGER NOT NULL,
     peers_online INTEGER NOT NULL,
     shares INTEGER NOT NULL,
     bytes INTEGER NOT NULL
   );
   INSERT INTO totals VALUES (1, (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM peers),
     (SELECT COUNT(*) FROM peers WHERE online = 1), (SELECT COUNT(*) FROM files),
     (SELECT COALESCE(SUM(size), 0) FROM files));
   CREATE TRIGGER totals_user_in AFTER INSERT ON users BEGIN
     UPDATE totals SET accounts = accounts + 1 WHERE id = 1; END;
   CREATE TRIGGER totals_user_out AFTER DELETE ON users BEGIN
     UPDATE totals SET accounts = accounts - 1 WHERE id = 1; END;
   CREATE TRIGGER totals_peer_in AFTER INSERT ON peers BEGIN
     UPDATE totals SET peers = peers + 1, peers_online = peers_online + NEW.online WHERE id = 1; END;
   CREATE TRIGGER totals_peer_out AFTER DELETE ON peers BEGIN
     UPDATE totals SET peers = peers - 1, peers_online = peers_online - OLD.online WHERE id = 1; END;
   CREATE TRIGGER totals_peer_online AFTER UPDATE OF online ON peers WHEN NEW.online != OLD.online
   BEGIN UPDATE totals SET peers_online = peers_online + NEW.online - OLD.online WHERE id = 1; END;
   CREATE TRIGGER totals_file_in AFTER INSERT ON files BEGIN
     UPDATE totals SET shares = shares + 1, bytes = bytes + NEW.size WHERE id = 1; END;
   CREATE TRIGGER totals_file_out AFTER DELETE ON files BEGIN
     UPDATE totals SET shares = shares - 1, bytes = bytes - OLD.size WHERE id = 1; END;
   CREATE TRIGGER totals_file_size AFTER UPDATE OF size ON files WHEN NEW.size != OLD.size
   BEGIN UPDATE totals SET bytes = bytes + NEW.size - OLD.size WHERE id = 1; END;`,
  // Folders (issue 14): a folder's file count, and which files' content ids each owner's
  // folder holds, so every owner of a file is a source of it whichever share holds it.
  `ALTER TABLE files ADD COLUMN files INTEGER NOT NULL DEFAULT 1;
   CREATE TABLE folder_members (
     owner TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     folder_id TEXT NOT NULL,
     content_id TEXT NOT NULL,
     PRIMARY KEY (owner, folder_id, content_id)
   );
   CREATE INDEX folder_members_by_content ON folder_members(content_id);`,
];

/**
 * The owners holding a content id: those publishing it, and those publishing
 * a folder whose members list it (two parameters: the content id twice).
 */
const HOLDERS = `SELECT owner FROM files WHERE content_id = ?
  UNION SELECT m.owner FROM folder_members m
  JOIN files f ON f.owner = m.owner AND f.content_id = m.folder_id WHERE m.content_id = ?`;

const LISTING = `SELECT f.owner, f.name, f.type, f.size, f.content_id AS contentId,
  f.published_at AS publishedAt, f.files, COALESCE(p.online, 0) AS online, p.host, p.port, p.certificate
  FROM files f LEFT JOIN peers p ON p.username = f.owner`;

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

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

export function toSession(row: Row): SessionRecord {
  return {
    tokenHash: String(row.token_hash),
    username: String(row.username),
    createdAt: String(row.created_at),
    lastSeen: String(row.last_seen_at ?? row.created_at),
    address: row.address == null ? null : String(row.address),
  };
}

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

export const now = () => new Date().toISOString();

/** A `LIKE` pattern matching names that contain `text`, its wildcards taken literally. */
export const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** An SQL condition (with its parameters) keeping only `owner`'s rows, or none. */
function ownerClause(column: string, owner?: string): [string, string[]] {
  return owner === undefined ? ["", []] : [` AND ${column} = ? COLLATE NOCASE`, [owner]];
}

/** The AMBIGUOUS error of a name that several published spellings differ from only in case. */
export function ambiguousName(name: string, spellings: string[]): ShoalError {
  return new ShoalError(
    "AMBIGUOUS",
    `${spellings.length} files are named "${name}" but for case: ${
      spellings.map((spelling) => `"${spelling}"`).join(", ")
    }; give the name exactly`,
  );
}

/** A SQLite parameter. */
type Param = string | number | null;

/** Runs synchronous work as the interface's Promise: a throw becomes a rejection. */
function settle<V>(work: () => V): Promise<V> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * The SQLite backend, through Deno's built-in `node:sqlite`. WAL mode lets the
 * one-shot admin commands read while a tracker serves. Its work is synchronous
 * underneath; it answers with Promises as {@link TrackerStore} does.
 *
 * @example
 * ```ts
 * using store = SqliteTrackerStore.open("tracker.db");
 * await store.createUser("alice", hash);
 * ```
 */
export class SqliteTrackerStore implements TrackerStore, Disposable, AsyncDisposable {
  readonly #db: DatabaseSync;
  readonly #statements: Statements;
  readonly description: string;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.#statements = new Statements(db);
    this.description = `database ${path}`;
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  #get(sql: string, ...params: Param[]): Promise<Row | undefined> {
    return settle(() => this.#sql(sql).get(...params) as Row | undefined);
  }

  #all(sql: string, ...params: Param[]): Promise<Row[]> {
    return settle(() => this.#sql(sql).all(...params) as Row[]);
  }

  /** Runs a statement; resolves to how many rows it changed. */
  #run(sql: string, ...params: Param[]): Promise<number> {
    return settle(() => Number(this.#sql(sql).run(...params).changes));
  }

  /**
   * Opens (creating and migrating as needed) the database at `path`, private
   * to its owner: it holds password hashes and session token hashes.
   */
  static open(path: string, options: { warn?: (line: string) => void } = {}): SqliteTrackerStore {
    const holds = "the tracker's password hashes and sessions";
    return new SqliteTrackerStore(openDatabase(path, MIGRATIONS, { ...options, holds }), path);
  }

  /** Runs `work` in one write transaction; synchronous, so nothing else runs inside it. */
  #transaction<V>(work: () => V): V {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  async createUser(username: string, passwordHash: string): Promise<void> {
    try {
      await this.#run(
        "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
        username,
        passwordHash,
        now(),
      );
    } catch (error) {
      if (/UNIQUE constraint/.test((error as Error).message)) {
        throw new ShoalError("USERNAME_TAKEN", `the username "${username}" is already taken`);
      }
      throw error;
    }
  }

  async getUser(username: string): Promise<UserRecord | null> {
    const row = await this.#get(
      "SELECT username, password_hash, created_at FROM users WHERE username = ?",
      username,
    );
    return row
      ? {
        username: String(row.username),
        passwordHash: String(row.password_hash),
        createdAt: String(row.created_at),
      }
      : null;
  }

  async deleteUser(username: string): Promise<void> {
    await this.#run("DELETE FROM users WHERE username = ?", username);
  }

  async createSession(
    tokenHash: string,
    username: string,
    address: string | null = null,
    at = now(),
  ): Promise<void> {
    await this.#run(
      `INSERT INTO sessions (token_hash, username, created_at, last_seen_at, address)
       VALUES (?, ?, ?, ?, ?)`,
      tokenHash,
      username,
      at,
      at,
      address,
    );
  }

  async getSession(tokenHash: string): Promise<SessionRecord | null> {
    const row = await this.#get("SELECT * FROM sessions WHERE token_hash = ?", tokenHash);
    return row ? toSession(row) : null;
  }

  async touchSession(tokenHash: string, at: string): Promise<void> {
    await this.#run("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", at, tokenHash);
  }

  async sessionsOf(username: string): Promise<SessionRecord[]> {
    const rows = await this.#all(
      "SELECT * FROM sessions WHERE username = ? ORDER BY created_at DESC, token_hash",
      username,
    );
    return rows.map(toSession);
  }

  deleteIdleSessions(before: string): Promise<number> {
    return this.#run("DELETE FROM sessions WHERE last_seen_at < ?", before);
  }

  async sessionUser(tokenHash: string): Promise<string | null> {
    const row = await this.#get("SELECT username FROM sessions WHERE token_hash = ?", tokenHash);
    return row ? String(row.username) : null;
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.#run("DELETE FROM sessions WHERE token_hash = ?", tokenHash);
  }

  async setPeerOnline(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<void> {
    await this.#run(
      `INSERT INTO peers (username, host, port, certificate, online, last_seen)
       VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
         certificate = excluded.certificate, online = 1, last_seen = excluded.last_seen`,
      username,
      host,
      port,
      certificate,
      now(),
    );
  }

  async restorePeer(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<void> {
    // One statement on a heartbeat's path: it matches (and changes) no row when all is as it was.
    await this.#run(
      `INSERT INTO peers (username, host, port, certificate, online, last_seen)
       VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
         certificate = excluded.certificate, online = 1, last_seen = excluded.last_seen
       WHERE NOT (online = 1 AND host = excluded.host AND port = excluded.port
         AND certificate IS excluded.certificate)`,
      username,
      host,
      port,
      certificate,
      now(),
    );
  }

  async setPeerOffline(username: string): Promise<void> {
    await this.#run(
      "UPDATE peers SET online = 0, last_seen = ? WHERE username = ?",
      now(),
      username,
    );
  }

  /** At start nobody is connected yet: every peer is offline until it reconnects. */
  async markAllPeersOffline(): Promise<void> {
    await this.#run("UPDATE peers SET online = 0");
  }

  /** One process per SQLite database (its lock file): at start, every peer is offline. */
  joinPresence(): Promise<void> {
    return this.markAllPeersOffline();
  }

  /** Nothing to say: no other process shares the database. */
  presenceHeartbeat(): Promise<{ rejoined: boolean }> {
    return Promise.resolve({ rejoined: false });
  }

  /** Each connection takes its peer offline as it closes; nothing is left to do. */
  leavePresence(): Promise<void> {
    return Promise.resolve();
  }

  async ping(): Promise<void> {
    await this.#get("SELECT 1");
  }

  async getPeer(username: string): Promise<PeerRecord | null> {
    const row = await this.#get("SELECT * FROM peers WHERE username = ?", username);
    return row ? toPeer(row) : null;
  }

  async peersAt(host: string, port?: number): Promise<PeerRecord[]> {
    const rows = port === undefined
      ? await this.#all("SELECT * FROM peers WHERE host = ? ORDER BY username", host)
      : await this.#all(
        "SELECT * FROM peers WHERE host = ? AND port = ? ORDER BY username",
        host,
        port,
      );
    return rows.map(toPeer);
  }

  async listPeers(): Promise<PeerRecord[]> {
    return (await this.#all("SELECT * FROM peers ORDER BY username")).map(toPeer);
  }

  publish(file: FileRecord): Promise<boolean> {
    return settle(() =>
      this.#transaction(() => {
        const existing = this.#sql("SELECT content_id FROM files WHERE owner = ? AND name = ?")
          .get(file.owner, file.name) as Row | undefined;
        this.#sql(
          `INSERT INTO files (owner, name, type, size, content_id, published_at, files)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner, name) DO UPDATE SET type = excluded.type, size = excluded.size,
           content_id = excluded.content_id, published_at = excluded.published_at,
           files = excluded.files`,
        ).run(
          file.owner,
          file.name,
          file.type,
          file.size,
          file.contentId,
          file.publishedAt,
          file.files ?? 1,
        );
        if (existing) this.#dropStaleMembers(file.owner, String(existing.content_id));
        return existing !== undefined;
      })
    );
  }

  unpublish(owner: string, name: string): Promise<boolean> {
    return settle(() =>
      this.#transaction(() => {
        const existing = this.#sql("SELECT content_id FROM files WHERE owner = ? AND name = ?")
          .get(owner, name) as Row | undefined;
        if (!existing) return false;
        this.#sql("DELETE FROM files WHERE owner = ? AND name = ?").run(owner, name);
        this.#dropStaleMembers(owner, String(existing.content_id));
        return true;
      })
    );
  }

  /** Forgets the members of `owner`'s folder `folderId` once no publication of theirs holds it. */
  #dropStaleMembers(owner: string, folderId: string): void {
    this.#sql(
      `DELETE FROM folder_members WHERE owner = ? AND folder_id = ?
         AND NOT EXISTS (SELECT 1 FROM files WHERE owner = ? AND content_id = ?)`,
    ).run(owner, folderId, owner, folderId);
  }

  addFolderMembers(owner: string, folderId: string, contentIds: string[]): Promise<void> {
    return settle(() =>
      this.#transaction(() => {
        const insert = this.#sql(
          `INSERT INTO folder_members (owner, folder_id, content_id) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING`,
        );
        for (const contentId of contentIds) insert.run(owner, folderId, contentId);
      })
    );
  }

  holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>> {
    return settle(() => {
      const query = this.#sql(
        `SELECT p.* FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})
       ORDER BY p.username LIMIT ?`,
      );
      const holders = new Map<string, PeerRecord[]>();
      for (const contentId of new Set(contentIds)) {
        holders.set(contentId, (query.all(contentId, contentId, perId) as Row[]).map(toPeer));
      }
      return holders;
    });
  }

  filesWithContent(contentId: string, limit: number): Promise<FileListing[]> {
    return this.#listings(
      `${LISTING} WHERE f.content_id = ? ORDER BY p.online DESC, f.owner, f.name LIMIT ?`,
      contentId,
      limit,
    );
  }

  filesOf(owner: string): Promise<FileListing[]> {
    return this.#listings(`${LISTING} WHERE f.owner = ? ORDER BY f.name`, owner);
  }

  async filesNamed(name: string, page: Page = {}): Promise<FileListing[]> {
    const [where, params] = ownerClause("f.owner", page.owner);
    return await this.#listings(
      `${LISTING} WHERE f.name = ?${where} ORDER BY p.online DESC, f.owner LIMIT ?`,
      await this.#spellingOf(name),
      ...params,
      page.limit ?? -1,
    );
  }

  /**
   * The published spelling a name means: itself when published so (found
   * through the index on names), else the only spelling that differs from it
   * only in case, as search finds names; several are for the user to pick.
   */
  async #spellingOf(name: string): Promise<string> {
    if (await this.#get("SELECT 1 FROM files WHERE name = ? LIMIT 1", name)) return name;
    const rows = await this.#all(
      "SELECT DISTINCT name FROM files WHERE name = ? COLLATE NOCASE ORDER BY name LIMIT 10",
      name,
    );
    if (rows.length > 1) throw ambiguousName(name, rows.map((row) => String(row.name)));
    return rows.length === 1 ? String(rows[0].name) : name;
  }

  async countFilesNamed(name: string, owner?: string): Promise<number> {
    const [where, params] = ownerClause("owner", owner);
    return await this.#count(
      `SELECT COUNT(*) AS n FROM files WHERE name = ?${where}`,
      await this.#spellingOf(name),
      ...params,
    );
  }

  async onlineOwnersOf(contentId: string, page: Page = {}): Promise<PeerRecord[]> {
    const [where, params] = ownerClause("p.username", page.owner);
    const rows = await this.#all(
      `SELECT p.* FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})${where}
       ORDER BY p.username LIMIT ?`,
      contentId,
      contentId,
      ...params,
      page.limit ?? -1,
    );
    return rows.map(toPeer);
  }

  countOnlineOwnersOf(contentId: string, owner?: string): Promise<number> {
    const [where, params] = ownerClause("p.username", owner);
    return this.#count(
      `SELECT COUNT(*) AS n FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})${where}`,
      contentId,
      contentId,
      ...params,
    );
  }

  searchFiles(text: string, limit = 500): Promise<FileListing[]> {
    return this.#listings(
      `${LISTING} WHERE f.name LIKE ? ESCAPE '\\' ORDER BY f.name, p.online DESC, f.owner LIMIT ?`,
      likePattern(text),
      limit,
    );
  }

  countSearch(text: string): Promise<number> {
    return this.#count(
      "SELECT COUNT(*) AS n FROM files WHERE name LIKE ? ESCAPE '\\'",
      likePattern(text),
    );
  }

  async #count(sql: string, ...params: Param[]): Promise<number> {
    return Number((await this.#get(sql, ...params))!.n);
  }

  allFiles(): Promise<FileListing[]> {
    return this.#listings(`${LISTING} ORDER BY f.owner, f.name`);
  }

  setAdmin(username: string, admin: boolean): Promise<boolean> {
    return settle(() =>
      this.#transaction(() => {
        const { changes } = this.#sql("UPDATE users SET admin = ? WHERE username = ?")
          .run(admin ? 1 : 0, username);
        if (!admin) this.#sql("DELETE FROM api_tokens WHERE username = ?").run(username);
        return Number(changes) > 0;
      })
    );
  }

  async isAdmin(username: string): Promise<boolean> {
    const row = await this.#get("SELECT admin FROM users WHERE username = ?", username);
    return row !== undefined && Number(row.admin) === 1;
  }

  async createApiToken(tokenHash: string, username: string): Promise<void> {
    await this.#run(
      "INSERT INTO api_tokens (token_hash, username, created_at) VALUES (?, ?, ?)",
      tokenHash,
      username,
      now(),
    );
  }

  async apiTokenUser(tokenHash: string): Promise<string | null> {
    const row = await this.#get(
      `SELECT u.username FROM api_tokens t JOIN users u ON u.username = t.username
       WHERE t.token_hash = ?`,
      tokenHash,
    );
    return row ? String(row.username) : null;
  }

  async stats(): Promise<TrackerStats> {
    const row = (await this.#get(
      `SELECT accounts, peers, peers_online AS peersOnline, shares, bytes AS bytesPublished
       FROM totals WHERE id = 1`,
    ))!;
    return {
      accounts: Number(row.accounts),
      peers: Number(row.peers),
      peersOnline: Number(row.peersOnline),
      shares: Number(row.shares),
      bytesPublished: Number(row.bytesPublished),
    };
  }

  async listAccounts(): Promise<AccountSummary[]> {
    const rows = await this.#all(
      `SELECT u.username, u.created_at, p.host, p.port, p.online, p.last_seen,
         (SELECT COUNT(*) FROM files f WHERE f.owner = u.username) AS shares
       FROM users u LEFT JOIN peers p ON p.username = u.username ORDER BY u.username`,
    );
    return rows.map(toAccountSummary);
  }

  async databaseBytes(): Promise<number | null> {
    const pages = (await this.#get("PRAGMA page_count"))!;
    const size = (await this.#get("PRAGMA page_size"))!;
    return Number(pages.page_count) * Number(size.page_size);
  }

  async #listings(sql: string, ...params: Param[]): Promise<FileListing[]> {
    return (await this.#all(sql, ...params)).map(toListing);
  }

  close(): Promise<void> {
    return settle(() => this[Symbol.dispose]());
  }

  [Symbol.dispose](): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
