import type { Address } from "../protocol/address.ts";
import { ShoalError } from "../protocol/errors.ts";
import { PEER_METHODS } from "../protocol/messages.ts";
import { ProtocolServer, WithBody } from "../protocol/server.ts";
import type { PeerHome, Share } from "./home.ts";
import { pieceLength, readAt } from "./manifest.ts";

/** Options of a {@link PieceServer}. */
export interface PieceServerOptions {
  /** Who this peer is, as answered to `ping`. */
  username: () => string | null;
  /** Where one-line warnings go. @default {console.error} */
  warn?: (line: string) => void;
}

/**
 * Serves this peer's published files to other peers, piece by piece, each
 * connection on its own so several downloads run at once.
 *
 * @example
 * ```ts
 * const server = new PieceServer(home, { username: () => "alice" });
 * const bound = server.listen({ host: "0.0.0.0", port: 0 });
 * ```
 */
export class PieceServer {
  readonly #home: PeerHome;
  readonly #server: ProtocolServer<typeof PEER_METHODS, Record<never, never>>;

  constructor(home: PeerHome, options: PieceServerOptions) {
    this.#home = home;
    this.#server = new ProtocolServer(PEER_METHODS, {
      ping: () => Promise.resolve({ username: options.username(), time: Date.now() }),
      manifest: async ({ contentId }) => {
        const share = await this.#currentShare(contentId);
        return { manifest: share.manifest };
      },
      piece: async ({ contentId, index }) => {
        const share = await this.#currentShare(contentId);
        if (index >= share.manifest.pieces.length) {
          throw new ShoalError("NOT_FOUND", `piece ${index} is beyond the end of the file`);
        }
        const length = pieceLength(share.manifest, index);
        // Read before answering, so a failing disk becomes an error reply, not a cut-off body.
        return new WithBody({ index, length }, [await readPiece(share, index, length)]);
      },
    }, { kind: "peer", initialState: () => ({}), warn: options.warn });
  }

  listen(address: Address): Address {
    return this.#server.listen(address);
  }

  async close(): Promise<void> {
    await this.#server.close();
  }

  /** The share holding this content, refusing one whose file changed after publishing. */
  async #currentShare(contentId: string): Promise<Share> {
    const share = this.#home.shareByContent(contentId);
    if (!share) throw new ShoalError("NOT_FOUND", "this peer does not share that content");
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(share.path);
    } catch {
      throw new ShoalError("NOT_FOUND", `the owner's copy of "${share.name}" is gone`);
    }
    if (stat.size !== share.size || (stat.mtime?.getTime() ?? 0) !== share.mtimeMs) {
      throw new ShoalError(
        "CONTENT_CHANGED",
        `the owner's copy of "${share.name}" changed since it was published`,
      );
    }
    return share;
  }
}

/** Reads one piece from disk as a single large chunk, the fast path for the socket. */
async function readPiece(share: Share, index: number, length: number): Promise<Uint8Array> {
  using file = await Deno.open(share.path, { read: true });
  const buffer = new Uint8Array(length);
  await readAt(file, index * share.manifest.pieceSize, buffer);
  return buffer;
}
