/**
 * The tracker's persistent state and the only SQL in the tracker. Handlers
 * talk to the {@link TrackerStore} interface, so another backend (say
 * PostgreSQL) can be added without touching the protocol code.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ShoalError } from "../protocol/errors.ts";
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

export interface TrackerStore {
  createUser(username: string, passwordHash: string): void;
  getUser(username: string): UserRecord | null;
  /** Deletes the account with its sessions, peer record and publications. */
  deleteUser(username: string): void;

  /** Stores a session under the SHA-256 of its token, never the token itself. */
  createSession(tokenHash: string, username: string, address?: string | null, at?: string): void;
  sessionUser(tokenHash: string): string | null;
  getSession(tokenHash: string): SessionRecord | null;
  /** Records that the session was used at `at`. */
  touchSession(tokenHash: string, at: string): void;
  /** The user's sessions (username as registered), newest first. */
  sessionsOf(username: string): SessionRecord[];
  deleteSession(tokenHash: string): void;
  /** Deletes the sessions last used before `before`; returns how many. */
  deleteIdleSessions(before: string): number;

  /** Records where a peer serves and the TLS certificate (PEM) it serves with, if any. */
  setPeerOnline(username: string, host: string, port: number, certificate: string | null): void;
  /**
   * Puts a peer back online at that address and certificate if the store has
   * it otherwise (offline, say); writes nothing when it already has it so.
   */
  restorePeer(username: string, host: string, port: number, certificate: string | null): void;
  setPeerOffline(username: string): void;
  /** At start nobody is connected yet: every peer is offline until it reconnects. */
  markAllPeersOffline(): void;
  getPeer(username: string): PeerRecord | null;
  peersAt(host: string, port?: number): PeerRecord[];
  listPeers(): PeerRecord[];

  /** Publishes or replaces (owner, name); returns whether it replaced one. */
  publish(file: FileRecord): boolean;
  /** Returns whether there was such a publication. */
  unpublish(owner: string, name: string): boolean;
  filesOf(owner: string): FileListing[];
  /**
   * Owners of files with this name (only `owner`'s, if given), online first.
   * The name is found without regard to case: the exact spelling wins, else
   * the one spelling that differs only in case; several such are AMBIGUOUS.
   */
  filesNamed(name: string, page?: Page): FileListing[];
  countFilesNamed(name: string, owner?: string): number;
  /** Online owners of this content (only `owner`, if given), one row per owner. */
  onlineOwnersOf(contentId: string, page?: Page): PeerRecord[];
  countOnlineOwnersOf(contentId: string, owner?: string): number;
  /** Files whose name holds `text` (ASCII case ignored), by name. @default limit 500 */
  searchFiles(text: string, limit?: number): FileListing[];
  countSearch(text: string): number;
  allFiles(): FileListing[];

  /** Records that `owner`'s folder `folderId` holds files with these content ids. */
  addFolderMembers(owner: string, folderId: string, contentIds: string[]): Promise<void>;
  /**
   * For each content id, the online peers holding it, published alone or in
   * a folder they publish: at most `perId` each, by username.
   */
  holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>>;
  /** The publications of this content id, online first. */
  filesWithContent(contentId: string, limit: number): Promise<FileListing[]>;

  close(): void;
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

type Row = Record<string, unknown>;

function toListing(row: Row): FileListing {
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

function toSession(row: Row): SessionRecord {
  return {
    tokenHash: String(row.token_hash),
    username: String(row.username),
    createdAt: String(row.created_at),
    lastSeen: String(row.last_seen_at ?? row.created_at),
    address: row.address == null ? null : String(row.address),
  };
}

function toPeer(row: Row): PeerRecord {
  return {
    username: String(row.username),
    host: String(row.host),
    port: Number(row.port),
    certificate: row.certificate == null ? null : String(row.certificate),
    online: Number(row.online) === 1,
    since: String(row.last_seen),
  };
}

const now = () => new Date().toISOString();

/** A `LIKE` pattern matching names that contain `text`, its wildcards taken literally. */
const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** An SQL condition (with its parameters) keeping only `owner`'s rows, or none. */
function ownerClause(column: string, owner?: string): [string, string[]] {
  return owner === undefined ? ["", []] : [` AND ${column} = ? COLLATE NOCASE`, [owner]];
}

/**
 * The SQLite backend, through Deno's built-in `node:sqlite`. WAL mode lets the
 * one-shot admin commands read while a tracker serves.
 *
 * @example
 * ```ts
 * using store = SqliteTrackerStore.open("tracker.db");
 * store.createUser("alice", hash);
 * ```
 */
export class SqliteTrackerStore implements TrackerStore, Disposable {
  readonly #db: DatabaseSync;
  readonly #statements: Statements;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#statements = new Statements(db);
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  /**
   * Opens (creating and migrating as needed) the database at `path`, private
   * to its owner: it holds password hashes and session token hashes.
   */
  static open(path: string, options: { warn?: (line: string) => void } = {}): SqliteTrackerStore {
    const holds = "the tracker's password hashes and sessions";
    return new SqliteTrackerStore(openDatabase(path, MIGRATIONS, { ...options, holds }));
  }

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

  createUser(username: string, passwordHash: string): void {
    try {
      this.#sql("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)")
        .run(username, passwordHash, now());
    } catch (error) {
      if (/UNIQUE constraint/.test((error as Error).message)) {
        throw new ShoalError("USERNAME_TAKEN", `the username "${username}" is already taken`);
      }
      throw error;
    }
  }

  getUser(username: string): UserRecord | null {
    const row = this.#sql(
      "SELECT username, password_hash, created_at FROM users WHERE username = ?",
    ).get(username) as Row | undefined;
    return row
      ? {
        username: String(row.username),
        passwordHash: String(row.password_hash),
        createdAt: String(row.created_at),
      }
      : null;
  }

  deleteUser(username: string): void {
    this.#sql("DELETE FROM users WHERE username = ?").run(username);
  }

  createSession(tokenHash: string, username: string, address: string | null = null, at = now()) {
    this.#sql(
      `INSERT INTO sessions (token_hash, username, created_at, last_seen_at, address)
       VALUES (?, ?, ?, ?, ?)`,
    ).run(tokenHash, username, at, at, address);
  }

  getSession(tokenHash: string): SessionRecord | null {
    const row = this.#sql("SELECT * FROM sessions WHERE token_hash = ?").get(tokenHash) as
      | Row
      | undefined;
    return row ? toSession(row) : null;
  }

  touchSession(tokenHash: string, at: string): void {
    this.#sql("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?").run(at, tokenHash);
  }

  sessionsOf(username: string): SessionRecord[] {
    return (this.#sql(
      "SELECT * FROM sessions WHERE username = ? ORDER BY created_at DESC, token_hash",
    ).all(username) as Row[]).map(toSession);
  }

  deleteIdleSessions(before: string): number {
    return Number(this.#sql("DELETE FROM sessions WHERE last_seen_at < ?").run(before).changes);
  }

  sessionUser(tokenHash: string): string | null {
    const row = this.#sql("SELECT username FROM sessions WHERE token_hash = ?")
      .get(tokenHash) as Row | undefined;
    return row ? String(row.username) : null;
  }

  deleteSession(tokenHash: string): void {
    this.#sql("DELETE FROM sessions WHERE token_hash = ?").run(tokenHash);
  }

  setPeerOnline(username: string, host: string, port: number, certificate: string | null): void {
    this.#sql(
      `INSERT INTO peers (username, host, port, certificate, online, last_seen)
       VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
         certificate = excluded.certificate, online = 1, last_seen = excluded.last_seen`,
    ).run(username, host, port, certificate, now());
  }

  restorePeer(username: string, host: string, port: number, certificate: string | null): void {
    // One statement on a heartbeat's path: it matches (and changes) no row when all is as it was.
    this.#sql(
      `INSERT INTO peers (username, host, port, certificate, online, last_seen)
       VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
         certificate = excluded.certificate, online = 1, last_seen = excluded.last_seen
       WHERE NOT (online = 1 AND host = excluded.host AND port = excluded.port
         AND certificate IS excluded.certificate)`,
    ).run(username, host, port, certificate, now());
  }

  setPeerOffline(username: string): void {
    this.#sql("UPDATE peers SET online = 0, last_seen = ? WHERE username = ?")
      .run(now(), username);
  }

  markAllPeersOffline(): void {
    this.#db.exec("UPDATE peers SET online = 0");
  }

  getPeer(username: string): PeerRecord | null {
    const row = this.#sql("SELECT * FROM peers WHERE username = ?").get(username) as
      | Row
      | undefined;
    return row ? toPeer(row) : null;
  }

  peersAt(host: string, port?: number): PeerRecord[] {
    const rows = port === undefined
      ? this.#sql("SELECT * FROM peers WHERE host = ? ORDER BY username").all(host)
      : this.#sql("SELECT * FROM peers WHERE host = ? AND port = ? ORDER BY username")
        .all(host, port);
    return (rows as Row[]).map(toPeer);
  }

  listPeers(): PeerRecord[] {
    return (this.#sql("SELECT * FROM peers ORDER BY username").all() as Row[]).map(toPeer);
  }

  publish(file: FileRecord): boolean {
    return this.#transaction(() => {
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
    });
  }

  unpublish(owner: string, name: string): boolean {
    return this.#transaction(() => {
      const existing = this.#sql("SELECT content_id FROM files WHERE owner = ? AND name = ?")
        .get(owner, name) as Row | undefined;
      if (!existing) return false;
      this.#sql("DELETE FROM files WHERE owner = ? AND name = ?").run(owner, name);
      this.#dropStaleMembers(owner, String(existing.content_id));
      return true;
    });
  }

  /** Forgets the members of `owner`'s folder `folderId` once no publication of theirs holds it. */
  #dropStaleMembers(owner: string, folderId: string): void {
    this.#sql(
      `DELETE FROM folder_members WHERE owner = ? AND folder_id = ?
         AND NOT EXISTS (SELECT 1 FROM files WHERE owner = ? AND content_id = ?)`,
    ).run(owner, folderId, owner, folderId);
  }

  addFolderMembers(owner: string, folderId: string, contentIds: string[]): Promise<void> {
    this.#transaction(() => {
      const insert = this.#sql(
        `INSERT INTO folder_members (owner, folder_id, content_id) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING`,
      );
      for (const contentId of contentIds) insert.run(owner, folderId, contentId);
    });
    return Promise.resolve();
  }

  holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>> {
    const query = this.#sql(
      `SELECT p.* FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})
       ORDER BY p.username LIMIT ?`,
    );
    const holders = new Map<string, PeerRecord[]>();
    for (const contentId of new Set(contentIds)) {
      holders.set(contentId, (query.all(contentId, contentId, perId) as Row[]).map(toPeer));
    }
    return Promise.resolve(holders);
  }

  filesWithContent(contentId: string, limit: number): Promise<FileListing[]> {
    return Promise.resolve(this.#listings(
      `${LISTING} WHERE f.content_id = ? ORDER BY p.online DESC, f.owner, f.name LIMIT ?`,
      contentId,
      limit,
    ));
  }

  filesOf(owner: string): FileListing[] {
    return this.#listings(`${LISTING} WHERE f.owner = ? ORDER BY f.name`, owner);
  }

  filesNamed(name: string, page: Page = {}): FileListing[] {
    const [where, params] = ownerClause("f.owner", page.owner);
    return this.#listings(
      `${LISTING} WHERE f.name = ?${where} ORDER BY p.online DESC, f.owner LIMIT ?`,
      this.#spellingOf(name),
      ...params,
      page.limit ?? -1,
    );
  }

  /**
   * The published spelling a name means: itself when published so (found
   * through the index on names), else the only spelling that differs from it
   * only in case, as search finds names; several are for the user to pick.
   */
  #spellingOf(name: string): string {
    if (this.#sql("SELECT 1 FROM files WHERE name = ? LIMIT 1").get(name)) return name;
    const rows = this.#sql(
      "SELECT DISTINCT name FROM files WHERE name = ? COLLATE NOCASE ORDER BY name LIMIT 10",
    ).all(name) as { name: string }[];
    if (rows.length > 1) {
      throw new ShoalError(
        "AMBIGUOUS",
        `${rows.length} files are named "${name}" but for case: ${
          rows.map((row) => `"${row.name}"`).join(", ")
        }; give the name exactly`,
      );
    }
    return rows[0]?.name ?? name;
  }

  countFilesNamed(name: string, owner?: string): number {
    const [where, params] = ownerClause("owner", owner);
    return this.#count(
      `SELECT COUNT(*) AS n FROM files WHERE name = ?${where}`,
      this.#spellingOf(name),
      ...params,
    );
  }

  onlineOwnersOf(contentId: string, page: Page = {}): PeerRecord[] {
    const [where, params] = ownerClause("p.username", page.owner);
    const rows = this.#sql(
      `SELECT p.* FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})${where}
       ORDER BY p.username LIMIT ?`,
    ).all(contentId, contentId, ...params, page.limit ?? -1) as Row[];
    return rows.map(toPeer);
  }

  countOnlineOwnersOf(contentId: string, owner?: string): number {
    const [where, params] = ownerClause("p.username", owner);
    return this.#count(
      `SELECT COUNT(*) AS n FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})${where}`,
      contentId,
      contentId,
      ...params,
    );
  }

  searchFiles(text: string, limit = 500): FileListing[] {
    return this.#listings(
      `${LISTING} WHERE f.name LIKE ? ESCAPE '\\' ORDER BY f.name, p.online DESC, f.owner LIMIT ?`,
      likePattern(text),
      limit,
    );
  }

  countSearch(text: string): number {
    return this.#count(
      "SELECT COUNT(*) AS n FROM files WHERE name LIKE ? ESCAPE '\\'",
      likePattern(text),
    );
  }

  #count(sql: string, ...params: string[]): number {
    return Number((this.#sql(sql).get(...params) as Row).n);
  }

  allFiles(): FileListing[] {
    return this.#listings(`${LISTING} ORDER BY f.owner, f.name`);
  }

  #listings(sql: string, ...params: (string | number)[]): FileListing[] {
    return (this.#sql(sql).all(...params) as Row[]).map(toListing);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
