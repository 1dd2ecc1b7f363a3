/**
 * One tracker as two processes, in the test's own process: two TLS trackers
 * on one store object, with one identity (certificate, key, ticket key), on
 * two loopback ports. Either can be stopped alone, as a process that dies;
 * the data stays in the shared store. (Two trackers on one SQLite file would
 * each open it; sharing the store object stands in for a shared PostgreSQL.)
 */
import { join } from "node:path";
import { formatAddress } from "../../lib/protocol/address.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "../../lib/identity/key_files.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { CHEAP_COST } from "./tracker.ts";

/** One of the pair: its address, and a stop that closes only it. */
export interface PairedTracker {
  /** `127.0.0.1:PORT`. */
  address: string;
  /** Stops listening and closes its connections, as a dying process would. */
  stop(): Promise<void>;
}

/** Two trackers sharing one store and one identity; disposing stops both and closes the store. */
export interface TrackerPair extends AsyncDisposable {
  a: PairedTracker;
  b: PairedTracker;
  /** `A,B`, for `--tracker`. */
  both: string;
  /** The fingerprinted certificate both present (PEM). */
  certificate: string;
}

/** Starts the pair on the database and identity in `dir` (made on first use). */
export async function startTrackerPair(dir: string): Promise<TrackerPair> {
  const store = SqliteTrackerStore.open(join(dir, "tracker.db"));
  const tls = await loadOrCreateIdentity(dir, "tracker.db.tls-");
  const ticketKey = await loadOrCreateTicketKey(dir, "tracker.db.ticket-key.pem");
  const passwords = new PasswordHasher({ cost: CHEAP_COST });
  const started: Tracker[] = [];
  const start = async (): Promise<PairedTracker> => {
    const tracker = new Tracker(store, { tls, ticketKey, passwords, warn: () => {} });
    started.push(tracker);
    const bound = await tracker.listen({ host: "127.0.0.1", port: 0 });
    let stopped: Promise<void> | null = null;
    return { address: formatAddress(bound), stop: () => stopped ??= tracker.close() };
  };
  try {
    const a = await start();
    const b = await start();
    return {
      a,
      b,
      both: `${a.address},${b.address}`,
      certificate: tls.certificate,
      async [Symbol.asyncDispose]() {
        await a.stop();
        await b.stop();
        await store.close();
      },
    };
  } catch (error) {
    for (const tracker of started) await tracker.close();
    await store.close();
    throw error;
  }
}
