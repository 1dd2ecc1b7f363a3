/**
 * The tracker's schema on PostgreSQL: its migrations, applied in order by
 * postgres_store.ts at open (under a lock, once however many processes
 * start at once).
 */

/**
 * Each entry upgrades the schema by one version (rows of `shoal_schema`).
 * Text is compared and sorted bytewise (`COLLATE "C"`), as SQLite does;
 * names are matched without regard to ASCII case through `shoal_fold`, as
 * SQLite's NOCASE and LIKE do.
 */
export const POSTGRES_MIGRATIONS = [
  `CREATE FUNCTION shoal_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
     AS $$ SELECT translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') $$;
   CREATE TABLE users (
     username TEXT COLLATE "C" PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at TEXT COLLATE "C" NOT NULL
   );
   CREATE UNIQUE INDEX users_by_folded_name ON users (shoal_fold(username));
   CREATE TABLE sessions (
     token_hash TEXT COLLATE "C" PRIMARY KEY,
     username TEXT COLLATE "C" NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     created_at TEXT COLLATE "C" NOT NULL,
     last_seen_at TEXT COLLATE "C" NOT NULL,
     address TEXT
   );
   CREATE INDEX sessions_by_user ON sessions (username);
   CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);
   CREATE TABLE tracker_processes (
     id TEXT PRIMARY KEY,
     started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
   );
   CREATE TABLE peers (
     username TEXT COLLATE "C" PRIMARY KEY REFERENCES users(username) ON DELETE CASCADE,
     host TEXT COLLATE "C" NOT NULL,
     port INTEGER NOT NULL,
     certificate TEXT,
     online BOOLEAN NOT NULL,
     last_seen TEXT COLLATE "C" NOT NULL,
     process_id TEXT
   );
   CREATE INDEX peers_by_address ON peers (host, port);
   CREATE INDEX peers_by_process ON peers (process_id) WHERE online;
   CREATE TABLE files (
     owner TEXT COLLATE "C" NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     name TEXT COLLATE "C" NOT NULL,
     type TEXT NOT NULL,
     size BIGINT NOT NULL,
     content_id TEXT COLLATE "C" NOT NULL,
     published_at TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (owner, name)
   );
   CREATE INDEX files_by_name ON files (name);
   CREATE INDEX files_by_folded_name ON files (shoal_fold(name));
   CREATE INDEX files_by_content ON files (content_id);`,
  `ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;
   CREATE TABLE api_tokens (
     token_hash TEXT COLLATE "C" PRIMARY KEY,
     username TEXT COLLATE "C" NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     created_at TEXT COLLATE "C" NOT NULL
   );`,
  // Folders: a folder's file count, and which files' content ids each owner's folder holds.
  `ALTER TABLE files ADD COLUMN files INTEGER NOT NULL DEFAULT 1;
   CREATE TABLE folder_members (
     owner TEXT COLLATE "C" NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     folder_id TEXT COLLATE "C" NOT NULL,
     content_id TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (owner, folder_id, content_id)
   );
   CREATE INDEX folder_members_by_content ON folder_members (content_id);`,
  // One tracker, one identity: what the first serving process served with (one row), and the
  // serving process (its random instance id) each online peer announced from.
  `CREATE TABLE tracker_identity (
     one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
     certificate_fingerprint TEXT,
     ticket_key TEXT NOT NULL,
     recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
   );
   ALTER TABLE peers ADD COLUMN instance TEXT;`,
  // The login back-off's counts, shared by the processes (times in ms since the epoch): failures
  // per key (a name from an address, an address, a name from many addresses), the addresses that
  // failed for a name, and the addresses each name last logged in from; and the registration
  // limits' token buckets ("address:HOST" and "total"; no tokens: full).
  `CREATE TABLE login_failures (
     key TEXT COLLATE "C" PRIMARY KEY,
     failures INTEGER NOT NULL,
     last_failure BIGINT NOT NULL
   );
   CREATE INDEX login_failures_by_time ON login_failures (last_failure);
   CREATE TABLE login_failure_addresses (
     key TEXT COLLATE "C" NOT NULL,
     address TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (key, address)
   );
   CREATE TABLE login_known_addresses (
     username TEXT COLLATE "C" NOT NULL,
     address TEXT COLLATE "C" NOT NULL,
     at BIGINT NOT NULL,
     PRIMARY KEY (username, address)
   );
   CREATE TABLE register_buckets (
     key TEXT COLLATE "C" PRIMARY KEY,
     tokens DOUBLE PRECISION,
     at BIGINT NOT NULL
   );
   CREATE INDEX register_buckets_by_time ON register_buckets (at);`,
  // How many members each owner's folder has, and when some were last added: the limits on
  // members are checked on these counts, not by counting the rows of a big folder every batch.
  `CREATE TABLE folder_member_counts (
     owner TEXT COLLATE "C" NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     folder_id TEXT COLLATE "C" NOT NULL,
     members INTEGER NOT NULL,
     touched_at TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (owner, folder_id)
   );
   INSERT INTO folder_member_counts (owner, folder_id, members, touched_at)
     SELECT owner, folder_id, COUNT(*), '' FROM folder_members GROUP BY owner, folder_id;
   -- The dashboard's per-minute counts, each process's under its own id, kept for the last
   -- hour: every process's dashboard sums them, so its history is the whole tracker's.
   CREATE TABLE activity (
     process TEXT COLLATE "C" NOT NULL,
     minute TEXT COLLATE "C" NOT NULL,
     publishes INTEGER NOT NULL,
     logins INTEGER NOT NULL,
     logins_failed INTEGER NOT NULL,
     tickets INTEGER NOT NULL,
     PRIMARY KEY (minute, process)
   );`,
];
