/**
 * What both SQLite databases (the tracker's and each peer's) share: opening,
 * keeping them private, and migrating.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { ShoalError } from "../protocol/errors.ts";
import { keepFilesPrivate, POSIX } from "./private_files.ts";

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** Where to say that existing files were made private. @default {console.error} */
  warn?: (line: string) => void;
  /** What the database holds, for that warning. @default {"secrets"} */
  holds?: string;
}

/**
 * Creates the database file readable by its owner only before SQLite opens
 * it (SQLite gives its -wal and -shm files the same mode), and tightens an
 * existing one and its -wal and -shm files, saying so in one line.
 */
function keepPrivate(path: string, options: OpenDatabaseOptions): void {
  if (!POSIX || path === ":memory:") return;
  try {
    Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  keepFilesPrivate(
    [path, `${path}-wal`, `${path}-shm`],
    options.holds ?? "secrets",
    options.warn ?? console.error,
  );
}

/**
 * Opens a database in WAL mode (so a running server and one-shot commands
 * can use it at once), readable by its owner only (mode 0600, tightened with
 * a warning if it was not), and brings its schema up to date. Each migration
 * upgrades the schema by one `PRAGMA user_version`; the version is re-read
 * inside each write transaction, so two processes opening a new file at once
 * do not both apply a step.
 *
 * @example
 * ```ts
 * const db = openDatabase("tracker.db", ["CREATE TABLE users (...)"]);
 * ```
 */
export function openDatabase(
  path: string,
  migrations: readonly string[],
  options: OpenDatabaseOptions = {},
): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    keepPrivate(path, options);
    db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;");
    db.exec("PRAGMA synchronous = NORMAL;");
    for (let step = 0; step < migrations.length; step++) {
      db.exec("BEGIN IMMEDIATE");
      try {
        const version = schemaVersion(db);
        if (version > migrations.length) {
          throw new ShoalError(
            "IO",
            `${path} has schema version ${version}, newer than this program's ${migrations.length}`,
          );
        }
        if (version === step) {
          db.exec(migrations[step]);
          db.exec(`PRAGMA user_version = ${step + 1}`);
        }
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    }
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof ShoalError) throw error;
    throw new ShoalError("IO", `cannot open database ${path}: ${(error as Error).message}`);
  }
}

function schemaVersion(db: DatabaseSync): number {
  return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/**
 * Prepares each SQL text once per connection: preparing costs more than
 * running, and some statements run for every piece served or every lookup.
 */
export class Statements {
  readonly #db: DatabaseSync;
  readonly #prepared = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  get(sql: string): StatementSync {
    let statement = this.#prepared.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#prepared.set(sql, statement);
    }
    return statement;
  }
}
