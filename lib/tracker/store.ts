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
}

/** A published file with its owner's serving state. */
export interface FileListing extends FileRecord {
  online: boolean;
  host: string | null;
  port: number | null;
  certificate: string | null;
}

export interface TrackerStore {
  createUser(username: string, passwordHash: string): void;
  getUser(username: string): UserRecord | null;
  /** Deletes the account with its sessions, peer record and publications. */
  deleteUser(username: string): void;

  /** Stores a session under the SHA-256 of its token, never the token itself. */
  createSession(tokenHash: string, username: string): void;
  sessionUser(tokenHash: string): string | null;
  deleteSession(tokenHash: string): void;

  /** Records where a peer serves and the TLS certificate (PEM) it serves with, if any. */
  setPeerOnline(username: string, host: string, port: number, certificate: string | null): void;
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
   * Publications of a name, found without regard to case; when names differ
   * only in case, the exact spelling wins, else AMBIGUOUS lists them.
   */
  filesNamed(name: string): FileListing[];
  /** Online owners of this content, one row per owner. */
  onlineOwnersOf(contentId: string): PeerRecord[];
  searchFiles(text: string): FileListing[];
  allFiles(): FileListing[];

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
];

const LISTING = `SELECT f.owner, f.name, f.type, f.size, f.content_id AS contentId,
  f.published_at AS publishedAt, COALESCE(p.online, 0) AS online, p.host, p.port, p.certificate
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
    online: Number(row.online) === 1,
    host: row.host === null ? null : String(row.host),
    port: row.port === null ? null : Number(row.port),
    certificate: row.certificate == null ? null : String(row.certificate),
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

  /** Opens (creating and migrating as needed) the database at `path`. */
  static open(path: string): SqliteTrackerStore {
    return new SqliteTrackerStore(openDatabase(path, MIGRATIONS));
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

  createSession(tokenHash: string, username: string): void {
    this.#sql("INSERT INTO sessions (token_hash, username, created_at) VALUES (?, ?, ?)")
      .run(tokenHash, username, now());
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
      const existing = this.#sql("SELECT 1 FROM files WHERE owner = ? AND name = ?")
        .get(file.owner, file.name);
      this.#sql(
        `INSERT INTO files (owner, name, type, size, content_id, published_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner, name) DO UPDATE SET type = excluded.type, size = excluded.size,
           content_id = excluded.content_id, published_at = excluded.published_at`,
      ).run(file.owner, file.name, file.type, file.size, file.contentId, file.publishedAt);
      return existing !== undefined;
    });
  }

  unpublish(owner: string, name: string): boolean {
    const { changes } = this.#sql("DELETE FROM files WHERE owner = ? AND name = ?")
      .run(owner, name);
    return Number(changes) > 0;
  }

  filesOf(owner: string): FileListing[] {
    return this.#listings(`${LISTING} WHERE f.owner = ? ORDER BY f.name`, owner);
  }

  filesNamed(name: string): FileListing[] {
    const order = "ORDER BY p.online DESC, f.owner";
    // The exact spelling wins, through the index on names.
    const exact = this.#listings(`${LISTING} WHERE f.name = ? ${order}`, name);
    if (exact.length > 0) return exact;
    // Else any case, as search finds names; several spellings are for the user to pick.
    const found = this.#listings(`${LISTING} WHERE f.name = ? COLLATE NOCASE ${order}`, name);
    const names = [...new Set(found.map((file) => file.name))].sort();
    if (names.length > 1) {
      throw new ShoalError(
        "AMBIGUOUS",
        `${names.length} files are named "${name}" but for case: ${
          names.map((n) => `"${n}"`).join(", ")
        }; give the name exactly`,
      );
    }
    return found;
  }

  onlineOwnersOf(contentId: string): PeerRecord[] {
    const rows = this.#sql(
      `SELECT DISTINCT p.* FROM files f JOIN peers p ON p.username = f.owner
       WHERE f.content_id = ? AND p.online = 1 ORDER BY p.username`,
    ).all(contentId) as Row[];
    return rows.map(toPeer);
  }

  searchFiles(text: string): FileListing[] {
    const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return this.#listings(
      `${LISTING} WHERE f.name LIKE ? ESCAPE '\\' ORDER BY f.name, p.online DESC, f.owner LIMIT 500`,
      pattern,
    );
  }

  allFiles(): FileListing[] {
    return this.#listings(`${LISTING} ORDER BY f.owner, f.name`);
  }

  #listings(sql: string, ...params: string[]): FileListing[] {
    return (this.#sql(sql).all(...params) as Row[]).map(toListing);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
