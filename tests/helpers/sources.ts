/** In-process piece servers that stand in for a content's sources, and the tickets they accept. */
import { parseAddress } from "../../lib/protocol/address.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { type BatchItem, PEER_METHODS, type Source } from "../../lib/protocol/messages.ts";
import { type Handlers, ProtocolServer, type WithBody } from "../../lib/protocol/server.ts";
import { signTicket } from "../../lib/protocol/tickets.ts";
import type { Catalog } from "../../lib/peer/catalog.ts";
import { PieceServer, type PieceServerOptions } from "../../lib/peer/piece_server.ts";
import { PEER_AGENT } from "../../lib/peer/tracker_link.ts";
import { testTicketKey } from "./tracker.ts";

/** A tracker's ticket key, as far as sources and a downloader named "bob" need one. */
export class TicketAuthority {
  readonly #privateKey: CryptoKey;
  readonly publicKey: string;

  private constructor(privateKey: CryptoKey, publicKey: string) {
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
  }

  static async create(): Promise<TicketAuthority> {
    const { privateKey, publicKeyBase64 } = await testTicketKey();
    return new TicketAuthority(privateKey, publicKeyBase64);
  }

  /** A ticket for "bob" to fetch `contentId`. */
  ticket(contentId: string): Promise<string> {
    return signTicket(this.#privateKey, "bob", contentId);
  }

  /** A ticket for `user` to fetch `contentId`. */
  ticketFor(user: string, contentId: string): Promise<string> {
    return signTicket(this.#privateKey, user, contentId);
  }

  /**
   * A plaintext piece server on 127.0.0.1 for `catalog`, owned by `owner`,
   * as a listed source; `options` as a PieceServer takes them (warnings are
   * dropped unless `warn` says otherwise).
   */
  async serve(
    catalog: Catalog,
    owner: string,
    options: Omit<PieceServerOptions, "username"> = {},
  ): Promise<{ server: PieceServer; source: Source }> {
    const server = new PieceServer(catalog, { warn: () => {}, ...options, username: () => owner });
    await server.trustTicketKey(this.publicKey);
    const { host, port } = await server.listen({ host: "127.0.0.1", port: 0 });
    return {
      server,
      source: { owner, address: `${host}:${port}`, partial: false, certificate: null },
    };
  }
}

/** What a {@link fakeSource} answers: any request type, the others answered NOT_FOUND. */
export type FakeSourceHandlers = Partial<
  Omit<Handlers<typeof PEER_METHODS, null>, "ping">
>;

/**
 * A source that is no piece server: `owner`'s, on 127.0.0.1, answering the
 * requests `handlers` has with them and every other with NOT_FOUND
 * ("nothing here"); `concurrency` requests of a connection at once (the
 * protocol server's own default otherwise).
 */
export async function fakeSource(
  owner: string,
  handlers: FakeSourceHandlers,
  options: { concurrency?: number } = {},
): Promise<{ server: ProtocolServer<typeof PEER_METHODS, null>; source: Source }> {
  const nothing = () => Promise.reject(new ShoalError("NOT_FOUND", "nothing here"));
  const server = new ProtocolServer(PEER_METHODS, {
    ping: () => Promise.resolve({ username: owner, time: Date.now() }),
    manifest: nothing,
    have: nothing,
    piece: nothing,
    queue: nothing,
    folder: nothing,
    pieces: nothing,
    ...handlers,
  }, { kind: "peer", initialState: () => null, warn: () => {}, ...options });
  const { host, port } = await server.listen({ host: "127.0.0.1", port: 0 });
  return {
    server,
    source: { owner, address: `${host}:${port}`, partial: false, certificate: null },
  };
}

/**
 * A hostile source, "mallory": its `pieces` replies are what `answer` makes
 * of the items asked, and it has nothing else to give.
 */
export function batchAnswering(
  answer: (items: { contentId: string }[]) => WithBody<{ length: number; items: BatchItem[] }>,
): Promise<{ server: ProtocolServer<typeof PEER_METHODS, null>; source: Source }> {
  return fakeSource("mallory", { pieces: ({ items }) => Promise.resolve(answer(items)) });
}

/** A downloader's connection to `source`, as a fetch opens one (plaintext). */
export function connectTo(source: Source): Promise<ProtocolClient<typeof PEER_METHODS>> {
  return ProtocolClient.connect(parseAddress(source.address), PEER_METHODS, {
    expect: "peer",
    agent: PEER_AGENT,
  });
}

/** `source` as reached through another address (say, a hostile proxy in front of it). */
export function via(source: Source, owner: string, address: string): Source {
  return { ...source, owner, address };
}
