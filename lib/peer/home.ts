/**
 * A peer's own state in its home folder: the session, and the share index
 * (name → local path, content id, manifest). All of the peer's SQL is here.
 */
import type { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { Manifest } from "../protocol/messages.ts";
import { openDatabase } from "../storage/sqlite.ts";

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
  contentId: string;
  manifest: Manifest;
  publishedAt: string;
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
];

type Row = Record<string, unknown>;

function toShare(row: Row): Share {
  return {
    name: String(row.name),
    path: String(row.path),
    type: String(row.type),
    size: Number(row.size),
    mtimeMs: Number(row.mtime_ms),
    contentId: String(row.content_id),
    manifest: Manifest.parse(JSON.parse(String(row.manifest))),
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

  private constructor(dir: string, db: DatabaseSync) {
    this.dir = dir;
    this.#db = db;
  }

  static open(dir: string): PeerHome {
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new ShoalError("IO", `cannot create the peer home ${dir}: ${(error as Error).message}`);
    }
    return new PeerHome(dir, openDatabase(join(dir, "peer.db"), MIGRATIONS));
  }

  session(): StoredSession | null {
    const row = this.#db.prepare("SELECT username, token FROM session WHERE id = 1").get() as
      | Row
      | undefined;
    return row ? { username: String(row.username), token: String(row.token) } : null;
  }

  saveSession(session: StoredSession): void {
    this.#db.prepare(
      `INSERT INTO session (id, username, token) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET username = excluded.username, token = excluded.token`,
    ).run(session.username, session.token);
  }

  clearSession(): void {
    this.#db.exec("DELETE FROM session");
  }

  /** Adds or replaces the share of that name. */
  addShare(share: Share): void {
    this.#db.prepare(
      `INSERT INTO shares (name, path, type, size, mtime_ms, content_id, manifest, published_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET path = excluded.path, type = excluded.type,
         size = excluded.size, mtime_ms = excluded.mtime_ms, content_id = excluded.content_id,
         manifest = excluded.manifest, published_at = excluded.published_at`,
    ).run(
      share.name,
      share.path,
      share.type,
      share.size,
      share.mtimeMs,
      share.contentId,
      JSON.stringify(share.manifest),
      share.publishedAt,
    );
  }

  removeShare(name: string): boolean {
    return Number(this.#db.prepare("DELETE FROM shares WHERE name = ?").run(name).changes) > 0;
  }

  /** Forgets every share, e.g. after the account is deleted. */
  clearShares(): void {
    this.#db.exec("DELETE FROM shares");
  }

  share(name: string): Share | null {
    const row = this.#db.prepare("SELECT * FROM shares WHERE name = ?").get(name) as
      | Row
      | undefined;
    return row ? toShare(row) : null;
  }

  /** Any share with this content; several names may hold the same bytes. */
  shareByContent(contentId: string): Share | null {
    const row = this.#db.prepare("SELECT * FROM shares WHERE content_id = ? LIMIT 1")
      .get(contentId) as Row | undefined;
    return row ? toShare(row) : null;
  }

  shares(): Share[] {
    return (this.#db.prepare("SELECT * FROM shares ORDER BY name").all() as Row[]).map(toShare);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
