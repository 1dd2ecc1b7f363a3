/**
 * Upload slots: at most N downloaders are sent piece data at once, the rest
 * wait in a first-come queue and are told their place. A downloader is one
 * connection to the piece server (a fetch opens one connection to each of
 * its sources, and a swarm one per content, so a connection is one
 * download from this peer). Connections are counted per user too (the user
 * its ticket names): one user holds at most half the slots and waits in at
 * most 4 places, however many connections it opens. While others wait, a
 * holder that reads slower than a minimum pace gives its slot to the next in
 * line (it may queue again), so slow readers cannot keep every slot.
 */
import { ShoalError } from "../protocol/errors.ts";

/** Default number of downloaders served piece data at once (`serve --upload-slots`). */
export const DEFAULT_UPLOAD_SLOTS = 4;
/** Most downloaders waiting for a slot; the next is answered BUSY. */
export const MAX_QUEUE = 64;
/** A slot whose holder asks for nothing this long is given to the next in line. */
export const SLOT_IDLE_MS = 1_000;
/**
 * A queued downloader that does not ask about its place this long is
 * removed from the queue (it polls every {@link QUEUE_POLL_MS}).
 */
export const QUEUE_IDLE_MS = 10_000;
/** How often a queued downloader asks about its place (the `queue` reply's `retryMs`). */
export const QUEUE_POLL_MS = 500;
/**
 * Places in the queue one user (the user a ticket names) may take; its next
 * connection is answered BUSY, so one account cannot fill the queue.
 */
export const MAX_QUEUED_PER_USER = 4;

/**
 * The slowest a slot holder may read while others wait, bytes a second, as
 * measured over {@link READ_WINDOW_MS} of writes waiting for it: below it,
 * its slot goes to the next in line. On a LAN an honest downloader reads a
 * thousand times faster; only one that barely reads (to keep a slot from
 * others) or has set its own download limit this low falls below it.
 */
export const MIN_READ_BYTES_PER_SECOND = 32 * 1024;
/**
 * How much time spent waiting in writes to a holder its pace is measured
 * over (at most twice this: the window then starts again). Only the time a
 * write waits for the downloader to read counts: a write waits only while
 * the sockets' buffers are full, so the bytes written per such second are
 * the pace it reads at, however big the buffers (megabytes on a fast LAN:
 * a downloader reading fast never waits). A sharer's own
 * `--max-upload-rate` holds pieces back between writes, never in one, so
 * it never counts against a downloader.
 */
export const READ_WINDOW_MS = 10_000;

/**
 * How a holder has been read from: the bytes of the writes done to it, and
 * the milliseconds writes to it have waited (the one under way too, to now),
 * on the clock of {@link UploadSlotsOptions.now}; see Connection.wrote.
 */
export interface ReadPace {
  bytes: number;
  ms: number;
  /**
   * The write under way, if one is: its size and how long it has waited so
   * far (in `ms` already; its bytes are not in `bytes` until it is done).
   */
  writing?: { bytes: number; ms: number };
}

/**
 * Slots one user's connections may hold at once: half the slots, at least
 * one. Its further connections wait even while a slot is free, so one
 * account opening many connections cannot take every slot.
 */
export const slotsPerUser = (slots: number): number => Math.max(1, Math.floor(slots / 2));

/** Options of {@link UploadSlots}. */
export interface UploadSlotsOptions<H extends object = object> {
  /** Downloaders served at once. @default {4} */
  slots?: number;
  /** Downloaders waiting at most. @default {64} */
  maxQueue?: number;
  /** Slots one user holds at most. @default {half the slots, at least 1} */
  perUser?: number;
  /** Places one user takes in the queue at most. @default {4} */
  maxQueuedPerUser?: number;
  /** A holder that asks for nothing this long loses its slot. @default {1000} */
  slotIdleMs?: number;
  /** A waiter that does not ask about its place this long leaves the queue. @default {10000} */
  queueIdleMs?: number;
  /** The clock, in milliseconds (tests inject one). @default {performance.now} */
  now?: () => number;
  /**
   * How a holder has been read from, so far: a holder that reads too slowly
   * loses its slot while others wait. Without it, a holder's pace is not
   * looked at.
   */
  paceOf?: (holder: H) => ReadPace | null;
  /** The slowest a holder may read while others wait. @default {MIN_READ_BYTES_PER_SECOND} */
  minReadBytesPerSecond?: number;
  /** Time waiting in writes a holder's pace is measured over. @default {READ_WINDOW_MS} */
  readWindowMs?: number;
  /** Told of each holder whose slot was taken back for reading too slowly. */
  onTakenBack?: (holder: H, pace: ReadPace) => void;
}

/**
 * Who holds the slots and who waits, in order. Holders are any objects (the
 * piece server uses its per-connection state). Nothing runs on a timer: idle
 * holders and vanished waiters are let go whenever anyone asks, which
 * queued downloaders do every {@link QUEUE_POLL_MS}.
 *
 * @example
 * ```ts
 * const slots = new UploadSlots({ slots: 4 });
 * const place = slots.ask(connection); // 0: send it data; n: n-th in line
 * slots.leave(connection); // when the connection closes
 * ```
 */
export class UploadSlots<H extends object = object> {
  readonly slots: number;
  readonly #maxQueue: number;
  readonly #slotIdleMs: number;
  readonly #queueIdleMs: number;
  readonly #now: () => number;
  /** Holders, with when they last asked for data or were sent some (or were promoted). */
  readonly #holders = new Map<H, Holder>();
  /** Waiters in order, with when they last asked. */
  readonly #queue = new Map<H, number>();
  /** Whose each holder and waiter is (the ticket's user; "" when unknown). */
  readonly #owners = new Map<H, string>();
  /**
   * Holders whose slot was taken back for reading too slowly while pieces
   * were still on their way to them, with whose they are and how many: they
   * count against their user's share of slots until those pieces are sent
   * (or their connection closes), so one account cannot have ever more
   * pieces held in memory by opening connection after connection.
   */
  readonly #lingering = new Map<H, { owner: string; sending: number }>();
  readonly #perUser: number;
  readonly #maxQueuedPerUser: number;
  readonly #paceOf: ((holder: H) => ReadPace | null) | null;
  readonly #minReadBytesPerSecond: number;
  readonly #readWindowMs: number;
  readonly #onTakenBack: ((holder: H, pace: ReadPace) => void) | null;

  constructor(options: UploadSlotsOptions<H> = {}) {
    this.slots = options.slots ?? DEFAULT_UPLOAD_SLOTS;
    if (!Number.isInteger(this.slots) || this.slots < 1) {
      throw new RangeError("upload slots must be a whole number, at least 1");
    }
    this.#maxQueue = options.maxQueue ?? MAX_QUEUE;
    this.#perUser = options.perUser ?? slotsPerUser(this.slots);
    this.#maxQueuedPerUser = options.maxQueuedPerUser ?? MAX_QUEUED_PER_USER;
    this.#slotIdleMs = options.slotIdleMs ?? SLOT_IDLE_MS;
    this.#queueIdleMs = options.queueIdleMs ?? QUEUE_IDLE_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#paceOf = options.paceOf ?? null;
    this.#minReadBytesPerSecond = options.minReadBytesPerSecond ?? MIN_READ_BYTES_PER_SECOND;
    this.#readWindowMs = options.readWindowMs ?? READ_WINDOW_MS;
    this.#onTakenBack = options.onTakenBack ?? null;
  }

  /**
   * Asks for a slot for `holder`, a connection of `owner` (the user its
   * ticket names): 0 when it holds one (now or already), else its place in
   * line, 1 being next. Joins the queue if not in it; throws BUSY when the
   * queue is full, or `owner` waits in too many places already. A holder
   * that only asks its place (`forData` false: a `queue` request) is given
   * the idle bound anew the first time it learns it holds a slot, never
   * after: else one polling its place, and asking for nothing, would keep a
   * slot for ever.
   */
  ask(holder: H, owner = "", forData = true): number {
    const now = this.#now();
    this.#expire(now);
    const held = this.#holders.get(holder);
    if (held) {
      if (forData || !held.told) held.at = now;
      held.told = true;
      return 0;
    }
    if (!this.#queue.has(holder)) {
      if (this.#queue.size >= this.#maxQueue) {
        throw new ShoalError(
          "BUSY",
          `all ${this.slots} upload slots are taken and ${this.#queue.size} downloaders wait`,
          { hint: "try again later" },
        );
      }
      if (owner !== "" && this.#count(this.#queue.keys(), owner) >= this.#maxQueuedPerUser) {
        throw new ShoalError(
          "BUSY",
          `${owner} already waits for ${this.#maxQueuedPerUser} upload slots here`,
          { hint: "close other downloads from this peer, or try again later" },
        );
      }
      this.#owners.set(holder, owner);
      this.#queue.set(holder, now);
      // Someone waits now: a slow reader's slot is theirs at once.
      this.#takeBackFromSlowReaders();
      this.#promote(now);
      const promoted = this.#holders.get(holder);
      if (promoted) {
        promoted.told = true;
        return 0;
      }
    } else {
      this.#queue.set(holder, now);
    }
    return this.place(holder)!;
  }

  /** `holder`'s place in line (1 is next), 0 when it holds a slot, null when it is neither. */
  place(holder: H): number | null {
    if (this.#holders.has(holder)) return 0;
    let place = 1;
    for (const waiting of this.#queue.keys()) {
      if (waiting === holder) return place;
      place++;
    }
    return null;
  }

  /**
   * Marks a piece being sent to `holder` (+1) or sent (-1): a holder never
   * idles out while pieces are on their way to it, however slowly they go.
   * Returns whether it was counted (`holder` holds a slot, or lingers): a
   * piece's -1 is for a +1 that was, and only for one (a small file's
   * piece, sent without a slot before its connection took one, would count
   * off a piece still on its way).
   */
  sending(holder: H, change: 1 | -1): boolean {
    const held = this.#holders.get(holder);
    if (held) {
      held.sending += change;
      held.at = this.#now();
      return true;
    }
    const lingering = this.#lingering.get(holder);
    if (!lingering) return false;
    lingering.sending += change;
    if (lingering.sending > 0) return true;
    this.#lingering.delete(holder);
    this.#promote(this.#now());
    return true;
  }

  /** `holder` is done (its connection closed): its slot goes to the next in line. */
  leave(holder: H): void {
    this.#queue.delete(holder);
    this.#owners.delete(holder);
    const lingered = this.#lingering.delete(holder);
    if (this.#holders.delete(holder) || lingered) this.#promote(this.#now());
  }

  /** Downloaders holding a slot, and waiting. */
  get counts(): { serving: number; waiting: number } {
    this.#expire(this.#now());
    return { serving: this.#holders.size, waiting: this.#queue.size };
  }

  #expire(now: number): void {
    for (const [holder, { at, sending }] of this.#holders) {
      if (sending <= 0 && now - at > this.#slotIdleMs) {
        this.#holders.delete(holder);
        this.#owners.delete(holder);
      }
    }
    for (const [waiter, at] of this.#queue) {
      if (now - at > this.#queueIdleMs) {
        this.#queue.delete(waiter);
        this.#owners.delete(waiter);
      }
    }
    // A slow reader harms nobody while nobody waits: only then is its pace looked at.
    if (this.#queue.size > 0) this.#takeBackFromSlowReaders();
    this.#promote(now);
  }

  /**
   * Takes the slot back from each holder that read slower than the minimum
   * pace over its last {@link READ_WINDOW_MS} to twice that of time waited
   * in writes to it (measured from when it took its slot, the window
   * starting again at twice): it reads too slowly. Its pieces already on
   * their way still go (and count against its user's share of slots until
   * they have); its next request queues it behind those waiting.
   */
  #takeBackFromSlowReaders(): void {
    if (!this.#paceOf) return;
    for (const [holder, held] of this.#holders) {
      const pace = this.#paceNow(holder);
      if (!pace) continue;
      held.paceFrom ??= pace;
      const ms = pace.ms - held.paceFrom.ms;
      if (ms < this.#readWindowMs) continue;
      const bytes = pace.bytes - held.paceFrom.bytes;
      if (bytes * 1000 >= this.#minReadBytesPerSecond * ms) {
        if (ms >= 2 * this.#readWindowMs) held.paceFrom = pace;
        continue;
      }
      this.#holders.delete(holder);
      if (held.sending > 0) {
        this.#lingering.set(holder, {
          owner: this.#owners.get(holder) ?? "",
          sending: held.sending,
        });
      }
      this.#owners.delete(holder);
      this.#onTakenBack?.(holder, { bytes, ms });
    }
  }

  /** The slots `owner` holds, counting its connections that linger (see #lingering). */
  #heldBy(owner: string): number {
    let count = this.#count(this.#holders.keys(), owner);
    for (const lingering of this.#lingering.values()) if (lingering.owner === owner) count++;
    return count;
  }

  /** How many of `holders` belong to `owner`. */
  #count(holders: Iterable<H>, owner: string): number {
    let count = 0;
    for (const holder of holders) if (this.#owners.get(holder) === owner) count++;
    return count;
  }

  /**
   * Gives free slots to the first in line whose user holds fewer than its
   * share; they learn it when they next ask.
   */
  #promote(now: number): void {
    for (const waiter of this.#queue.keys()) {
      if (this.#holders.size >= this.slots) return;
      const owner = this.#owners.get(waiter) ?? "";
      // A waiter that lingers already counts against its user: served, it is the same one.
      const lingering = this.#lingering.get(waiter);
      const itself = lingering !== undefined && lingering.owner === owner ? 1 : 0;
      if (owner !== "" && this.#heldBy(owner) - itself >= this.#perUser) continue;
      this.#queue.delete(waiter);
      // Its pieces still on their way are a holder's now: sent, they are counted off it.
      this.#lingering.delete(waiter);
      this.#holders.set(waiter, {
        at: now,
        sending: lingering?.sending ?? 0,
        told: false,
        // Its pace is measured from now: what it read before (or did not) was another turn's.
        paceFrom: this.#paceNow(waiter) ?? undefined,
      });
    }
  }

  /**
   * How `holder` has been read from, the write under way taken to go at
   * the minimum pace (up to its size): its bytes count only once it is
   * done, and a big piece goes out in writes of 1 MiB (MAX_WRITE_BYTES), so
   * without this a downloader reading at 80 KiB/s, whose writes each wait
   * 12.8 s, showed no bytes at all over 10 s of waiting and lost its slot.
   * One that stops reading gains at most one write's size at the minimum
   * pace (32 s) before its pace falls.
   */
  #paceNow(holder: H): ReadPace | null {
    const pace = this.#paceOf?.(holder);
    if (!pace) return null;
    const { writing } = pace;
    const ongoing = writing
      ? Math.min(writing.bytes, writing.ms * this.#minReadBytesPerSecond / 1000)
      : 0;
    return { bytes: pace.bytes + ongoing, ms: pace.ms };
  }
}

interface Holder {
  at: number;
  /** Pieces on their way to it. */
  sending: number;
  /** It has been answered that it holds its slot. */
  told: boolean;
  /** How it had been read from when its pace window started (first looked at, at the latest). */
  paceFrom?: ReadPace;
}
