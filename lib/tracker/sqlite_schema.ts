/**
 * The tracker's schema on SQLite: its migrations, applied in order by
 * sqlite_store.ts at open (`PRAGMA user_version` counts those applied).
 */

/** Each entry upgrades the schema by one version (`PRAGMA user_version`). */
export const SQLITE_MIGRATIONS = [
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
  // How many members each owner's folder has, and when some were last added: the limits on
  // members are checked on these counts, not by counting the rows of a big folder every batch.
  `CREATE TABLE folder_member_counts (
     owner TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     folder_id TEXT NOT NULL,
     members INTEGER NOT NULL,
     touched_at TEXT NOT NULL,
     PRIMARY KEY (owner, folder_id)
   );
   INSERT INTO folder_member_counts (owner, folder_id, members, touched_at)
     SELECT owner, folder_id, COUNT(*), '' FROM folder_members GROUP BY owner, folder_id;
   -- The dashboard's per-minute counts, each process's under its own id (one process here,
   -- but the store interface is PostgreSQL's too), kept for the last hour.
   CREATE TABLE activity (
     process TEXT NOT NULL,
     minute TEXT NOT NULL,
     publishes INTEGER NOT NULL,
     logins INTEGER NOT NULL,
     logins_failed INTEGER NOT NULL,
     tickets INTEGER NOT NULL,
     PRIMARY KEY (minute, process)
   );`,
];
