import { delay } from "../async/delay.ts";
import { type Address, formatAddress } from "../protocol/address.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { HEARTBEAT_MS } from "../protocol/messages.ts";
import { certificateClaim } from "../identity/certificate.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import type { PeerHome } from "./home.ts";
import {
  connectSession,
  isDown,
  type TrackerClient,
  type TrackerEndpoint,
} from "./tracker_link.ts";

/** Options of a {@link Presence}. */
export interface PresenceOptions {
  tracker: TrackerEndpoint;
  home: PeerHome;
  /** The port this peer serves on. */
  port: number;
  /**
   * The identity this peer serves with: its certificate, for the tracker to
   * vouch for, with its key's signature for the account; none in plaintext.
   */
  identity?: TlsIdentity;
  /** Hands over the tracker's ticket key, each time the tracker is reached. */
  onTicketKey: (base64: string) => Promise<void>;
  /** The host to announce; unset, the tracker uses the address it sees. */
  advertise?: string;
  /** @default {HEARTBEAT_MS} */
  heartbeatMs?: number;
  /** Status lines: online, lost, retrying. */
  log: (line: string) => void;
  /** Called when the session has ended or the tracker refused the announcement; presence stops for good. */
  onLoggedOut: (error: ShoalError) => void;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 5_000;

/**
 * Keeps a serving peer online: one control connection to the tracker with
 * heartbeats. When the connection is lost it moves to the tracker's other
 * addresses at once (its processes share the session: no new login), and
 * with none answering retries all of them with exponential backoff.
 *
 * @example
 * ```ts
 * const presence = new Presence({ tracker, home, port, log: console.log, onLoggedOut });
 * presence.start();
 * await presence.stop();
 * ```
 */
export class Presence {
  readonly #options: PresenceOptions;
  readonly #stop = new AbortController();
  /** Tells the tracker that a reconnection is this same process, not a second one. */
  readonly #instance = crypto.randomUUID();
  #client: TrackerClient | null = null;
  #running: Promise<void> | null = null;
  #wasOnline = false;

  constructor(options: PresenceOptions) {
    this.#options = options;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /**
   * Whether the tracker ever took this peer online (a second serve of an
   * account online elsewhere waits, and never is).
   */
  get wasOnline(): boolean {
    return this.#wasOnline;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#client?.close();
    await this.#running;
  }

  async #run(): Promise<void> {
    const { tracker, home, port, advertise, log } = this.#options;
    const heartbeatMs = this.#options.heartbeatMs ?? HEARTBEAT_MS;
    const several = tracker.addresses.length > 1;
    let retryMs = FIRST_RETRY_MS;
    /** Where the announced connection is, while it is up. */
    let online: Address | null = null;
    /** Where the last announced connection was, until the peer is online again. */
    let lost: Address | null = null;
    /** Whether the loss was said (with several addresses, only once the others fail too). */
    let saidLost = false;
    let refused = false;
    let firstAttempt = true;
    /** The code of the last error said while offline, so that a new kind of failure is said once. */
    let saidCode: string | null = null;
    while (!this.#stop.signal.aborted) {
      try {
        const { tracker: client, username } = await connectSession(home, tracker, {
          lost: lost && !saidLost ? lost : undefined,
        });
        this.#client = client;
        if (this.#stop.signal.aborted) break;
        const { address, ticketKey } = await client.call("announce", {
          port,
          host: advertise,
          instance: this.#instance,
          ...certificateClaim(this.#options.identity, username),
        });
        await this.#options.onTicketKey(ticketKey);
        const at = formatAddress(client.address);
        const state = `online as ${username} at tracker ${at}; reachable at ${address}`;
        // A move to another of the tracker's addresses is said once, in one line.
        log(
          lost && formatAddress(lost) !== at
            ? `tracker ${formatAddress(lost)} lost; now connected to ${at} (${state})`
            : state,
        );
        online = client.address;
        this.#wasOnline = true;
        lost = null;
        saidLost = false;
        refused = false;
        saidCode = null;
        retryMs = FIRST_RETRY_MS;
        // Heartbeats until stopped; a connection the tracker ends (say, a logout elsewhere)
        // is noticed at once, not at the next heartbeat.
        while (await this.#sleep(heartbeatMs, client.ended)) {
          await client.call("heartbeat", {});
        }
      } catch (caught) {
        const error = toShoalError(caught);
        if (this.#stop.signal.aborted) break;
        // A refused announcement (say, an --advertise host the tracker does not allow) would be
        // refused again: stop and say why, as for an ended session.
        if (error.code === "AUTH_REQUIRED" || error.code === "INVALID_INPUT") {
          this.#options.onLoggedOut(error);
          break;
        }
        // A connection that drops moves to the tracker's other addresses at once (the loss is
        // said only if none answers); an error the tracker answers with is retried where it is.
        const dropped = online !== null && isDown(error);
        if (online) lost = online;
        online = null;
        if (dropped && several) continue;
        if (error.code === "ALREADY_ONLINE") {
          if (!refused) log(`${error.message}; retrying until it stops`);
          refused = true;
        } else if (error.code === "STORE_UNAVAILABLE") {
          // The tracker answered: it is its database that is away, said once until online.
          if (!refused) log("not online yet: the tracker cannot reach its database; retrying");
          refused = true;
        } else if (lost && !saidLost) {
          log(`lost the tracker at ${formatAddress(lost)} (${error.message}); reconnecting`);
          saidLost = true;
          saidCode = error.code;
        } else if (!firstAttempt && !isDown(error) && error.code !== saidCode) {
          // A tracker that answers again but refuses (say, with another certificate) would
          // otherwise leave a serving peer silent while it retries forever: said once, with its hint.
          const hint = error.hint ? ` (${error.hint})` : "";
          log(`still not online: ${error.message}${hint}; retrying`);
          saidCode = error.code;
        } else if (firstAttempt) {
          // "cannot reach the tracker at any of its 2 addresses: ..." needs no second "cannot reach".
          log(
            error.message.startsWith("cannot reach ")
              ? `${error.message}; retrying`
              : `cannot reach the tracker (${error.message}); retrying`,
          );
          saidCode = error.code;
        }
        await this.#sleep(retryMs);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      } finally {
        firstAttempt = false;
        this.#client?.close();
        this.#client = null;
      }
    }
  }

  /**
   * Waits, or returns false at once when stopped; throws the connection's
   * error at once if `ended` settles first.
   */
  async #sleep(ms: number, ended?: Promise<ShoalError>): Promise<boolean> {
    const stop = this.#stop.signal;
    const lost = new AbortController();
    ended?.then((error) => lost.abort(error));
    try {
      await delay(ms, { signal: AbortSignal.any([stop, lost.signal]) });
      return true;
    } catch (error) {
      if (stop.aborted) return false;
      throw error;
    }
  }
}
