import { delay } from "../async/delay.ts";
import type { Address } from "../protocol/address.ts";
import { BufferPool } from "../protocol/buffer_pool.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import { ShoalError } from "../protocol/errors.ts";
import { FOLDER_CHUNK_BYTES, PEER_METHODS } from "../protocol/messages.ts";
import { open } from "node:fs/promises";
import { ProtocolServer, WithBody } from "../protocol/server.ts";
import { importTicketKey, TicketVerifier } from "../protocol/tickets.ts";
import type { Catalog } from "./catalog.ts";
import { pieceLength, readFullyAt } from "./manifest.ts";

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
   * Test-only fault injection: flip a byte of every piece served, to check
   * that downloaders catch and drop a corrupting source.
   * @default {false}
   */
  corruptPieces?: boolean;
  /**
   * Test-only: wait this long before each piece, to make a slow source.
   * @default {0}
   */
  pieceDelayMs?: number;
  /** Serve TLS with this identity (the certificate the tracker vouches for); without it, plaintext. */
  tls?: TlsIdentity;
}

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
  readonly #server: ProtocolServer<typeof PEER_METHODS, Record<never, never>>;
  readonly #catalog: Catalog;
  readonly #buffers = new BufferPool();
  /** Checks tickets with the tracker's public key, learnt when this peer reaches the tracker. */
  #tickets: TicketVerifier | null = null;

  constructor(catalog: Catalog, options: PieceServerOptions) {
    this.#catalog = catalog;
    // Nothing is served without a ticket the tracker signed for this very content.
    const find = async (contentId: string, ticket: string | undefined) => {
      if (!this.#tickets) {
        throw new ShoalError(
          "TICKET_INVALID",
          "this peer has not reached the tracker yet, so it cannot check tickets",
        );
      }
      await this.#tickets.verify(ticket, contentId);
      const content = await catalog.find(contentId);
      if (!content) throw new ShoalError("NOT_FOUND", "this peer does not share that content");
      return content;
    };
    this.#server = new ProtocolServer(PEER_METHODS, {
      ping: () => Promise.resolve({ username: options.username(), time: Date.now() }),
      manifest: async ({ contentId, ticket }) => ({
        manifest: (await find(contentId, ticket)).manifest,
      }),
      folder: async ({ contentId, offset, ticket }) => {
        if (!this.#tickets) {
          throw new ShoalError("TICKET_INVALID", "this peer has not reached the tracker yet");
        }
        await this.#tickets.verify(ticket, contentId);
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
      have: async ({ contentId, ticket }) => {
        const { have } = await find(contentId, ticket);
        return { count: have.count, bitfield: have.toBase64() };
      },
      piece: async ({ contentId, index, ticket }) => {
        const content = await find(contentId, ticket);
        if (index >= content.manifest.pieces.length) {
          throw new ShoalError("NOT_FOUND", `piece ${index} is beyond the end of the file`);
        }
        if (!content.have.has(index)) {
          throw new ShoalError("NOT_FOUND", `piece ${index} is not here yet`);
        }
        // Read before answering, so a failing disk becomes an error reply, not a cut-off body.
        const bytes = this.#buffers.take(pieceLength(content.manifest, index));
        try {
          await content.read(index, bytes);
        } catch (error) {
          this.#buffers.release(bytes);
          throw error;
        }
        if (options.pieceDelayMs) await delay(options.pieceDelayMs);
        if (options.corruptPieces && bytes.length > 0) bytes[0] ^= 0xff;
        return new WithBody(
          { index, length: bytes.length },
          [bytes],
          () => this.#buffers.release(bytes),
        );
      },
    }, {
      kind: "peer",
      initialState: () => ({}),
      warn: options.warn,
      tls: options.tls,
      concurrency: PIECES_IN_FLIGHT,
    });
  }

  /** Trusts tickets signed by this tracker key (raw Ed25519, base64). */
  async trustTicketKey(base64: string): Promise<void> {
    this.#tickets = new TicketVerifier(await importTicketKey(base64));
  }

  listen(address: Address): Promise<Address> {
    return this.#server.listen(address);
  }

  async close(): Promise<void> {
    await this.#server.close();
    await this.#catalog.close?.();
  }
}
