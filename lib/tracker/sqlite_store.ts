/**
 * The tracker's store on SQLite (one process per database file), through
 * Deno's built-in `node:sqlite`: its SQL (the schema is sqlite_schema.ts).
 * PostgreSQL's is postgres_store.ts; both implement store.ts's
 * {@link TrackerStore}.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ShoalError } from "../protocol/errors.ts";
import { openDatabase, Statements } from "../storage/sqlite.ts";
import {
  ACCOUNTS_QUERY,
  type AccountSummary,
  ambiguousName,
  checkMembers,
  type FileListing,
  type FileRecord,
  likePattern,
  MEMBER_LIMITS,
  type MemberLimits,
  membersPastCount,
  type MinuteActivity,
  now,
  type Page,
  type PeerRecord,
  pendingToForget,
  type Row,
  type SessionRecord,
  toAccountSummary,
  toActivity,
  toListing,
  toPeer,
  toSession,
  toStats,
  toUser,
  type TrackerStats,
  type TrackerStore,
  type UserRecord,
} from "./store.ts";
import { SQLITE_MIGRATIONS } from "./sqlite_schema.ts";

/**
 * The owners holding a content id: those publishing it, and those publishing
 * a folder whose members list it (two parameters: the content id twice).
 */
const HOLDERS = `SELECT owner FROM files WHERE content_id = ?
  UNION SELECT m.owner FROM folder_members m
  JOIN files f ON f.owner = m.owner AND f.content_id = m.folder_id WHERE m.content_id = ?`;

/** Puts a peer online at an address (username, host, port, certificate, the time). */
const PEER_ONLINE = `INSERT INTO peers (username, host, port, certificate, online, last_seen)
  VALUES (?, ?, ?, ?, 1, ?)
  ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
    certificate = excluded.certificate, online = 1, last_seen = excluded.last_seen`;

const LISTING = `SELECT f.owner, f.name, f.type, f.size, f.content_id AS contentId,
  f.published_at AS publishedAt, f.files, COALESCE(p.online, 0) AS online, p.host, p.port, p.certificate
  FROM files f LEFT JOIN peers p ON p.username = f.owner`;

/** An SQL condition (with its parameters) keeping only `owner`'s rows, or none. */
function ownerClause(column: string, owner?: string): [string, string[]] {
  return owner === undefined ? ["", []] : [` AND ${column} = ? COLLATE NOCASE`, [owner]];
}

/** A random 32-bit salt for {@link rank}. */
const randomSalt = () => crypto.getRandomValues(new Uint32Array(1))[0];

/**
 * A username's place in the random order `salt` picks:
 * FNV-1a seeded with the salt, then murmur3's finaliser, so every salt
 * orders the accounts differently and evenly.
 */
function rank(salt: number, username: string): number {
  let hash = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = 0; i < username.length; i++) {
    hash = Math.imul(hash ^ username.charCodeAt(i), 16777619);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
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
  /** This store's id in `activity`: an admin command's store beside the tracker's writes none. */
  readonly #process = crypto.randomUUID();

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.#statements = new Statements(db);
    this.description = `database ${path}`;
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  /** The first row of a query, if any. */
  #one(sql: string, ...params: Param[]): Promise<Row | undefined> {
    return settle(() => this.#sql(sql).get(...params) as Row | undefined);
  }

  /** Every row of a query. */
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
    return new SqliteTrackerStore(
      openDatabase(path, SQLITE_MIGRATIONS, { ...options, holds }),
      path,
    );
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
    const row = await this.#one(
      "SELECT username, password_hash, created_at FROM users WHERE username = ?",
      username,
    );
    return row ? toUser(row) : null;
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
    const row = await this.#one("SELECT * FROM sessions WHERE token_hash = ?", tokenHash);
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
    const row = await this.#one("SELECT username FROM sessions WHERE token_hash = ?", tokenHash);
    return row ? String(row.username) : null;
  }

  async sessionUsers(tokenHashes: string[]): Promise<Map<string, string>> {
    const rows = await this.#all(
      "SELECT token_hash, username FROM sessions WHERE token_hash IN (SELECT value FROM json_each(?))",
      JSON.stringify(tokenHashes),
    );
    return new Map(rows.map((row) => [String(row.token_hash), String(row.username)]));
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
    await this.#run(PEER_ONLINE, username, host, port, certificate, now());
  }

  async restorePeer(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<void> {
    // One statement on a heartbeat's path: it matches (and changes) no row when all is as it was.
    await this.#run(
      `${PEER_ONLINE}
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
    await this.#one("SELECT 1");
  }

  async getPeer(username: string): Promise<PeerRecord | null> {
    const row = await this.#one("SELECT * FROM peers WHERE username = ?", username);
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

  async publish(file: FileRecord): Promise<boolean> {
    const outcome = await settle(() =>
      this.#transaction(() => {
        const members = Number(
          (this.#sql("SELECT members FROM folder_member_counts WHERE owner = ? AND folder_id = ?")
            .get(file.owner, file.contentId) as Row | undefined)?.members ?? 0,
        );
        // More members than the files it publishes: the members are a lie, and are forgotten
        // (committed, so a retry starts clean); the publication is refused below.
        if (members > (file.files ?? 1)) {
          this.#dropMembers(file.owner, file.contentId);
          return { members };
        }
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
        return { replaced: existing !== undefined };
      })
    );
    if (outcome.members !== undefined) {
      throw membersPastCount(file.contentId, outcome.members, file.files ?? 1);
    }
    return outcome.replaced;
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
    const held = this.#sql("SELECT 1 FROM files WHERE owner = ? AND content_id = ? LIMIT 1")
      .get(owner, folderId);
    if (!held) this.#dropMembers(owner, folderId);
  }

  /** Forgets the members of `owner`'s folder `folderId`, and their count. */
  #dropMembers(owner: string, folderId: string): void {
    this.#sql("DELETE FROM folder_members WHERE owner = ? AND folder_id = ?").run(owner, folderId);
    this.#sql("DELETE FROM folder_member_counts WHERE owner = ? AND folder_id = ?")
      .run(owner, folderId);
  }

  addFolderMembers(
    owner: string,
    folderId: string,
    contentIds: string[],
    limits: MemberLimits = MEMBER_LIMITS,
  ): Promise<void> {
    return settle(() =>
      this.#transaction(() => {
        const had = this.#sql(
          "SELECT members FROM folder_member_counts WHERE owner = ? AND folder_id = ?",
        ).get(owner, folderId) as Row | undefined;
        const published = this.#sql(
          "SELECT MAX(files) AS files FROM files WHERE owner = ? AND content_id = ?",
        ).get(owner, folderId) as Row;
        if (published.files === null && had === undefined) {
          // A folder on its way to being published: the account's oldest such go first.
          const pending = this.#sql(
            `SELECT folder_id FROM folder_member_counts s WHERE owner = ? AND NOT EXISTS
               (SELECT 1 FROM files f WHERE f.owner = s.owner AND f.content_id = s.folder_id)
             ORDER BY touched_at, folder_id`,
          ).all(owner) as Row[];
          const over = Math.max(0, pending.length - limits.pendingFolders + 1);
          for (const row of pending.slice(0, over)) {
            this.#dropMembers(owner, String(row.folder_id));
          }
        }
        // The whole batch in one statement (its ids as one JSON array): a statement an id cost
        // as much again in calls from JavaScript as SQLite's own work. `WHERE true` lets SQLite
        // read ON CONFLICT as the upsert clause of an INSERT ... SELECT.
        const added = this.#sql(
          `INSERT INTO folder_members (owner, folder_id, content_id)
           SELECT ?, ?, value FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`,
        ).run(owner, folderId, JSON.stringify(contentIds));
        const members = Number(had?.members ?? 0) + Number(added.changes);
        let others = Number(
          (this.#sql(
            `SELECT COALESCE(SUM(members), 0) AS n FROM folder_member_counts
             WHERE owner = ? AND folder_id <> ?`,
          ).get(owner, folderId) as Row).n,
        );
        if (members + others > limits.perAccount) {
          // Past the account's limit: the members of other folders never published go first.
          const pending = this.#sql(
            `SELECT folder_id, members FROM folder_member_counts s
             WHERE owner = ? AND folder_id <> ? AND NOT EXISTS
               (SELECT 1 FROM files f WHERE f.owner = s.owner AND f.content_id = s.folder_id)
             ORDER BY touched_at, folder_id`,
          ).all(owner, folderId) as Row[];
          const room = pendingToForget(
            pending.map((row) => ({
              folderId: String(row.folder_id),
              members: Number(row.members),
            })),
            members,
            others,
            limits,
          );
          for (const id of room.forget) this.#dropMembers(owner, id);
          others = room.others;
        }
        checkMembers(members, others, published.files, limits);
        this.#sql(
          `INSERT INTO folder_member_counts (owner, folder_id, members, touched_at)
           VALUES (?, ?, ?, ?)
           ON CONFLICT (owner, folder_id) DO UPDATE SET members = excluded.members,
             touched_at = excluded.touched_at`,
        ).run(owner, folderId, members, now());
      })
    );
  }

  holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>> {
    return settle(() => {
      // A random sample of each id's holders, as a BitTorrent tracker hands out peers (in
      // username order the same few were named to every downloader, the rest never). One
      // random order of the accounts for the whole batch, so the ids of one folder share
      // their holders and the batch stays within MAX_SOURCES distinct accounts. Ranked here
      // rather than in SQL: only names come back per id, each peer's row is read once a batch
      // (4,096 ids of 20 holders each: 0.18 s, against 0.30 s ranked by an SQL function).
      const query = this.#sql(
        `SELECT p.username FROM peers p WHERE p.online = 1 AND p.username IN (${HOLDERS})`,
      );
      const peer = this.#sql("SELECT * FROM peers WHERE username = ?");
      const salt = randomSalt();
      const ranks = new Map<string, number>();
      const rankOf = (username: string) => {
        let at = ranks.get(username);
        if (at === undefined) ranks.set(username, at = rank(salt, username));
        return at;
      };
      const records = new Map<string, PeerRecord>();
      const recordOf = (username: string) => {
        let record = records.get(username);
        if (record === undefined) {
          records.set(username, record = toPeer(peer.get(username) as Row));
        }
        return record;
      };
      const holders = new Map<string, PeerRecord[]>();
      for (const contentId of new Set(contentIds)) {
        const names = (query.all(contentId, contentId) as Row[]).map((row) => String(row.username));
        names.sort((a, b) => rankOf(a) - rankOf(b));
        holders.set(contentId, names.slice(0, perId).map(recordOf));
      }
      return holders;
    });
  }

  recordActivity(minutes: MinuteActivity[], forgetBefore: string): Promise<void> {
    return settle(() =>
      this.#transaction(() => {
        const record = this.#sql(
          `INSERT INTO activity (process, minute, publishes, logins, logins_failed, tickets)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (minute, process) DO UPDATE SET publishes = excluded.publishes,
             logins = excluded.logins, logins_failed = excluded.logins_failed,
             tickets = excluded.tickets`,
        );
        for (const minute of minutes) {
          record.run(
            this.#process,
            minute.time,
            minute.publishes,
            minute.logins,
            minute.loginsFailed,
            minute.tickets,
          );
        }
        this.#sql("DELETE FROM activity WHERE minute < ?").run(forgetBefore);
      })
    );
  }

  async activitySince(since: string): Promise<MinuteActivity[]> {
    const rows = await this.#all(
      `SELECT minute, SUM(publishes) AS publishes, SUM(logins) AS logins,
         SUM(logins_failed) AS logins_failed, SUM(tickets) AS tickets
       FROM activity WHERE minute >= ? GROUP BY minute ORDER BY minute`,
      since,
    );
    return rows.map(toActivity);
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
    if (await this.#one("SELECT 1 FROM files WHERE name = ? LIMIT 1", name)) return name;
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
       ORDER BY random() LIMIT ?`,
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
    return Number((await this.#one(sql, ...params))!.n);
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
    const row = await this.#one("SELECT admin FROM users WHERE username = ?", username);
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
    const row = await this.#one(
      `SELECT u.username FROM api_tokens t JOIN users u ON u.username = t.username
       WHERE t.token_hash = ?`,
      tokenHash,
    );
    return row ? String(row.username) : null;
  }

  async stats(): Promise<TrackerStats> {
    const row = (await this.#one(
      `SELECT accounts, peers, peers_online AS peersOnline, shares, bytes AS bytesPublished
       FROM totals WHERE id = 1`,
    ))!;
    return toStats(row);
  }

  async listAccounts(): Promise<AccountSummary[]> {
    return (await this.#all(ACCOUNTS_QUERY)).map(toAccountSummary);
  }

  async databaseBytes(): Promise<number | null> {
    const pages = (await this.#one("PRAGMA page_count"))!;
    const size = (await this.#one("PRAGMA page_size"))!;
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
