/**
 * The PostgreSQL backend of {@link TrackerStore}: several tracker processes
 * (on several machines) share one database and so form one tracker. Besides
 * the SQLite store's tables it keeps which process holds each online peer
 * and a heartbeat per process, so the others take a dead process's peers
 * offline. One method per interface method, its SQL beside it; the schema
 * is a list of migrations, as the SQLite store's is.
 */
import postgres from "postgres";
import { ShoalError } from "../protocol/errors.ts";
import type { LoginFailureCount, LoginFailureKey } from "./login_limiter.ts";
import type { RegistrationBucket } from "./register_limiter.ts";
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
  type PeerAddress,
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
import { isUnreachable, refusalHint, takeHostParameter } from "./postgres_connection.ts";
import { POSTGRES_MIGRATIONS } from "./postgres_schema.ts";

/** The identity a tracker process serves with, as recorded in a shared store. */
export interface RecordedIdentity {
  /** The TLS certificate's fingerprint; null for a plaintext process. */
  certificateFingerprint: string | null;
  /** The ticket-signing key's public half (base64). */
  ticketKey: string;
}

/** What to do when a process's identity is not the tracker's, in one sentence. */
const SHARE_IDENTITY = "make one identity once (tracker.ts identity init --out DIR), copy DIR " +
  "to every tracker machine, and start every process with --identity DIR";

/**
 * The owners holding a content id (parameter $1): those publishing it,
 * and those publishing a folder whose members list it.
 */
const HOLDERS = `SELECT owner FROM files WHERE content_id = $1
  UNION SELECT m.owner FROM folder_members m
  JOIN files f ON f.owner = m.owner AND f.content_id = m.folder_id WHERE m.content_id = $1`;

const LISTING = `SELECT f.owner, f.name, f.type, f.size, f.content_id AS "contentId",
  f.published_at AS "publishedAt", f.files, COALESCE(p.online, false) AS online, p.host, p.port,
  p.certificate
  FROM files f LEFT JOIN peers p ON p.username = f.owner`;

/** The canonical spelling of an account name given in any ASCII case (NULL if none). */
const CANONICAL = (param: string) =>
  `(SELECT username FROM users WHERE shoal_fold(username) = shoal_fold(${param}))`;

/**
 * Puts a peer online at an address, for this process ($1 the username in any
 * case, $2 host, $3 port, $4 certificate, $5 the time, $6 the process id).
 */
const PEER_ONLINE =
  `INSERT INTO peers AS p (username, host, port, certificate, online, last_seen, process_id)
  VALUES (${CANONICAL("$1")}, $2, $3, $4, true, $5, $6)
  ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
    certificate = excluded.certificate, online = true, last_seen = excluded.last_seen,
    process_id = excluded.process_id`;

/** Options of {@link PostgresTrackerStore.open}. */
export interface PostgresStoreOptions {
  /** Where the one-line notices go (unreachable, reachable again). @default {console.error} */
  warn?: (line: string) => void;
  /**
   * A process whose heartbeat is older than this counts as dead, and its
   * peers are taken offline by the others.
   * @default {20000}
   */
  deadAfterMs?: number;
  /** This process's id in the store. @default {a random UUID} */
  processId?: string;
  /** Connections in the pool. @default {10} */
  maxConnections?: number;
  /** How long to wait for a connection before STORE_UNAVAILABLE. @default {5} */
  connectTimeoutSeconds?: number;
  /**
   * Refuse (NOT_FOUND) a database no tracker has set up, instead of setting
   * it up: for the admin commands, which read a tracker's database.
   */
  mustExist?: boolean;
}

/**
 * Tracker state in PostgreSQL, shared by any number of tracker processes.
 *
 * @example
 * ```ts
 * const store = await PostgresTrackerStore.open("postgres://shoal@db.example/shoal");
 * await store.joinPresence();
 * ```
 */
export class PostgresTrackerStore implements TrackerStore, AsyncDisposable {
  readonly #sql: postgres.Sql;
  readonly #warn: (line: string) => void;
  readonly #deadAfterMs: number;
  readonly processId: string;
  readonly description: string;
  /** Whether the last statement reached the database: a change is said in one line. */
  #reachable = true;
  #closed = false;
  #opened = false;

  private constructor(sql: postgres.Sql, options: PostgresStoreOptions, description: string) {
    this.#sql = sql;
    this.#warn = options.warn ?? console.error;
    this.#deadAfterMs = options.deadAfterMs ?? 20_000;
    this.processId = options.processId ?? crypto.randomUUID();
    this.description = description;
  }

  /**
   * Connects to the database at `url` (missing parts come from the libpq
   * variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) and brings its
   * schema up to date. Fails with STORE_UNAVAILABLE, in one line, when the
   * database cannot be reached.
   */
  static async open(
    url: string,
    options: PostgresStoreOptions = {},
  ): Promise<PostgresTrackerStore> {
    const { url: rest, host: hostParameter } = takeHostParameter(url);
    const sql = postgres(rest, {
      ...(hostParameter === undefined ? {} : { host: hostParameter }),
      max: options.maxConnections ?? 10,
      connect_timeout: options.connectTimeoutSeconds ?? 5,
      onnotice: () => {},
      // Integer columns come back as numbers (BIGINT as text, turned into numbers by the mappers).
      connection: { application_name: "shoal-tracker" },
    });
    const { host, port, database } = sql.options;
    const where = `PostgreSQL at ${host.join(",")}:${port.join(",")}/${database}`;
    const store = new PostgresTrackerStore(sql, options, where);
    try {
      await store.#migrate(options.mustExist ?? false);
    } catch (error) {
      await sql.end({ timeout: 1 }).catch(() => {});
      if (error instanceof ShoalError && error.code === "STORE_UNAVAILABLE") {
        throw new ShoalError(
          "STORE_UNAVAILABLE",
          `cannot reach ${where}: ${(error.cause as Error)?.message ?? error.message}`,
          { hint: "start PostgreSQL, or check --db (SHOAL_TRACKER_DB) and the PG* variables" },
        );
      }
      if (error instanceof ShoalError) throw error;
      // The server refused us (no such database or role, a wrong password): say which server.
      throw new ShoalError("INVALID_INPUT", `${where}: ${(error as Error).message}`, {
        cause: error,
        hint: refusalHint((error as { code?: unknown }).code),
      });
    }
    // From now on, the guard says when the database goes away and comes back.
    store.#opened = true;
    return store;
  }

  /** Applies the migrations not yet applied, under a lock so that two starting processes do not both. */
  async #migrate(mustExist: boolean): Promise<void> {
    await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        await tx.unsafe("SELECT pg_advisory_xact_lock(hashtext('shoal-tracker-schema'))");
        await tx.unsafe(
          `CREATE TABLE IF NOT EXISTS shoal_schema (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
           )`,
        );
        const [{ version }] = await tx.unsafe(
          "SELECT COALESCE(MAX(version), 0) AS version FROM shoal_schema",
        );
        if (mustExist && Number(version) === 0) {
          throw new ShoalError("NOT_FOUND", `no tracker database at ${this.description}`, {
            hint: "start a tracker on it first (tracker.ts serve --db URL), or check --db",
          });
        }
        if (Number(version) > POSTGRES_MIGRATIONS.length) {
          throw new ShoalError(
            "IO",
            `${this.description} has schema version ${version}, newer than this program's ` +
              `${POSTGRES_MIGRATIONS.length}`,
            {
              hint: "a newer Shoal tracker set this database up: run that version here too " +
                "(every process on one database must)",
            },
          );
        }
        for (let step = Number(version); step < POSTGRES_MIGRATIONS.length; step++) {
          await tx.unsafe(POSTGRES_MIGRATIONS[step]);
          await tx.unsafe("INSERT INTO shoal_schema (version) VALUES ($1)", [step + 1]);
        }
      })
    );
  }

  /**
   * Runs database work, turning "cannot reach the database" into
   * STORE_UNAVAILABLE and saying once, in one line, when it goes away and
   * when it is back.
   */
  async #guard<V>(work: () => Promise<V>): Promise<V> {
    let result: V;
    try {
      result = await work();
    } catch (error) {
      if (!isUnreachable(error) || this.#closed) throw error;
      if (this.#reachable && this.#opened) {
        this.#reachable = false;
        this.#warn(
          `${this.description} is unreachable (${(error as Error).message}): logins and ` +
            "publishes are refused with STORE_UNAVAILABLE until it is back; downloads go on",
        );
      }
      throw new ShoalError(
        "STORE_UNAVAILABLE",
        "the tracker cannot reach its database right now; try again in a little while",
        { cause: error },
      );
    }
    if (!this.#reachable) {
      this.#reachable = true;
      if (this.#opened) this.#warn(`${this.description} is reachable again`);
    }
    return result;
  }

  /** Every row of a query. */
  #all(text: string, params: unknown[] = []): Promise<Row[]> {
    return this.#guard(async () =>
      // deno-lint-ignore no-explicit-any
      [...await this.#sql.unsafe(text, params as any[], { prepare: true })] as Row[]
    );
  }

  /** The first row of a query, if any. */
  async #one(text: string, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.#all(text, params))[0];
  }

  /** Runs a statement; resolves to how many rows it changed. */
  #run(text: string, params: unknown[] = []): Promise<number> {
    return this.#guard(async () => {
      // deno-lint-ignore no-explicit-any
      const result = await this.#sql.unsafe(text, params as any[], { prepare: true });
      return result.count;
    });
  }

  async createUser(username: string, passwordHash: string): Promise<void> {
    try {
      await this.#run(
        "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)",
        [username, passwordHash, now()],
      );
    } catch (error) {
      if ((error as { code?: string }).code === "23505") {
        throw new ShoalError("USERNAME_TAKEN", `the username "${username}" is already taken`);
      }
      throw error;
    }
  }

  async getUser(username: string): Promise<UserRecord | null> {
    const row = await this.#one(
      "SELECT username, password_hash, created_at FROM users WHERE shoal_fold(username) = shoal_fold($1)",
      [username],
    );
    return row ? toUser(row) : null;
  }

  async deleteUser(username: string): Promise<void> {
    await this.#run("DELETE FROM users WHERE shoal_fold(username) = shoal_fold($1)", [username]);
  }

  async createSession(
    tokenHash: string,
    username: string,
    address: string | null = null,
    at = now(),
  ): Promise<void> {
    await this.#run(
      `INSERT INTO sessions (token_hash, username, created_at, last_seen_at, address)
       VALUES ($1, ${CANONICAL("$2")}, $3, $3, $4)`,
      [tokenHash, username, at, address],
    );
  }

  async sessionUser(tokenHash: string): Promise<string | null> {
    const row = await this.#one("SELECT username FROM sessions WHERE token_hash = $1", [tokenHash]);
    return row ? String(row.username) : null;
  }

  async sessionUsers(tokenHashes: string[]): Promise<Map<string, string>> {
    const rows = await this.#all(
      "SELECT token_hash, username FROM sessions WHERE token_hash = ANY($1::text[])",
      [tokenHashes],
    );
    return new Map(rows.map((row) => [String(row.token_hash), String(row.username)]));
  }

  async getSession(tokenHash: string): Promise<SessionRecord | null> {
    const row = await this.#one("SELECT * FROM sessions WHERE token_hash = $1", [tokenHash]);
    return row ? toSession(row) : null;
  }

  async touchSession(tokenHash: string, at: string): Promise<void> {
    await this.#run("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2", [at, tokenHash]);
  }

  async sessionsOf(username: string): Promise<SessionRecord[]> {
    const rows = await this.#all(
      "SELECT * FROM sessions WHERE username = $1 ORDER BY created_at DESC, token_hash",
      [username],
    );
    return rows.map(toSession);
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.#run("DELETE FROM sessions WHERE token_hash = $1", [tokenHash]);
  }

  deleteIdleSessions(before: string): Promise<number> {
    return this.#run("DELETE FROM sessions WHERE last_seen_at < $1", [before]);
  }

  async setPeerOnline(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<void> {
    await this.#run(PEER_ONLINE, [username, host, port, certificate, now(), this.processId]);
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
       WHERE NOT (p.online AND p.host = excluded.host AND p.port = excluded.port
         AND p.certificate IS NOT DISTINCT FROM excluded.certificate
         AND p.process_id IS NOT DISTINCT FROM excluded.process_id)`,
      [username, host, port, certificate, now(), this.processId],
    );
  }

  async setPeerOffline(username: string): Promise<void> {
    // Only this process's: the peer may have reconnected through another since.
    await this.#run(
      `UPDATE peers SET online = false, last_seen = $1, process_id = NULL
       WHERE username = $2 AND process_id = $3`,
      [now(), username, this.processId],
    );
  }

  async joinPresence(): Promise<void> {
    await this.#run(
      `INSERT INTO tracker_processes (id) VALUES ($1)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
      [this.processId],
    );
    await this.#sweep();
  }

  /**
   * Takes offline the peers of processes silent past the window (deleting
   * those processes' records), and any online peer whose process has no
   * record left (one that stopped, or a store written before presence was).
   */
  async #sweep(): Promise<void> {
    await this.#run(
      `WITH dead AS (
         DELETE FROM tracker_processes
         WHERE heartbeat_at < now() - $1 * interval '1 millisecond' AND id <> $2
         RETURNING id
       )
       UPDATE peers SET online = false, last_seen = $3, process_id = NULL
       WHERE online AND process_id IS DISTINCT FROM $2
         AND (process_id IS NULL OR process_id IN (SELECT id FROM dead)
         OR NOT EXISTS (SELECT 1 FROM tracker_processes t WHERE t.id = peers.process_id))`,
      [this.#deadAfterMs, this.processId, now()],
    );
  }

  async presenceHeartbeat(): Promise<{ rejoined: boolean }> {
    const beat = await this.#run(
      "UPDATE tracker_processes SET heartbeat_at = now() WHERE id = $1",
      [this.processId],
    );
    // Taken for dead (the database was away longer than the window): back, with no peers.
    if (beat === 0) await this.joinPresence();
    else await this.#sweep();
    return { rejoined: beat === 0 };
  }

  async leavePresence(): Promise<void> {
    await this.#run(
      `UPDATE peers SET online = false, last_seen = $1, process_id = NULL
       WHERE online AND process_id = $2`,
      [now(), this.processId],
    );
    await this.#run("DELETE FROM tracker_processes WHERE id = $1", [this.processId]);
  }

  /**
   * Records the identity this process serves with as the tracker's, if none
   * is yet (a plaintext process records only its ticket key; the first TLS
   * process then adds its certificate), and refuses (CERTIFICATE_MISMATCH)
   * one that differs from the recorded: peers would see another fingerprint,
   * and tickets would fail, depending on which process they reach.
   */
  async claimIdentity(mine: RecordedIdentity): Promise<void> {
    await this.#run(
      `INSERT INTO tracker_identity (certificate_fingerprint, ticket_key) VALUES ($1, $2)
       ON CONFLICT (one) DO UPDATE SET certificate_fingerprint = excluded.certificate_fingerprint
       WHERE tracker_identity.certificate_fingerprint IS NULL
         AND tracker_identity.ticket_key = excluded.ticket_key`,
      [mine.certificateFingerprint, mine.ticketKey],
    );
    const theirs = (await this.recordedIdentity())!;
    const differs: string[] = [];
    if (
      mine.certificateFingerprint !== null && theirs.certificateFingerprint !== null &&
      mine.certificateFingerprint !== theirs.certificateFingerprint
    ) {
      differs.push(
        `TLS certificate ${mine.certificateFingerprint}, the tracker's is ` +
          theirs.certificateFingerprint,
      );
    }
    if (mine.ticketKey !== theirs.ticketKey) {
      differs.push(`ticket key ${mine.ticketKey}, the tracker's is ${theirs.ticketKey}`);
    }
    if (differs.length === 0) return;
    throw new ShoalError(
      "CERTIFICATE_MISMATCH",
      `this process's identity is not the one the tracker's processes on ${this.description} ` +
        `serve with (${differs.join("; ")}): ${SHARE_IDENTITY}`,
      {
        hint: "a deliberate change of identity: stop every process, then run " +
          "tracker.ts identity forget --db URL and start them all with the new --identity DIR",
      },
    );
  }

  /** The identity recorded by the first serving process, or null. */
  async recordedIdentity(): Promise<RecordedIdentity | null> {
    const row = await this.#one(
      "SELECT certificate_fingerprint, ticket_key FROM tracker_identity",
    );
    return row
      ? {
        certificateFingerprint: row.certificate_fingerprint === null
          ? null
          : String(row.certificate_fingerprint),
        ticketKey: String(row.ticket_key),
      }
      : null;
  }

  /** Forgets the recorded identity (the next serving process records its own); whether there was one. */
  async forgetIdentity(): Promise<boolean> {
    return await this.#run("DELETE FROM tracker_identity") > 0;
  }

  /**
   * The serving instance holding `username` online through another live
   * process (one with a presence record), or null: an announcement through
   * this process from another instance is then a second serving process.
   */
  async peerHeldElsewhere(username: string): Promise<{ instance: string | null } | null> {
    const row = await this.#one(
      // By the canonical name (an index look-up in users, then peers' key), not by folding every
      // peer's name: on each announce, that scanned the whole table (36,000 peers: the scale
      // run's set-up slowed to a crawl).
      `SELECT p.instance FROM peers p JOIN tracker_processes t ON t.id = p.process_id
       WHERE p.username = ${CANONICAL("$1")} AND p.online AND p.process_id <> $2`,
      [username, this.processId],
    );
    return row ? { instance: row.instance === null ? null : String(row.instance) } : null;
  }

  /** Records which serving instance the peer announced from (after {@link setPeerOnline}). */
  async setPeerInstance(username: string, instance: string | null): Promise<void> {
    await this.#run(
      "UPDATE peers SET instance = $1 WHERE username = $2 AND process_id = $3",
      [instance, username, this.processId],
    );
  }

  /**
   * As {@link restorePeer}, unless another live process holds the peer now
   * (it announced there since): then writes nothing and resolves to false,
   * for this process to end its now stale connection.
   */
  async keepPeer(
    username: string,
    host: string,
    port: number,
    certificate: string | null,
  ): Promise<boolean> {
    const kept = await this.keepPeers([{ username, host, port, certificate }]);
    return kept.get(username) ?? true;
  }

  /**
   * {@link keepPeer} for many peers (distinct usernames) in one statement, so
   * thousands of serving peers' heartbeats cost a few round trips. A name
   * with no account (unregistered meanwhile) writes nothing and counts as kept.
   */
  async keepPeers(peers: PeerAddress[]): Promise<Map<string, boolean>> {
    if (peers.length === 0) return new Map();
    const rows = await this.#all(
      `WITH given AS (
         SELECT g.name, g.host, g.port, g.certificate, ${CANONICAL("g.name")} AS username
         FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]) AS g(name, host, port, certificate)
       ), held AS (
         SELECT g.name FROM given g WHERE EXISTS (
           SELECT 1 FROM peers p JOIN tracker_processes t ON t.id = p.process_id
           WHERE p.username = g.username AND p.online AND p.process_id <> $6)
       ), kept AS (
         INSERT INTO peers AS p (username, host, port, certificate, online, last_seen, process_id)
         SELECT g.username, g.host, g.port, g.certificate, true, $5, $6 FROM given g
         WHERE g.username IS NOT NULL AND g.name NOT IN (SELECT name FROM held)
           -- Mostly all is as it was: then not even a row lock (a write) per heartbeat.
           AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.username = g.username AND p.online
             AND p.host = g.host AND p.port = g.port
             AND p.certificate IS NOT DISTINCT FROM g.certificate AND p.process_id = $6)
         ON CONFLICT (username) DO UPDATE SET host = excluded.host, port = excluded.port,
           certificate = excluded.certificate, online = true, last_seen = excluded.last_seen,
           process_id = excluded.process_id
         WHERE NOT (p.online AND p.host = excluded.host AND p.port = excluded.port
           AND p.certificate IS NOT DISTINCT FROM excluded.certificate
           AND p.process_id IS NOT DISTINCT FROM excluded.process_id)
         RETURNING 1
       )
       SELECT g.name, g.name NOT IN (SELECT name FROM held) AS kept FROM given g`,
      [
        peers.map((peer) => peer.username),
        peers.map((peer) => peer.host),
        peers.map((peer) => peer.port),
        peers.map((peer) => peer.certificate),
        now(),
        this.processId,
      ],
    );
    return new Map(rows.map((row) => [String(row.name), row.kept === true]));
  }

  /**
   * The login back-off's counts for these keys, as every process has
   * recorded them, without those whose last failure is older than
   * `forgetAfterMs`; and whether `address` is one `username` logged in from.
   */
  async loginFailures(
    keys: string[],
    username: string,
    address: string,
    at: number,
    forgetAfterMs: number,
  ): Promise<{ counts: Map<string, LoginFailureCount>; known: boolean }> {
    const rows = await this.#all(
      `SELECT key, failures, last_failure, NULL AS known FROM login_failures
       WHERE key = ANY($1::text[]) AND last_failure >= $2
       UNION ALL SELECT NULL, NULL, NULL, true FROM login_known_addresses
       WHERE username = $3 AND address = $4`,
      [keys, at - forgetAfterMs, username.toLowerCase(), address],
    );
    const counts = new Map<string, LoginFailureCount>();
    for (const row of rows) {
      if (row.key === null) continue;
      counts.set(String(row.key), {
        failures: Number(row.failures),
        lastFailure: Number(row.last_failure),
      });
    }
    return { counts, known: rows.some((row) => row.known === true) };
  }

  /**
   * Records one failed login under each key (a key counted in addresses
   * counts `address` once, and remembers at most `maxAddresses`), first
   * forgetting every count whose last failure is older than `forgetAfterMs`.
   */
  async addLoginFailure(
    keys: LoginFailureKey[],
    address: string,
    at: number,
    forgetAfterMs: number,
  ): Promise<void> {
    await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        await tx`WITH gone AS (DELETE FROM login_failures WHERE last_failure < ${at - forgetAfterMs}
            RETURNING key)
          DELETE FROM login_failure_addresses WHERE key IN (SELECT key FROM gone)`;
        for (const { key, byAddress, maxAddresses } of keys) {
          if (byAddress) {
            const [seen] = await tx`SELECT 1 FROM login_failure_addresses
              WHERE key = ${key} AND address = ${address}`;
            if (seen) continue;
            await tx`INSERT INTO login_failure_addresses (key, address)
              SELECT ${key}, ${address}
              WHERE (SELECT COUNT(*) FROM login_failure_addresses WHERE key = ${key})
                < ${maxAddresses ?? 2 ** 31 - 1}
              ON CONFLICT DO NOTHING`;
          }
          await tx`INSERT INTO login_failures (key, failures, last_failure) VALUES (${key}, 1, ${at})
            ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1,
              last_failure = GREATEST(login_failures.last_failure, excluded.last_failure)`;
        }
      })
    );
  }

  /**
   * A correct login: forgets the count under `key` (the name from this
   * address), and remembers `address` as one `username` logs in from (its
   * `keep` newest only).
   */
  async loginSucceeded(
    key: string,
    username: string,
    address: string,
    at: number,
    keep: number,
  ): Promise<void> {
    const user = username.toLowerCase();
    await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        await tx`DELETE FROM login_failures WHERE key = ${key}`;
        await tx`INSERT INTO login_known_addresses (username, address, at)
          VALUES (${user}, ${address}, ${at})
          ON CONFLICT (username, address) DO UPDATE SET at = excluded.at`;
        await tx`DELETE FROM login_known_addresses WHERE username = ${user} AND address NOT IN
          (SELECT address FROM login_known_addresses WHERE username = ${user}
           ORDER BY at DESC, address LIMIT ${keep})`;
      })
    );
  }

  async takeRegistration(
    address: string,
    decide: (
      own: RegistrationBucket | null,
      total: RegistrationBucket | null,
    ) => { own: RegistrationBucket; total: RegistrationBucket },
    fullBefore: number,
  ): Promise<void> {
    const key = `address:${address}`;
    await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        await tx`INSERT INTO register_buckets (key, tokens, at)
          VALUES (${key}, NULL, 0), ('total', NULL, 0) ON CONFLICT DO NOTHING`;
        // Locked in one order (by key) by every process: two registrations never deadlock.
        const rows = await tx`SELECT key, tokens, at FROM register_buckets
          WHERE key IN (${key}, 'total') ORDER BY key FOR UPDATE`;
        const bucket = (name: string) => {
          const row = rows.find((row) => row.key === name);
          return row && row.tokens !== null
            ? { tokens: Number(row.tokens), at: Number(row.at) }
            : null;
        };
        // Throws RATE_LIMITED to take none: the transaction then changes nothing.
        const { own, total } = decide(bucket(key), bucket("total"));
        await tx`UPDATE register_buckets SET tokens = ${own.tokens}, at = ${own.at}
          WHERE key = ${key}`;
        await tx`UPDATE register_buckets SET tokens = ${total.tokens}, at = ${total.at}
          WHERE key = 'total'`;
        // Full buckets hold nothing; one another registration holds locked is left to it.
        await tx`DELETE FROM register_buckets WHERE key IN (SELECT key FROM register_buckets
          WHERE key <> 'total' AND at < ${fullBefore} LIMIT 100 FOR UPDATE SKIP LOCKED)`;
      })
    );
  }

  async ping(): Promise<void> {
    await this.#all("SELECT 1");
  }

  async getPeer(username: string): Promise<PeerRecord | null> {
    const row = await this.#one("SELECT * FROM peers WHERE username = $1", [username]);
    return row ? toPeer(row) : null;
  }

  async peersAt(host: string, port?: number): Promise<PeerRecord[]> {
    const rows = port === undefined
      ? await this.#all("SELECT * FROM peers WHERE host = $1 ORDER BY username", [host])
      : await this.#all(
        "SELECT * FROM peers WHERE host = $1 AND port = $2 ORDER BY username",
        [host, port],
      );
    return rows.map(toPeer);
  }

  async listPeers(): Promise<PeerRecord[]> {
    return (await this.#all("SELECT * FROM peers ORDER BY username")).map(toPeer);
  }

  async setAdmin(username: string, admin: boolean): Promise<boolean> {
    return await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        const changed = await tx`UPDATE users SET admin = ${admin} WHERE username = ${username}`;
        if (!admin) await tx`DELETE FROM api_tokens WHERE username = ${username}`;
        return changed.count > 0;
      })
    );
  }

  async isAdmin(username: string): Promise<boolean> {
    const row = await this.#one("SELECT admin FROM users WHERE username = $1", [username]);
    return row?.admin === true;
  }

  async createApiToken(tokenHash: string, username: string): Promise<void> {
    await this.#run(
      "INSERT INTO api_tokens (token_hash, username, created_at) VALUES ($1, $2, $3)",
      [tokenHash, username, now()],
    );
  }

  async apiTokenUser(tokenHash: string): Promise<string | null> {
    const row = await this.#one(
      `SELECT u.username FROM api_tokens t JOIN users u ON u.username = t.username
       WHERE t.token_hash = $1`,
      [tokenHash],
    );
    return row ? String(row.username) : null;
  }

  /** Counted on each call: PostgreSQL counts an index in a few ms, and no trigger taxes writes. */
  async stats(): Promise<TrackerStats> {
    const row = (await this.#one(
      `SELECT (SELECT COUNT(*) FROM users) AS accounts, (SELECT COUNT(*) FROM peers) AS peers,
         (SELECT COUNT(*) FROM peers WHERE online) AS "peersOnline",
         (SELECT COUNT(*) FROM files) AS shares,
         (SELECT COALESCE(SUM(size), 0) FROM files) AS "bytesPublished"`,
    ))!;
    return toStats(row);
  }

  async listAccounts(): Promise<AccountSummary[]> {
    return (await this.#all(ACCOUNTS_QUERY)).map(toAccountSummary);
  }

  async databaseBytes(): Promise<number | null> {
    const row = await this.#one("SELECT pg_database_size(current_database()) AS bytes");
    return row ? Number(row.bytes) : null;
  }

  async publish(file: FileRecord): Promise<boolean> {
    const outcome = await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        const [counted] = await tx`SELECT members FROM folder_member_counts
          WHERE owner = ${file.owner} AND folder_id = ${file.contentId}`;
        // More members than the files it publishes: forgotten (committed), and refused below.
        const members = Number(counted?.members ?? 0);
        if (members > (file.files ?? 1)) {
          await dropMembers(tx, file.owner, file.contentId);
          return { members };
        }
        const [existing] = await tx`SELECT content_id FROM files
          WHERE owner = ${file.owner} AND name = ${file.name}`;
        await tx`INSERT INTO files (owner, name, type, size, content_id, published_at, files)
          VALUES (${file.owner}, ${file.name}, ${file.type}, ${file.size}, ${file.contentId},
            ${file.publishedAt}, ${file.files ?? 1})
          ON CONFLICT (owner, name) DO UPDATE SET type = excluded.type, size = excluded.size,
            content_id = excluded.content_id, published_at = excluded.published_at,
            files = excluded.files`;
        if (existing) await dropStaleMembers(tx, file.owner, String(existing.content_id));
        return { replaced: existing !== undefined };
      })
    );
    if (outcome.members !== undefined) {
      throw membersPastCount(file.contentId, outcome.members, file.files ?? 1);
    }
    return outcome.replaced;
  }

  async unpublish(owner: string, name: string): Promise<boolean> {
    return await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        const [existing] = await tx`DELETE FROM files WHERE owner = ${owner} AND name = ${name}
          RETURNING content_id`;
        if (!existing) return false;
        await dropStaleMembers(tx, owner, String(existing.content_id));
        return true;
      })
    );
  }

  async addFolderMembers(
    owner: string,
    folderId: string,
    contentIds: string[],
    limits: MemberLimits = MEMBER_LIMITS,
  ): Promise<void> {
    await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        // One account's batches (through any process) one at a time, so the counts add up.
        // NO KEY: the account's other writes (sessions, files) wait for none of it.
        await tx`SELECT 1 FROM users WHERE username = ${owner} FOR NO KEY UPDATE`;
        const [had] = await tx`SELECT members FROM folder_member_counts
          WHERE owner = ${owner} AND folder_id = ${folderId}`;
        const [published] = await tx`SELECT MAX(files) AS files FROM files
          WHERE owner = ${owner} AND content_id = ${folderId}`;
        if (published.files === null && had === undefined) {
          // A folder on its way to being published: the account's oldest such go first.
          const pending = await tx`SELECT folder_id FROM folder_member_counts s
            WHERE owner = ${owner} AND NOT EXISTS
              (SELECT 1 FROM files f WHERE f.owner = s.owner AND f.content_id = s.folder_id)
            ORDER BY touched_at, folder_id`;
          const over = Math.max(0, pending.length - limits.pendingFolders + 1);
          for (const row of pending.slice(0, over)) {
            await dropMembers(tx, owner, String(row.folder_id));
          }
        }
        const added = await tx`INSERT INTO folder_members (owner, folder_id, content_id)
          SELECT ${owner}, ${folderId}, unnest(${contentIds}::text[]) ON CONFLICT DO NOTHING`;
        const members = Number(had?.members ?? 0) + added.count;
        const [sum] = await tx`SELECT COALESCE(SUM(members), 0) AS n
          FROM folder_member_counts WHERE owner = ${owner} AND folder_id <> ${folderId}`;
        let others = Number(sum.n);
        if (members + others > limits.perAccount) {
          // Past the account's limit: the members of other folders never published go first.
          const pending = await tx`SELECT folder_id, members FROM folder_member_counts s
            WHERE owner = ${owner} AND folder_id <> ${folderId} AND NOT EXISTS
              (SELECT 1 FROM files f WHERE f.owner = s.owner AND f.content_id = s.folder_id)
            ORDER BY touched_at, folder_id`;
          const room = pendingToForget(
            pending.map((row) => ({
              folderId: String(row.folder_id),
              members: Number(row.members),
            })),
            members,
            others,
            limits,
          );
          for (const id of room.forget) await dropMembers(tx, owner, id);
          others = room.others;
        }
        checkMembers(members, others, published.files, limits);
        await tx`INSERT INTO folder_member_counts (owner, folder_id, members, touched_at)
          VALUES (${owner}, ${folderId}, ${members}, ${now()})
          ON CONFLICT (owner, folder_id) DO UPDATE SET members = excluded.members,
            touched_at = excluded.touched_at`;
      })
    );
  }

  async holdersOf(contentIds: string[], perId: number): Promise<Map<string, PeerRecord[]>> {
    const ids = [...new Set(contentIds)];
    // One round trip and set-based joins for the whole batch (a query per id, even as one
    // LATERAL join, took 6 to 10 times as long for 4,096 ids). A random sample of each id's
    // holders, in one random order of the accounts for the whole batch (md5 of a salt and the
    // name), as the SQLite store's.
    const rows = ids.length === 0 ? [] : await this.#all(
      `WITH ids AS (SELECT unnest($1::text[]) AS held),
       pairs AS (
         SELECT ids.held, f.owner FROM ids JOIN files f ON f.content_id = ids.held
         UNION SELECT ids.held, m.owner FROM ids
           JOIN folder_members m ON m.content_id = ids.held
           JOIN files f ON f.owner = m.owner AND f.content_id = m.folder_id),
       ranked AS (
         SELECT pairs.held, p.*,
           row_number() OVER (PARTITION BY pairs.held ORDER BY md5($3 || p.username)) AS rank
         FROM pairs JOIN peers p ON p.username = pairs.owner WHERE p.online)
       SELECT * FROM ranked WHERE rank <= $2`,
      [ids, perId, crypto.randomUUID()],
    );
    const holders = new Map<string, PeerRecord[]>(ids.map((id) => [id, []]));
    for (const row of rows) holders.get(String(row.held))!.push(toPeer(row));
    return holders;
  }

  async recordActivity(minutes: MinuteActivity[], forgetBefore: string): Promise<void> {
    await this.#guard(() =>
      this.#sql.begin(async (tx) => {
        if (minutes.length > 0) {
          await tx`INSERT INTO activity (process, minute, publishes, logins, logins_failed, tickets)
            SELECT ${this.processId}, * FROM unnest(
              ${minutes.map((minute) => minute.time)}::text[],
              ${minutes.map((minute) => minute.publishes)}::int[],
              ${minutes.map((minute) => minute.logins)}::int[],
              ${minutes.map((minute) => minute.loginsFailed)}::int[],
              ${minutes.map((minute) => minute.tickets)}::int[])
            ON CONFLICT (minute, process) DO UPDATE SET publishes = excluded.publishes,
              logins = excluded.logins, logins_failed = excluded.logins_failed,
              tickets = excluded.tickets`;
        }
        await tx`DELETE FROM activity WHERE minute < ${forgetBefore}`;
      })
    );
  }

  async activitySince(since: string): Promise<MinuteActivity[]> {
    const rows = await this.#all(
      `SELECT minute, SUM(publishes) AS publishes, SUM(logins) AS logins,
         SUM(logins_failed) AS logins_failed, SUM(tickets) AS tickets
       FROM activity WHERE minute >= $1 GROUP BY minute ORDER BY minute`,
      [since],
    );
    return rows.map(toActivity);
  }

  filesWithContent(contentId: string, limit: number): Promise<FileListing[]> {
    return this.#listings(
      `${LISTING} WHERE f.content_id = $1 ORDER BY p.online DESC NULLS LAST, f.owner, f.name
       LIMIT $2`,
      [contentId, limit],
    );
  }

  filesOf(owner: string): Promise<FileListing[]> {
    return this.#listings(`${LISTING} WHERE f.owner = $1 ORDER BY f.name`, [owner]);
  }

  async filesNamed(name: string, page: Page = {}): Promise<FileListing[]> {
    return await this.#listings(
      `${LISTING} WHERE f.name = $1
         AND ($2::text IS NULL OR shoal_fold(f.owner) = shoal_fold($2::text))
       ORDER BY p.online DESC NULLS LAST, f.owner LIMIT $3`,
      [await this.#spellingOf(name), page.owner ?? null, page.limit ?? null],
    );
  }

  /**
   * As the SQLite store's: the exact spelling if published so, else the one
   * differing in case; in one round trip (the exact spelling sorts first).
   */
  async #spellingOf(name: string): Promise<string> {
    const rows = await this.#all(
      `SELECT name FROM (SELECT DISTINCT name FROM files WHERE shoal_fold(name) = shoal_fold($1)) n
       ORDER BY name = $1 DESC, name LIMIT 10`,
      [name],
    );
    if (rows.length > 0 && rows[0].name === name) return name;
    if (rows.length > 1) throw ambiguousName(name, rows.map((row) => String(row.name)));
    return rows.length === 1 ? String(rows[0].name) : name;
  }

  async countFilesNamed(name: string, owner?: string): Promise<number> {
    return await this.#count(
      `SELECT COUNT(*) AS n FROM files WHERE name = $1
         AND ($2::text IS NULL OR shoal_fold(owner) = shoal_fold($2::text))`,
      [await this.#spellingOf(name), owner ?? null],
    );
  }

  async onlineOwnersOf(contentId: string, page: Page = {}): Promise<PeerRecord[]> {
    const rows = await this.#all(
      `SELECT p.* FROM peers p WHERE p.online AND p.username IN (${HOLDERS})
         AND ($2::text IS NULL OR shoal_fold(p.username) = shoal_fold($2::text))
       ORDER BY random() LIMIT $3`,
      [contentId, page.owner ?? null, page.limit ?? null],
    );
    return rows.map(toPeer);
  }

  countOnlineOwnersOf(contentId: string, owner?: string): Promise<number> {
    return this.#count(
      `SELECT COUNT(*) AS n FROM peers p WHERE p.online AND p.username IN (${HOLDERS})
         AND ($2::text IS NULL OR shoal_fold(p.username) = shoal_fold($2::text))`,
      [contentId, owner ?? null],
    );
  }

  searchFiles(text: string, limit = 500): Promise<FileListing[]> {
    return this.#listings(
      `${LISTING} WHERE shoal_fold(f.name) LIKE shoal_fold($1) ESCAPE '\\'
       ORDER BY f.name, p.online DESC NULLS LAST, f.owner LIMIT $2`,
      [likePattern(text), limit],
    );
  }

  countSearch(text: string): Promise<number> {
    return this.#count(
      "SELECT COUNT(*) AS n FROM files WHERE shoal_fold(name) LIKE shoal_fold($1) ESCAPE '\\'",
      [likePattern(text)],
    );
  }

  allFiles(): Promise<FileListing[]> {
    return this.#listings(`${LISTING} ORDER BY f.owner, f.name`);
  }

  async #count(text: string, params: unknown[]): Promise<number> {
    return Number((await this.#one(text, params))!.n);
  }

  async #listings(text: string, params: unknown[] = []): Promise<FileListing[]> {
    return (await this.#all(text, params)).map(toListing);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sql.end({ timeout: 2 });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Forgets the members of `owner`'s folder `folderId` once no publication of theirs holds it. */
async function dropStaleMembers(tx: postgres.TransactionSql, owner: string, folderId: string) {
  const [held] = await tx`SELECT 1 FROM files
    WHERE owner = ${owner} AND content_id = ${folderId} LIMIT 1`;
  if (!held) await dropMembers(tx, owner, folderId);
}

/** Forgets the members of `owner`'s folder `folderId`, and their count. */
async function dropMembers(tx: postgres.TransactionSql, owner: string, folderId: string) {
  await tx`DELETE FROM folder_members WHERE owner = ${owner} AND folder_id = ${folderId}`;
  await tx`DELETE FROM folder_member_counts WHERE owner = ${owner} AND folder_id = ${folderId}`;
}
