/** An in-process tracker on 127.0.0.1 port 0, and logged-in clients of it. */
import type { Address } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS, type TrackerMethods } from "../../lib/protocol/messages.ts";
import { SqliteTrackerStore } from "../../lib/tracker/store.ts";
import { Tracker, type TrackerOptions } from "../../lib/tracker/tracker.ts";
import { hashPassword } from "../../lib/tracker/passwords.ts";

export type TrackerTestClient = ProtocolClient<TrackerMethods>;

/** A running in-process tracker over a database in a temporary folder. */
export interface TestTracker extends AsyncDisposable {
  tracker: Tracker;
  store: SqliteTrackerStore;
  address: Address;
  db: string;
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
 * Starts a plaintext tracker on 127.0.0.1:0 over `db` (a new database in a
 * temporary folder by default). Disposing it closes clients, tracker, store.
 */
export async function startTestTracker(
  options: Partial<TrackerOptions> & { db?: string } = {},
): Promise<TestTracker> {
  const dir = options.db === undefined
    ? await Deno.makeTempDir({ prefix: "shoal-tracker-" })
    : null;
  const db = options.db ?? `${dir}/tracker.db`;
  const store = SqliteTrackerStore.open(db);
  const tracker = new Tracker(store, {
    warn: () => {},
    ...options,
    ticketKey: options.ticketKey ?? await testTicketKey(),
  });
  const address = await tracker.listen({ host: "127.0.0.1", port: 0 });
  const clients: TrackerTestClient[] = [];
  const passwordHash = await hashPassword(PASSWORD);
  return {
    tracker,
    store,
    address,
    db,
    async login(username: string) {
      if (!store.getUser(username)) store.createUser(username, passwordHash);
      const client = await ProtocolClient.connect(address, TRACKER_METHODS, {
        agent: "shoal-test/0",
      });
      clients.push(client);
      await client.call("login", { username, password: PASSWORD });
      return client;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) client.close();
      await tracker.close();
      store.close();
      if (dir !== null) await Deno.remove(dir, { recursive: true });
    },
  };
}
