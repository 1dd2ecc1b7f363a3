/**
 * A tracker in the test's own process, plaintext, on a fresh database, with a
 * cheap password cost so tests can log in by the dozen; and clients for it.
 */
import { type Address, formatAddress } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS, type TrackerMethods } from "../../lib/protocol/messages.ts";
import { loadOrCreateTicketKey } from "../../lib/protocol/tickets.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { SqliteTrackerStore } from "../../lib/tracker/store.ts";
import { Tracker, type TrackerOptions } from "../../lib/tracker/tracker.ts";

/** scrypt's smallest sensible N: a hash in well under a millisecond. */
export const CHEAP_COST = 1024;

/** A running in-process tracker; `close` stops it and removes its folder. */
export interface InProcessTracker extends AsyncDisposable {
  tracker: Tracker;
  store: SqliteTrackerStore;
  passwords: PasswordHasher;
  /** Where it listens; with `host: "::"`, reachable at 127.0.0.1 and at ::1. */
  port: number;
  /** A client from `host` (127.0.0.1 unless given); closed with the tracker at the latest. */
  connect(host?: string): Promise<ProtocolClient<TrackerMethods>>;
  /** The warnings the tracker printed. */
  warnings: string[];
}

/**
 * Starts a tracker on port 0. Listening on `::` (dual stack) lets a test
 * connect from two loopback addresses, 127.0.0.1 and ::1, as two hosts.
 *
 * @example
 * ```ts
 * await using server = await startTracker();
 * using client = await server.connect();
 * ```
 */
export async function startTracker(
  options: Partial<TrackerOptions> & { host?: string } = {},
): Promise<InProcessTracker> {
  const dir = await Deno.makeTempDir({ prefix: "shoal-tracker-test-" });
  const store = SqliteTrackerStore.open(`${dir}/tracker.db`);
  const warnings: string[] = [];
  const passwords = options.passwords ?? new PasswordHasher({ cost: CHEAP_COST });
  const tracker = new Tracker(store, {
    ticketKey: await loadOrCreateTicketKey(dir, "ticket-key.pem"),
    warn: (line) => warnings.push(line),
    ...options,
    passwords,
  });
  const { port } = await tracker.listen({ host: options.host ?? "127.0.0.1", port: 0 });
  const clients: ProtocolClient<TrackerMethods>[] = [];
  return {
    tracker,
    store,
    passwords,
    port,
    warnings,
    async connect(host = "127.0.0.1") {
      const address: Address = { host, port };
      const client = await ProtocolClient.connect(address, TRACKER_METHODS, {
        agent: `test-client (${formatAddress(address)})`,
        expect: "tracker",
      });
      clients.push(client);
      return client;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) client.close();
      await tracker.close();
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
