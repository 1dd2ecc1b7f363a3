/**
 * The peer's piece server: answers other peers' `manifest`, `folder`, `have`,
 * `queue`, `piece` and `pieces` requests for what this peer shares, each only with a
 * ticket the tracker signed for that content, within the upload slots and
 * the process's upload budget.
 */
import { delay } from "../async/delay.ts";
import { type Address, formatAddress } from "../protocol/address.ts";
import { BufferPool } from "../protocol/buffer_pool.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { BATCHED_BELOW_BYTES, FOLDER_CHUNK_BYTES, PEER_METHODS } from "../protocol/messages.ts";
import { open } from "node:fs/promises";
import { type Connection, ProtocolServer, WithBody } from "../protocol/server.ts";
import { grantCovers, importTicketKey, TicketVerifier } from "../protocol/tickets.ts";
import type { Catalog } from "./catalog.ts";
import { Bitfield } from "./bitfield.ts";
import { pieceLength, readFullyAt } from "./manifest.ts";
import { BatchBudget } from "./batch_budget.ts";
import { readBatch } from "./piece_batch.ts";
import type { UploadLog } from "./upload_log.ts";
import { paced, type RateLimiter } from "./rate.ts";
import { SentPieces } from "./sent_pieces.ts";
import { QUEUE_POLL_MS, UploadSlots, type UploadSlotsOptions } from "./upload_slots.ts";

/**
 * Shares smaller than this are served without waiting for an upload slot:
 * those a `pieces` batch may ask for.
 */
export const SLOTLESS_BELOW_BYTES = BATCHED_BELOW_BYTES;

/** A request refused over this peer's upload slots (see {@link PieceServerOptions.onRefused}). */
export interface SlotRefusal {
  remote: string;
  contentId: string;
  code: "QUEUED" | "BUSY";
  message: string;
}

/**
 * Requests of one connection handled at once: the next piece is read from
 * disk while the one before it is still being sent.
 */
const PIECES_IN_FLIGHT = 4;

/** Options of a {@link PieceServer}. */
export interface PieceServerOptions {
  /** Who this peer is, as answered to `ping`. */
  username: () => string | null;
  /** Where one-line warnings go. @default {console.error} */
  warn?: (line: string) => void;
  /**
   * Test-only fault injection: flip a byte of every piece served (every
   * item of a batch), to check that downloaders catch and drop a corrupting
   * source.
   * @default {false}
   */
  corruptPieces?: boolean;
  /**
   * Test-only: wait this long before each piece (a batch: this long per
   * item), to make a slow source.
   * @default {0}
   */
  pieceDelayMs?: number;
  /**
   * Test-only: what one account's `pieces` batches may hold here until sent.
   * @default {BATCH_BYTES_PER_USER}
   */
  batchBytesPerUser?: number;
  /** Serve TLS with this identity (the certificate the tracker vouches for); without it, plaintext. */
  tls?: TlsIdentity;
  /** Where each upload and each refusal is logged. @default {none} */
  uploads?: UploadLog;
  /** One budget for every upload of this process (`serve --max-upload-rate`). @default {null} */
  uploadLimiter?: RateLimiter | null;
  /**
   * Downloaders sent piece data at once (`serve --upload-slots`), or the
   * slots' whole options (tests shorten or lengthen their bounds).
   * @default {4}
   */
  uploadSlots?: number | UploadSlotsOptions;
  /**
   * Called for each request refused over this peer's upload slots (queued
   * for a slot, or the queue full), besides the line in `uploads`; tests
   * watch the slots through it.
   */
  onRefused?: (refusal: SlotRefusal) => void;
}

/** A connection's state: the connection itself is the downloader that holds or waits for a slot. */
type Downloader = Record<never, never>;

/**
 * Serves content to other peers, piece by piece, each connection on its own
 * so several downloads run at once.
 *
 * @example
 * ```ts
 * const server = new PieceServer(new ShareCatalog(home), { username: () => "alice" });
 * const bound = await server.listen({ host: "0.0.0.0", port: 0 });
 * ```
 */
export class PieceServer {
  readonly #server: ProtocolServer<typeof PEER_METHODS, Downloader>;
  readonly #slots: UploadSlots<Downloader>;
  readonly #catalog: Catalog;
  readonly #buffers = new BufferPool();
  /** Checks tickets with the tracker's public key, learnt when this peer reaches the tracker. */
  #tickets: TicketVerifier | null = null;

  constructor(catalog: Catalog, options: PieceServerOptions) {
    this.#catalog = catalog;
    const sentPieces = new SentPieces();
    const batchBudget = new BatchBudget(options.batchBytesPerUser);
    /** Each slot holder's connection, and what it last asked a slot for: to see how it reads. */
    const holders = new WeakMap<
      Downloader,
      { connection: Connection<Downloader>; contentId: string; share: string | null; user: string }
    >();
    const slots = this.#slots = new UploadSlots<Downloader>({
      ...(typeof options.uploadSlots === "number"
        ? { slots: options.uploadSlots }
        : options.uploadSlots),
      paceOf: (holder) => holders.get(holder)?.connection.wrote ?? null,
      onTakenBack: (holder, pace) => {
        const held = holders.get(holder);
        if (!held) return;
        const rate = pace.ms > 0 ? pace.bytes / 1024 / (pace.ms / 1000) : 0;
        options.uploads?.refusal({
          user: held.user,
          address: formatAddress(held.connection.remote),
          contentId: held.contentId,
          share: held.share,
          code: "QUEUED",
          reason: `reads too slowly while others wait (${rate.toFixed(1)} KiB/s over ${
            (pace.ms / 1000).toFixed(0)
          } s of writes waiting for it): its upload slot went to the next in line`,
        });
      },
    });
    /**
     * A downloader's place for a slot (0: served); small shares need none.
     * `forData` false: it only asks its place, which keeps no slot.
     */
    const place = (
      contentId: string,
      content: { manifest: { size: number }; user: string; name?: string | null },
      connection: Connection<Downloader>,
      forData = true,
    ) => {
      if (content.manifest.size < SLOTLESS_BELOW_BYTES) return 0;
      // Recorded once a download: a piece request of the same content and user finds it there.
      const held = holders.get(connection.state);
      if (held?.contentId !== contentId || held.user !== content.user) {
        holders.set(connection.state, {
          connection,
          contentId,
          share: content.name ?? null,
          user: content.user,
        });
      }
      try {
        // Counted per ticket user: one account's many connections share its bound.
        return slots.ask(connection.state, content.user.toLowerCase(), forData);
      } catch (error) {
        refused(connection, contentId, error as ShoalError);
        throw error;
      }
    };
    const refused = (connection: Connection<Downloader>, contentId: string, error: ShoalError) => {
      const remote = formatAddress(connection.remote);
      const code = error.code as SlotRefusal["code"];
      options.onRefused?.({ remote, contentId, code, message: error.message });
      options.uploads?.refusal({
        user: null,
        address: remote,
        contentId,
        code,
        reason: code === "QUEUED" ? "every upload slot taken" : "upload queue full",
      });
    };
    // Nothing is served without a ticket the tracker signed for this very content.
    const uploads = options.uploads;
    /**
     * The ticket's grant for `contentId` (null: for whichever content, a batch
     * checks each item); a bad ticket is logged as a refusal, then thrown.
     */
    const verify = async (
      contentId: string | null,
      ticket: string | undefined,
      connection: { remote: Address },
      logged: string = contentId ?? "",
    ) => {
      try {
        if (!this.#tickets) {
          throw new ShoalError(
            "TICKET_INVALID",
            "this peer has not reached the tracker yet, so it cannot check tickets",
          );
        }
        return await this.#tickets.verify(ticket, contentId);
      } catch (error) {
        uploads?.refusal({
          user: null,
          address: formatAddress(connection.remote),
          contentId: logged,
          code: toShoalError(error).code,
          reason: "bad ticket",
        });
        throw error;
      }
    };
    const find = async (
      contentId: string,
      ticket: string | undefined,
      connection: { remote: Address },
    ) => {
      const grant = await verify(contentId, ticket, connection);
      const content = await catalog.find(contentId);
      if (!content) throw new ShoalError("NOT_FOUND", "this peer does not share that content");
      return { ...content, user: grant.user };
    };
    this.#server = new ProtocolServer(PEER_METHODS, {
      ping: () => Promise.resolve({ username: options.username(), time: Date.now() }),
      manifest: async ({ contentId, ticket }, connection) => ({
        manifest: (await find(contentId, ticket, connection)).manifest,
      }),
      folder: async ({ contentId, offset, ticket }, connection) => {
        await verify(contentId, ticket, connection);
        const path = await catalog.folderManifest?.(contentId);
        if (!path) throw new ShoalError("NOT_FOUND", "this peer does not share that folder");
        // The manifest is a file in this peer's own home, named by content id: nothing received
        // builds its path beyond a checked SHA-256 hex.
        const file = await open(path).catch(() => {
          throw new ShoalError("NOT_FOUND", "this peer's copy of that folder's manifest is gone");
        });
        try {
          const total = (await file.stat()).size;
          const length = Math.max(0, Math.min(FOLDER_CHUNK_BYTES, total - offset));
          const bytes = new Uint8Array(length);
          if (!await readFullyAt(file, offset, bytes)) {
            throw new ShoalError("CONTENT_CHANGED", "the folder's manifest got shorter");
          }
          return new WithBody({ total, length }, [bytes]);
        } finally {
          await file.close();
        }
      },
      have: async ({ contentId, ticket }, connection) => {
        const { have, manifest } = await find(contentId, ticket, connection);
        const sent = sentPieces.toBase64(contentId, manifest.pieces.length);
        return { count: have.count, bitfield: have.toBase64(), sent };
      },
      queue: async ({ contentId, ticket }, connection) => ({
        place: place(contentId, await find(contentId, ticket, connection), connection, false),
        slots: slots.slots,
        retryMs: QUEUE_POLL_MS,
      }),
      piece: async ({ contentId, index: asked, ticket, alternatives }, connection) => {
        const startedAt = uploads?.now();
        const content = await find(contentId, ticket, connection);
        const waiting = place(contentId, content, connection);
        if (waiting > 0) {
          const error = new ShoalError(
            "QUEUED",
            `queued: place ${waiting} for one of ${slots.slots} upload slots`,
          );
          refused(connection, contentId, error);
          throw error;
        }
        const { manifest } = content;
        const count = manifest.pieces.length;
        if (asked >= count) {
          throw new ShoalError("NOT_FOUND", `piece ${asked} is beyond the end of the file`);
        }
        const length = pieceLength(manifest, asked);
        const index = sentPieces.choose(
          contentId,
          asked,
          alternatives === undefined ? null : Bitfield.fromBase64(alternatives, count),
          (i) => content.have.has(i) && pieceLength(manifest, i) === length,
        );
        if (!content.have.has(index)) {
          throw new ShoalError("NOT_FOUND", `piece ${index} is not here yet`);
        }
        // Read before answering, so a failing disk becomes an error reply, not a cut-off body.
        const bytes = this.#buffers.take(length);
        const counted = slots.sending(connection.state, 1);
        const sent = () => {
          if (counted) slots.sending(connection.state, -1);
          this.#buffers.release(bytes);
        };
        // Marked before the read, so requests handled meanwhile choose other pieces; but only a
        // piece on its way counts as sent: one this peer could not read went to nobody.
        sentPieces.mark(contentId, index, count);
        try {
          await content.read(index, bytes);
        } catch (error) {
          sentPieces.unmark(contentId, index);
          sent();
          throw error;
        }
        if (options.pieceDelayMs) await delay(options.pieceDelayMs);
        if (options.corruptPieces && bytes.length > 0) bytes[0] ^= 0xff;
        uploads?.served(connection, {
          user: content.user,
          address: formatAddress(connection.remote),
          contentId,
          share: content.name ?? null,
          bytes: bytes.length,
          startedAt,
        });
        return new WithBody(
          { index, length: bytes.length },
          // Without an upload limit, the piece whole: no generator's turns per piece.
          options.uploadLimiter ? paced(bytes, options.uploadLimiter) : [bytes],
          sent,
        );
      },
      pieces: async ({ items, ticket }, connection) => {
        const startedAt = uploads?.now();
        const grant = await verify(null, ticket, connection, items[0].contentId);
        // Every item is under SLOTLESS_BELOW_BYTES (larger ones are refused unread): no slot to ask,
        // but what one user's batches hold here until sent is bounded all the same.
        let unhold = () => {};
        const read = await readBatch(
          catalog,
          items,
          (contentId) => grantCovers(grant, contentId),
          this.#buffers,
          (bytes) => unhold = batchBudget.take(grant.user, bytes),
        );
        const counted = slots.sending(connection.state, 1);
        const sent = () => {
          if (counted) slots.sending(connection.state, -1);
          unhold();
          this.#buffers.release(read.buffer);
        };
        // Each item as late and as corrupt as a piece would be: tests make slow and lying sources.
        if (options.pieceDelayMs) await delay(options.pieceDelayMs * items.length);
        if (options.corruptPieces) {
          let at = 0;
          for (const item of read.items) {
            if (!("length" in item)) continue;
            if (item.length > 0) read.body[at] ^= 0xff;
            at += item.length;
          }
        }
        for (const share of read.shares) {
          uploads?.served(connection, {
            user: grant.user,
            address: formatAddress(connection.remote),
            contentId: share.contentId,
            share: share.name,
            bytes: share.bytes,
            pieces: share.pieces,
            startedAt,
          });
        }
        return new WithBody(
          { length: read.body.length, items: read.items },
          options.uploadLimiter ? paced(read.body, options.uploadLimiter) : [read.body],
          sent,
        );
      },
    }, {
      kind: "peer",
      initialState: (): Downloader => ({}),
      onClose: (connection) => {
        slots.leave(connection.state);
        uploads?.closed(connection);
      },
      warn: options.warn,
      tls: options.tls,
      concurrency: PIECES_IN_FLIGHT,
    });
  }

  /** Trusts tickets signed by this tracker key (raw Ed25519, base64). */
  async trustTicketKey(base64: string): Promise<void> {
    this.#tickets = new TicketVerifier(await importTicketKey(base64));
  }

  /** Downloaders being sent pieces, and waiting for a slot. */
  get uploads(): { serving: number; waiting: number } {
    return this.#slots.counts;
  }

  listen(address: Address): Promise<Address> {
    return this.#server.listen(address);
  }

  async close(): Promise<void> {
    await this.#server.close();
    await this.#catalog.close?.();
  }
}
