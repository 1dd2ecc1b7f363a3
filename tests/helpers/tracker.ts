/**
 * A tracker in the test's own process, plaintext, on port 0, with a cheap
 * password cost so tests can log in by the dozen; and clients for it.
 */
import { type Address, formatAddress } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS, type TrackerMethods } from "../../lib/protocol/messages.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { SqliteTrackerStore } from "../../lib/tracker/sqlite_store.ts";
import { Tracker, type TrackerOptions } from "../../lib/tracker/tracker.ts";

/** scrypt's smallest sensible N: a hash in well under a millisecond. */
export const CHEAP_COST = 1024;

export type TrackerTestClient = ProtocolClient<TrackerMethods>;

/** A running in-process tracker; disposing it closes its clients, tracker and store. */
export interface TestTracker extends AsyncDisposable {
  tracker: Tracker;
  store: SqliteTrackerStore;
  passwords: PasswordHasher;
  /** Where it listens; with `host: "::"`, reachable at 127.0.0.1 and at ::1. */
  address: Address;
  port: number;
  /** Its database file. */
  db: string;
  /** The warnings the tracker printed. */
  warnings: string[];
  /** A client from `host` (127.0.0.1 unless given), not logged in; closed with the tracker at the latest. */
  connect(host?: string): Promise<TrackerTestClient>;
  /** Creates the account (if new) and returns a client logged in as it. */
  login(username: string): Promise<TrackerTestClient>;
}

/** A fresh Ed25519 ticket key, as the tracker keeps in its folder. */
export async function testTicketKey(): Promise<TrackerOptions["ticketKey"]> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKeyBase64: btoa(String.fromCharCode(...raw)) };
}

const PASSWORD = "correct horse battery";

/**
 * Starts a tracker (plaintext unless given `tls`) on `host` (127.0.0.1 by
 * default) and `port` (0 by default), over
 * `db` (a new database in a temporary folder, removed afterwards, by
 * default). Listening on `::` (dual stack) lets a test connect from two
 * loopback addresses, 127.0.0.1 and ::1, as two hosts. Disposing it twice
 * is harmless.
 *
 * @example
 * ```ts
 * await using running = await startTestTracker();
 * const alice = await running.login("alice");
 * ```
 */
export async function startTestTracker(
  options: Partial<TrackerOptions> & { db?: string; host?: string; port?: number } = {},
): Promise<TestTracker> {
  const dir = options.db === undefined
    ? await Deno.makeTempDir({ prefix: "shoal-tracker-" })
    : null;
  const db = options.db ?? `${dir}/tracker.db`;
  const store = SqliteTrackerStore.open(db);
  const warnings: string[] = [];
  const passwords = options.passwords ?? new PasswordHasher({ cost: CHEAP_COST });
  const tracker = new Tracker(store, {
    warn: (line) => warnings.push(line),
    ...options,
    ticketKey: options.ticketKey ?? await testTicketKey(),
    passwords,
  });
  const address = await tracker.listen({
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
  });
  const clients: TrackerTestClient[] = [];
  let disposed = false;
  const connect = async (host = "127.0.0.1") => {
    const from: Address = { host, port: address.port };
    const client = await ProtocolClient.connect(from, TRACKER_METHODS, {
      agent: `test-client (${formatAddress(from)})`,
      expect: "tracker",
      tls: options.tls && { certificate: options.tls.certificate, whose: "the test tracker's" },
    });
    clients.push(client);
    return client;
  };
  return {
    tracker,
    store,
    passwords,
    address,
    port: address.port,
    db,
    warnings,
    connect,
    async login(username: string) {
      if (!await store.getUser(username)) {
        await store.createUser(username, await passwords.hash(PASSWORD));
      }
      const client = await connect();
      await client.call("login", { username, password: PASSWORD });
      return client;
    },
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      for (const client of clients) client.close();
      await tracker.close();
      await store.close();
      if (dir !== null) await Deno.remove(dir, { recursive: true });
    },
  };
}
