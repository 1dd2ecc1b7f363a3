/**
 * The tracker's `--db` option and opening the store it names: a PostgreSQL
 * URL, or else a SQLite file. Shared by `serve` and the admin commands.
 */
import { Option } from "commander";
import { isAbsolute, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { SqliteTrackerStore } from "../tracker/sqlite_store.ts";
import { isPostgresUrl } from "../tracker/postgres_connection.ts";
import { PostgresTrackerStore } from "../tracker/postgres_store.ts";

/** `--db <file|url>` (SHOAL_TRACKER_DB), a new Option each call: commander takes one per command. */
export const DB_OPTION = (): Option =>
  new Option(
    "--db <file|url>",
    "the tracker's SQLite database file, or a PostgreSQL URL (postgres://user@host:port/db; " +
      "parts left out come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)",
  ).env("SHOAL_TRACKER_DB").default("tracker.db");

/**
 * Opens the store `db` names: a PostgreSQL URL, or else a SQLite file (which
 * an admin command must find, not create).
 */
export async function openTrackerStore(
  db: string,
  options: { mustExist?: boolean; warn?: (line: string) => void; deadAfterMs?: number } = {},
): Promise<TrackerStore & AsyncDisposable> {
  if (isPostgresUrl(db)) {
    return await PostgresTrackerStore.open(db, {
      warn: options.warn,
      deadAfterMs: options.deadAfterMs,
      mustExist: options.mustExist,
    });
  }
  // An admin command reads a tracker's database; it must not create an empty one.
  if (options.mustExist && !await Deno.stat(db).then((info) => info.isFile, () => false)) {
    const where = isAbsolute(db) ? db : `${db} (${resolve(db)})`;
    throw new ShoalError("NOT_FOUND", `no tracker database at ${where}`, {
      hint: "run it in the folder the tracker was started in, or pass --db FILE with the " +
        "database its `serve` printed (listening on ... (database FILE)), or set SHOAL_TRACKER_DB",
    });
  }
  return SqliteTrackerStore.open(db, { warn: options.warn });
}
