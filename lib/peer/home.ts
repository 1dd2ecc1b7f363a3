/**
 * A peer's own state in its home folder: the session, and the share index
 * (name → local path, content id, manifest). All of the peer's SQL is here.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { isAbsolute, join, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { Manifest } from "../protocol/messages.ts";
import { openDatabase, Statements } from "../storage/sqlite.ts";
import { makePrivate } from "../storage/private_files.ts";

export interface StoredSession {
  username: string;
  token: string;
}

/** One local share: what was published and where its bytes live. */
export interface Share {
  name: string;
  path: string;
  type: string;
  size: number;
  /** Modification time (ms) when hashed; a change means the bytes may have changed. */
  mtimeMs: number;
  /**
   * Which file was hashed, `device:inode`: another file at the path (a link
   * swapped in, a decoy renamed over) is refused. Null for shares recorded
   * before identities were, until their content is verified again.
   */
  fileId: string | null;
  contentId: string;
  /**
   * The file's manifest. A folder share's files have their own (in
   * {@link PeerHome.folderFiles}); its own is {@link NO_PIECES}, never served.
   */
  manifest: Manifest;
  publishedAt: string;
  /** A folder share (its `path` a directory, `type` "folder"); a file otherwise. */
  kind?: "file" | "folder";
  /** How many files a folder share holds. @default {1} */
  files?: number;
}

/** The manifest a folder share's row carries: a folder's own is its folder manifest. */
export const NO_PIECES: Manifest = { version: 1, size: 0, pieceSize: 262144, pieces: [] };

/** One file of a published folder, as served: by its own content id. */
export interface FolderFileRecord {
  /** Path inside the folder, `/`-separated. */
  relative: string;
  /** Its real local path. */
  path: string;
  size: number;
  mtimeMs: number;
  fileId: string | null;
  contentId: string;
  manifest: Manifest;
}

/** A file as a `pieces` batch serves it (see {@link PeerHome.filesByContent}). */
export interface ServedFile {
  path: string;
  size: number;
  mtimeMs: number;
  fileId: string | null;
  /** The share the upload log counts it under: its own name, or its folder's. */
  share: string;
  /** That share's content id. */
  shareContentId: string;
}

/** An unfinished folder download: enough to resume it, and for `downloads`/`cancel`. */
export interface FolderDownloadRecord {
  contentId: string;
  name: string;
  /** The absolute folder the tree is written under. */
  output: string;
  /** The `--only` patterns, empty for the whole folder. */
  only: string[];
  size: number;
  files: number;
  /** Bytes of files already renamed into place (a lower bound). */
  doneBytes: number;
  /**
   * Whether this fetch builds the folder in its staging folder
   * (`OUTPUT.shoal-part`, made by it: the output did not exist), to be
   * renamed to the output once whole; else it writes into the output. Only
   * a staging folder this fetch made is ever deleted whole (`cancel`).
   */
  staged: boolean;
  startedAt: string;
  updatedAt: string;
}

const MIGRATIONS = [
  `CREATE TABLE session (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     username TEXT NOT NULL,
     token TEXT NOT NULL
   );
   CREATE TABLE shares (
     name TEXT PRIMARY KEY,
     path TEXT NOT NULL,
     type TEXT NOT NULL,
     size INTEGER NOT NULL,
     mtime_ms INTEGER NOT NULL,
     content_id TEXT NOT NULL,
     manifest TEXT NOT NULL,
     published_at TEXT NOT NULL
   );
   CREATE INDEX shares_by_content ON shares(content_id);`,
  `CREATE TABLE downloads (
     content_id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     type TEXT NOT NULL,
     part_path TEXT NOT NULL,
     manifest TEXT NOT NULL,
     have BLOB NOT NULL,
     started_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );`,
  `CREATE TABLE known_trackers (
     address TEXT PRIMARY KEY,
     certificate TEXT NOT NULL,
     first_seen TEXT NOT NULL
   );`,
  // Existing shares get NULL: the share catalog re-hashes each once before serving it.
  `ALTER TABLE shares ADD COLUMN file_id TEXT;`,
  `CREATE TABLE pending_publishes (
     tracker TEXT NOT NULL,
     name TEXT NOT NULL,
     content_id TEXT NOT NULL,
     since TEXT NOT NULL,
     reason TEXT NOT NULL,
     PRIMARY KEY (tracker, name)
   );`,
  // Of a tracker listed at several addresses, the one that answered last: the next command starts there.
  `CREATE TABLE tracker_answered (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     address TEXT NOT NULL,
     at TEXT NOT NULL
   );`,
  // Folders (issue 14): folder shares, each of their files served by its own content id, and
  // unfinished folder downloads.
  `ALTER TABLE shares ADD COLUMN kind TEXT NOT NULL DEFAULT 'file';
   ALTER TABLE shares ADD COLUMN files INTEGER NOT NULL DEFAULT 1;
   CREATE TABLE folder_files (
     share TEXT NOT NULL,
     relative TEXT NOT NULL,
     path TEXT NOT NULL,
     size INTEGER NOT NULL,
     mtime_ms INTEGER NOT NULL,
     file_id TEXT,
     content_id TEXT NOT NULL,
     manifest TEXT NOT NULL,
     PRIMARY KEY (share, relative)
   );
   CREATE INDEX folder_files_by_content ON folder_files(content_id);
   CREATE TABLE folder_downloads (
     content_id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     output TEXT NOT NULL,
     only TEXT NOT NULL,
     size INTEGER NOT NULL,
     files INTEGER NOT NULL,
     done_bytes INTEGER NOT NULL,
     started_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );`,
  // A folder's files found by their content id through its first 8 bytes, not the whole 64
  // characters of hex: publishing 10,000 files writes a fifth of the index (see folderFileKey).
  `DROP INDEX folder_files_by_content;
   CREATE INDEX folder_files_by_content_key ON folder_files(unhex(substr(content_id, 1, 16)));`,
  // A fresh folder fetch is built in OUTPUT.shoal-part: which fetch made one. Records from before
  // wrote into their output (0).
  `ALTER TABLE folder_downloads ADD COLUMN staged INTEGER NOT NULL DEFAULT 0;`,
];

/**
 * How a query names a folder file's content id to use folder_files_by_content_key: the
 * expression that index is built on (`table` qualifies the column in a join); then
 * `content_id` itself picks out the one id.
 */
const folderFileKey = (table = "") => `unhex(substr(${table}content_id, 1, 16))`;

/** A `pieces` batch's files of folders, by position in the batch (the ids as a JSON array). */
const FILES_IN_FOLDERS = `SELECT j.key, f.path, f.size, f.mtime_ms, f.file_id, f.share, s.content_id
  FROM json_each(?) j
  JOIN folder_files f ON ${folderFileKey("f.")} = unhex(substr(j.value, 1, 16))
    AND f.content_id = j.value
  JOIN shares s ON s.name = f.share`;

/** An unfinished download: enough to resume it where it stopped. */
export interface DownloadRecord {
  contentId: string;
  name: string;
  type: string;
  /**
   * The `.shoal-part` file holding the pieces so far: an absolute path, so
   * every command means the same file wherever it is typed (records from
   * before paths were absolute may hold a relative one).
   */
  partPath: string;
  manifest: Manifest;
  /** Pieces verified and written, as a bitfield. */
  have: Uint8Array;
  startedAt: string;
  updatedAt: string;
}

/** A share fetched while the tracker was unreachable: it still has to be told. */
export interface PendingPublish {
  /** The tracker (`host:port`) to tell. */
  tracker: string;
  name: string;
  contentId: string;
  since: string;
  /** Why it could not be told at the time. */
  reason: string;
}

type Row = Record<string, unknown>;

/**
 * The batch look-ups of {@link PeerHome.filesByContent}: each row the item's
 * position in the batch, then a {@link ServedFile}'s fields in order.
 */

const FILES_ALONE = `SELECT j.key, s.path, s.size, s.mtime_ms, s.file_id, s.name, s.content_id
  FROM json_each(?) j JOIN shares s ON s.content_id = j.value AND s.kind = 'file'`;
type ServedFileRow = [number, string, number, number, string | null, string, string];

/**
 * Manifests by content id. A content id is the hash of its manifest, so an
 * entry never goes stale; parsing (and checking) each once keeps serving a
 * piece from re-reading thousands of hashes.
 */
const manifests = new Map<string, Manifest>();

function manifestOf(contentId: string, json: unknown): Manifest {
  let manifest = manifests.get(contentId);
  if (!manifest) {
    manifest = Manifest.parse(JSON.parse(String(json)));
    if (manifests.size >= 256) manifests.delete(manifests.keys().next().value!);
    manifests.set(contentId, manifest);
  }
  return manifest;
}

function toDownload(row: Row): DownloadRecord {
  return {
    contentId: String(row.content_id),
    name: String(row.name),
    type: String(row.type),
    partPath: String(row.part_path),
    manifest: manifestOf(String(row.content_id), row.manifest),
    have: new Uint8Array(row.have as Uint8Array),
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
  };
}

function toFolderFile(row: Row): FolderFileRecord {
  return {
    relative: String(row.relative),
    path: String(row.path),
    size: Number(row.size),
    mtimeMs: Number(row.mtime_ms),
    fileId: row.file_id == null ? null : String(row.file_id),
    contentId: String(row.content_id),
    manifest: manifestOf(String(row.content_id), row.manifest),
  };
}

function toFolderDownload(row: Row): FolderDownloadRecord {
  return {
    contentId: String(row.content_id),
    name: String(row.name),
    output: String(row.output),
    only: JSON.parse(String(row.only)),
    size: Number(row.size),
    files: Number(row.files),
    doneBytes: Number(row.done_bytes),
    staged: Number(row.staged) === 1,
    startedAt: String(row.started_at),
    updatedAt: String(row.updated_at),
  };
}

function toShare(row: Row): Share {
  if (row.kind === "folder") {
    return {
      name: String(row.name),
      path: String(row.path),
      type: String(row.type),
      size: Number(row.size),
      mtimeMs: Number(row.mtime_ms),
      fileId: row.file_id == null ? null : String(row.file_id),
      contentId: String(row.content_id),
      manifest: NO_PIECES,
      publishedAt: String(row.published_at),
      kind: "folder",
      files: Number(row.files),
    };
  }
  return {
    name: String(row.name),
    path: String(row.path),
    type: String(row.type),
    size: Number(row.size),
    mtimeMs: Number(row.mtime_ms),
    fileId: row.file_id === null || row.file_id === undefined ? null : String(row.file_id),
    contentId: String(row.content_id),
    manifest: manifestOf(String(row.content_id), row.manifest),
    publishedAt: String(row.published_at),
  };
}

/** The default home: `$XDG_DATA_HOME/shoal`, or `~/.local/share/shoal`. */
export function defaultHome(): string {
  const xdg = Deno.env.get("XDG_DATA_HOME");
  if (xdg) return join(xdg, "shoal");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!home) throw new ShoalError("INVALID_INPUT", "no HOME set: pass --home DIR");
  return join(home, ".local", "share", "shoal");
}

/**
 * The peer's database in its home. Several processes of one peer (a `serve`
 * and one-shot commands) share it; WAL mode lets them.
 *
 * @example
 * ```ts
 * using home = PeerHome.open("/home/alice/.local/share/shoal");
 * home.addShare(share);
 * ```
 */
export class PeerHome implements Disposable {
  readonly dir: string;
  readonly #db: DatabaseSync;

  readonly #statements: Statements;

  private constructor(dir: string, db: DatabaseSync) {
    this.dir = dir;
    this.#db = db;
    this.#statements = new Statements(db);
  }

  #sql(text: string): StatementSync {
    return this.#statements.get(text);
  }

  /**
   * Opens the home, creating it private to its owner (0700, its database
   * 0600): the session token in it is as good as the password. A home made
   * readable by others is tightened, and `warn` says what changed.
   */
  static open(dir: string, options: { warn?: (line: string) => void } = {}): PeerHome {
    let changed: string | null = null;
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      changed = makePrivate(dir, 0o700);
    } catch (error) {
      throw new ShoalError("IO", `cannot create the peer home ${dir}: ${(error as Error).message}`);
    }
    const warn = options.warn ?? console.error;
    if (changed) {
      warn(`warning: other users could enter the peer home: changed the permissions of ${changed}`);
    }
    const holds = "your session token";
    return new PeerHome(dir, openDatabase(join(dir, "peer.db"), MIGRATIONS, { warn, holds }));
  }

  session(): StoredSession | null {
    const row = this.#sql("SELECT username, token FROM session WHERE id = 1").get() as
      | Row
      | undefined;
    return row ? { username: String(row.username), token: String(row.token) } : null;
  }

  saveSession(session: StoredSession): void {
    this.#sql(
      `INSERT INTO session (id, username, token) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET username = excluded.username, token = excluded.token`,
    ).run(session.username, session.token);
  }

  clearSession(): void {
    this.#db.exec("DELETE FROM session");
  }

  /**
   * Adds or replaces the share of that name; a folder share with its files
   * (which replace any the name held), in one transaction.
   */
  addShare(share: Share, folderFiles: Iterable<FolderFileRecord> = []): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#sql(
        `INSERT INTO shares (name, path, type, size, mtime_ms, file_id, content_id, manifest,
           published_at, kind, files)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET path = excluded.path, type = excluded.type,
           size = excluded.size, mtime_ms = excluded.mtime_ms, file_id = excluded.file_id,
           content_id = excluded.content_id, manifest = excluded.manifest,
           published_at = excluded.published_at, kind = excluded.kind, files = excluded.files`,
      ).run(
        share.name,
        share.path,
        share.type,
        share.size,
        share.mtimeMs,
        share.fileId,
        share.contentId,
        JSON.stringify(share.manifest),
        share.publishedAt,
        share.kind ?? "file",
        share.files ?? 1,
      );
      this.#sql("DELETE FROM folder_files WHERE share = ?").run(share.name);
      const insert = this.#sql(
        `INSERT INTO folder_files (share, relative, path, size, mtime_ms, file_id, content_id,
           manifest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const file of folderFiles) {
        insert.run(
          share.name,
          file.relative,
          file.path,
          file.size,
          file.mtimeMs,
          file.fileId,
          file.contentId,
          JSON.stringify(file.manifest),
        );
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /** The files of a folder share, by relative path. */
  folderFiles(share: string): FolderFileRecord[] {
    return (this.#sql("SELECT * FROM folder_files WHERE share = ? ORDER BY relative")
      .all(share) as Row[]).map(toFolderFile);
  }

  /** Where a folder share's manifest text is kept. */
  folderManifestPath(contentId: string): string {
    return join(this.dir, "folders", `${contentId}.json`);
  }

  /** Starts or replaces the record of a folder download. */
  saveFolderDownload(record: FolderDownloadRecord): void {
    this.#sql(
      `INSERT INTO folder_downloads (content_id, name, output, only, size, files, done_bytes,
         staged, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (content_id) DO UPDATE SET name = excluded.name, output = excluded.output,
         only = excluded.only, size = excluded.size, files = excluded.files,
         done_bytes = excluded.done_bytes, staged = excluded.staged,
         updated_at = excluded.updated_at`,
    ).run(
      record.contentId,
      record.name,
      resolve(record.output),
      JSON.stringify(record.only),
      record.size,
      record.files,
      record.doneBytes,
      record.staged ? 1 : 0,
      record.startedAt,
      record.updatedAt,
    );
  }

  updateFolderDownload(contentId: string, doneBytes: number): void {
    this.#sql("UPDATE folder_downloads SET done_bytes = ?, updated_at = ? WHERE content_id = ?")
      .run(doneBytes, new Date().toISOString(), contentId);
  }

  folderDownload(contentId: string): FolderDownloadRecord | null {
    const row = this.#sql("SELECT * FROM folder_downloads WHERE content_id = ?")
      .get(contentId) as Row | undefined;
    return row ? toFolderDownload(row) : null;
  }

  folderDownloads(): FolderDownloadRecord[] {
    return (this.#sql("SELECT * FROM folder_downloads ORDER BY started_at").all() as Row[])
      .map(toFolderDownload);
  }

  removeFolderDownload(contentId: string): void {
    this.#sql("DELETE FROM folder_downloads WHERE content_id = ?").run(contentId);
  }

  /**
   * Records which file a share's path holds, once its content was verified
   * again; only while the share is still the one verified.
   */
  setShareFileId(share: Share, fileId: string): void {
    this.#sql(
      `UPDATE shares SET file_id = ?
       WHERE name = ? AND path = ? AND content_id = ? AND mtime_ms = ? AND file_id IS NULL`,
    ).run(fileId, share.name, share.path, share.contentId, share.mtimeMs);
  }

  removeShare(name: string): boolean {
    this.#sql("DELETE FROM folder_files WHERE share = ?").run(name);
    return Number(this.#sql("DELETE FROM shares WHERE name = ?").run(name).changes) > 0;
  }

  /** Forgets every share, e.g. after the account is deleted. */
  clearShares(): void {
    this.#db.exec("DELETE FROM shares; DELETE FROM folder_files;");
  }

  share(name: string): Share | null {
    const row = this.#sql("SELECT * FROM shares WHERE name = ?").get(name) as
      | Row
      | undefined;
    return row ? toShare(row) : null;
  }

  /**
   * Any file share with this content, shared alone or in a folder (then
   * named `folder/relative path`); several names may hold the same bytes.
   */
  shareByContent(contentId: string): Share | null {
    const row = this.#sql("SELECT * FROM shares WHERE content_id = ? AND kind = 'file' LIMIT 1")
      .get(contentId) as Row | undefined;
    if (row) return toShare(row);
    const member = this.#sql(
      `SELECT * FROM folder_files
       WHERE ${folderFileKey()} = unhex(substr(?1, 1, 16)) AND content_id = ?1 LIMIT 1`,
    ).get(contentId) as Row | undefined;
    if (!member) return null;
    const file = toFolderFile(member);
    return {
      name: `${String(member.share)}/${file.relative}`,
      path: file.path,
      type: "",
      size: file.size,
      mtimeMs: file.mtimeMs,
      fileId: file.fileId,
      contentId,
      manifest: file.manifest,
      publishedAt: "",
    };
  }

  /**
   * The files of many content ids at once (a `pieces` batch), in the order
   * asked (undefined for one not shared): one query for files of folders,
   * one for files shared alone, rather than two per file. A file shared
   * alone wins, as in {@link shareByContent}. Rows come back as arrays, each
   * naming its item by position: no object, and no content id string, per row.
   */
  filesByContent(contentIds: readonly string[]): (ServedFile | undefined)[] {
    const ids = JSON.stringify(contentIds);
    const found: (ServedFile | undefined)[] = new Array(contentIds.length).fill(undefined);
    for (const statement of [FILES_IN_FOLDERS, FILES_ALONE]) {
      // In Deno's node:sqlite, though not yet in the types it ships.
      const query = this.#sql(statement) as StatementSync & { setReturnArrays(on: boolean): void };
      query.setReturnArrays(true);
      for (const row of query.all(ids) as unknown as ServedFileRow[]) {
        found[row[0]] = {
          path: row[1],
          size: row[2],
          mtimeMs: row[3],
          fileId: row[4],
          share: row[5],
          shareContentId: row[6],
        };
      }
    }
    return found;
  }

  /** The folder share with this content id, if any. */
  folderByContent(contentId: string): Share | null {
    const row = this.#sql("SELECT * FROM shares WHERE content_id = ? AND kind = 'folder' LIMIT 1")
      .get(contentId) as Row | undefined;
    return row ? toShare(row) : null;
  }

  shares(): Share[] {
    return (this.#sql("SELECT * FROM shares ORDER BY name").all() as Row[]).map(toShare);
  }

  /** The certificate pinned for a tracker on first contact, if any (trust on first use). */
  pinnedTracker(address: string): string | null {
    const row = this.#sql("SELECT certificate FROM known_trackers WHERE address = ?")
      .get(address) as Row | undefined;
    return row ? String(row.certificate) : null;
  }

  pinTracker(address: string, certificate: string): void {
    this.#sql(
      "INSERT OR REPLACE INTO known_trackers (address, certificate, first_seen) VALUES (?, ?, ?)",
    ).run(address, certificate, new Date().toISOString());
  }

  /** Forgets a pinned tracker certificate; returns whether there was one. */
  forgetTracker(address: string): boolean {
    return Number(
      this.#sql("DELETE FROM known_trackers WHERE address = ?").run(address).changes,
    ) > 0;
  }

  /** The tracker address (`host:port`) that answered last, if one was recorded. */
  lastTrackerAddress(): string | null {
    const row = this.#sql("SELECT address FROM tracker_answered WHERE id = 1").get() as
      | Row
      | undefined;
    return row ? String(row.address) : null;
  }

  /** Records the tracker address that answered, for the next command to try first. */
  setLastTrackerAddress(address: string): void {
    if (this.lastTrackerAddress() === address) return;
    this.#sql(
      `INSERT INTO tracker_answered (id, address, at) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET address = excluded.address, at = excluded.at`,
    ).run(address, new Date().toISOString());
  }

  /** Starts or replaces the record of a download; a relative part path is made absolute. */
  saveDownload(record: DownloadRecord): void {
    this.#sql(
      `INSERT INTO downloads (content_id, name, type, part_path, manifest, have, started_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (content_id) DO UPDATE SET name = excluded.name, type = excluded.type,
         part_path = excluded.part_path, manifest = excluded.manifest, have = excluded.have,
         updated_at = excluded.updated_at`,
    ).run(
      record.contentId,
      record.name,
      record.type,
      resolve(record.partPath),
      JSON.stringify(record.manifest),
      record.have,
      record.startedAt,
      record.updatedAt,
    );
  }

  /** Records the verified pieces of a download so far. */
  updateDownload(contentId: string, have: Uint8Array): void {
    this.#sql("UPDATE downloads SET have = ?, updated_at = ? WHERE content_id = ?")
      .run(have, new Date().toISOString(), contentId);
  }

  /** Records that a download's partial file moved (to an absolute path). */
  movePartial(contentId: string, partPath: string): void {
    if (!isAbsolute(partPath)) throw new Error(`not an absolute path: ${partPath}`);
    this.#sql("UPDATE downloads SET part_path = ?, updated_at = ? WHERE content_id = ?")
      .run(partPath, new Date().toISOString(), contentId);
  }

  download(contentId: string): DownloadRecord | null {
    const row = this.#sql("SELECT * FROM downloads WHERE content_id = ?").get(contentId) as
      | Row
      | undefined;
    return row ? toDownload(row) : null;
  }

  downloads(): DownloadRecord[] {
    return (this.#sql("SELECT * FROM downloads ORDER BY started_at").all() as Row[])
      .map(toDownload);
  }

  removeDownload(contentId: string): void {
    this.#sql("DELETE FROM downloads WHERE content_id = ?").run(contentId);
  }

  /** Remembers to publish a share on a tracker once it is reachable again. */
  addPendingPublish(pending: PendingPublish): void {
    this.#sql(
      `INSERT OR REPLACE INTO pending_publishes (tracker, name, content_id, since, reason)
       VALUES (?, ?, ?, ?, ?)`,
    ).run(pending.tracker, pending.name, pending.contentId, pending.since, pending.reason);
  }

  /** The shares still to publish on this tracker (`host:port`), oldest first. */
  pendingPublishes(tracker: string): PendingPublish[] {
    const rows = this.#sql(
      "SELECT * FROM pending_publishes WHERE tracker = ? ORDER BY since, name",
    ).all(tracker) as Row[];
    return rows.map((row) => ({
      tracker: String(row.tracker),
      name: String(row.name),
      contentId: String(row.content_id),
      since: String(row.since),
      reason: String(row.reason),
    }));
  }

  removePendingPublish(tracker: string, name: string): void {
    this.#sql("DELETE FROM pending_publishes WHERE tracker = ? AND name = ?").run(tracker, name);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
