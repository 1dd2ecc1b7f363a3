/**
 * The tracker's event feed: what happened, typed, in order, kept in a bounded
 * ring buffer for late readers (the dashboard, `/api/v1/events`) and pushed
 * to subscribers (the log, the event stream, the metrics) as it happens.
 * Nothing secret goes in: never a password, a session token or a ticket.
 */

/** Why a peer went offline. */
export type OfflineReason =
  | "disconnected"
  | "replaced"
  | "logout"
  | "session revoked"
  | "unregistered";

/** The event types and the fields each carries besides `user`. */
export interface EventFields {
  start: { version: string; address: string };
  "peer.online": { address: string };
  "peer.offline": { reason: OfflineReason };
  "login.ok": { address: string; via: "protocol" | "dashboard" };
  "login.failed": { address: string; via: "protocol" | "dashboard"; reason: string };
  register: { address: string };
  unregister: Record<never, never>;
  publish: { name: string; contentId: string; size: number; replaced: boolean };
  unpublish: { name: string };
  /** A download ticket issued to `user` for `contentId`, naming its `owner` if asked for one. */
  ticket: { contentId: string; for: string; sources: number };
  /** An operator's action: `action` what, `target` on whom. */
  admin: { action: string; target: string | null; detail?: string };
}

export type EventType = keyof EventFields;

/** One event as the feed holds it and the API serves it. */
export type TrackerEvent = {
  [T in EventType]: { seq: number; time: string; type: T; user: string | null } & EventFields[T];
}[EventType];

/** The most events the feed keeps by default. */
export const DEFAULT_EVENT_CAPACITY = 1000;

/**
 * A bounded, ordered feed of {@link TrackerEvent}s. `emit` never throws: a
 * subscriber that fails is reported through `onSubscriberError` and kept.
 *
 * @example
 * ```ts
 * const feed = new EventFeed();
 * const stop = feed.subscribe((event) => console.log(event.type));
 * feed.emit("login.ok", "alice", { address: "127.0.0.1", via: "protocol" });
 * stop();
 * ```
 */
export class EventFeed {
  readonly #capacity: number;
  readonly #ring: TrackerEvent[] = [];
  /** Where the oldest kept event is in the ring, once it is full. */
  #head = 0;
  #seq = 0;
  readonly #subscribers = new Set<(event: TrackerEvent) => void>();
  readonly #now: () => Date;
  readonly #onSubscriberError: (error: unknown) => void;

  constructor(
    options: {
      /** @default {1000} */
      capacity?: number;
      /** @default {() => new Date()} */
      now?: () => Date;
      /** @default {console.error} */
      onSubscriberError?: (error: unknown) => void;
    } = {},
  ) {
    this.#capacity = Math.max(1, options.capacity ?? DEFAULT_EVENT_CAPACITY);
    this.#now = options.now ?? (() => new Date());
    this.#onSubscriberError = options.onSubscriberError ?? ((error) => console.error(error));
  }

  /** Records an event and hands it to every subscriber; returns it. */
  emit<T extends EventType>(type: T, user: string | null, fields: EventFields[T]): TrackerEvent {
    const event = {
      seq: ++this.#seq,
      time: this.#now().toISOString(),
      type,
      user,
      ...fields,
    } as TrackerEvent;
    if (this.#ring.length < this.#capacity) {
      this.#ring.push(event);
    } else {
      this.#ring[this.#head] = event;
      this.#head = (this.#head + 1) % this.#capacity;
    }
    for (const subscriber of this.#subscribers) {
      try {
        subscriber(event);
      } catch (error) {
        this.#onSubscriberError(error);
      }
    }
    return event;
  }

  /** Calls `subscriber` with every event from now on; returns the unsubscribe function. */
  subscribe(subscriber: (event: TrackerEvent) => void): () => void {
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  /** How many subscribers listen now. */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** The sequence number of the newest event (0 before any). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** The kept events with `seq` above `afterSeq`, oldest first, at most the newest `limit`. */
  recent(options: { afterSeq?: number; limit?: number } = {}): TrackerEvent[] {
    const ordered = [...this.#ring.slice(this.#head), ...this.#ring.slice(0, this.#head)];
    const after = options.afterSeq ?? 0;
    const kept = ordered.filter((event) => event.seq > after);
    const limit = options.limit ?? this.#capacity;
    return limit >= kept.length ? kept : kept.slice(kept.length - Math.max(0, limit));
  }
}
