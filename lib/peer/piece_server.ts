import type { Address } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";
import { type Manifest, PEER_METHODS } from "../protocol/messages.ts";
import { ProtocolServer, WithBody } from "../protocol/server.ts";
import type { TlsIdentity } from "../protocol/certificate.ts";
import { importTicketKey, TicketVerifier } from "../protocol/tickets.ts";
import { Bitfield } from "./bitfield.ts";
import type { PeerHome } from "./home.ts";
import { pieceLength, readAt } from "./manifest.ts";

/** Content this peer can serve: a complete share, or a download still in progress. */
export interface ServedContent {
  manifest: Manifest;
  /** The pieces that have been verified and can be served. */
  have: Bitfield;
  /** Reads one verified piece from disk. */
  read(index: number): Promise<Uint8Array>;
}

/** Finds servable content by content id; never from a path received off the network. */
export interface Catalog {
  find(contentId: string): Promise<ServedContent | null>;
}

/**
 * This peer's published shares. A share whose file changed on disk after
 * publishing is refused rather than served.
 */
export class ShareCatalog implements Catalog {
  readonly #home: PeerHome;
  readonly #warn: (line: string) => void;
  readonly #warned = new Set<string>();

  /** `warn` tells the owner, once per file, that a share can no longer be served. */
  constructor(home: PeerHome, warn: (line: string) => void = console.error) {
    this.#home = home;
    this.#warn = warn;
  }

  #refuse(path: string, problem: string, error: ShoalError): never {
    if (!this.#warned.has(path)) {
      this.#warned.add(path);
      this.#warn(`warning: ${path} ${problem}; publish it again to share it`);
    }
    throw error;
  }

  async find(contentId: string): Promise<ServedContent | null> {
    const share = this.#home.shareByContent(contentId);
    if (!share) return null;
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(share.path);
    } catch {
      this.#refuse(
        share.path,
        "is gone",
        new ShoalError("NOT_FOUND", "the owner's copy of this file is gone"),
      );
    }
    if (stat.size !== share.size || (stat.mtime?.getTime() ?? 0) !== share.mtimeMs) {
      this.#refuse(
        share.path,
        "changed since it was published",
        new ShoalError(
          "CONTENT_CHANGED",
          "the owner's copy of this file changed since it was published; they need to publish it again",
        ),
      );
    }
    const { manifest } = share;
    return {
      manifest,
      have: Bitfield.full(manifest.pieces.length),
      read: async (index) => {
        using file = await Deno.open(share.path, { read: true });
        const buffer = new Uint8Array(pieceLength(manifest, index));
        await readAt(file, index * manifest.pieceSize, buffer);
        return buffer;
      },
    };
  }
}

/** Several catalogs, asked in order. */
export function combineCatalogs(...catalogs: Catalog[]): Catalog {
  return {
    async find(contentId) {
      for (const catalog of catalogs) {
        const found = await catalog.find(contentId);
        if (found) return found;
      }
      return null;
    },
  };
}

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
 * const bound = server.listen({ host: "0.0.0.0", port: 0 });
 * ```
 */
export class PieceServer {
  readonly #server: ProtocolServer<typeof PEER_METHODS, Record<never, never>>;
  /** Checks tickets with the tracker's public key, learnt when this peer reaches the tracker. */
  #tickets: TicketVerifier | null = null;

  constructor(catalog: Catalog, options: PieceServerOptions) {
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
        const bytes = await content.read(index);
        if (options.pieceDelayMs) await new Promise((r) => setTimeout(r, options.pieceDelayMs));
        if (options.corruptPieces && bytes.length > 0) bytes[0] ^= 0xff;
        return new WithBody({ index, length: bytes.length }, [bytes]);
      },
    }, { kind: "peer", initialState: () => ({}), warn: options.warn, tls: options.tls });
  }

  /** Trusts tickets signed by this tracker key (raw Ed25519, base64). */
  async trustTicketKey(base64: string): Promise<void> {
    this.#tickets = new TicketVerifier(await importTicketKey(base64));
  }

  listen(address: Address): Address {
    return this.#server.listen(address);
  }

  async close(): Promise<void> {
    await this.#server.close();
  }
}

/** Downloads in progress in this process, served piece by piece as they verify. */
export class PartialCatalog implements Catalog {
  readonly #contents = new Map<string, ServedContent>();

  set(contentId: string, content: ServedContent | null): void {
    if (content) this.#contents.set(contentId, content);
    else this.#contents.delete(contentId);
  }

  find(contentId: string): Promise<ServedContent | null> {
    return Promise.resolve(this.#contents.get(contentId) ?? null);
  }
}
