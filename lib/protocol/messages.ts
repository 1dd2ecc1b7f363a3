/**
 * Every message of the Shoal protocol, in one table per server: for each
 * request type, the schema of its parameters and of its result. Both sides
 * validate what they receive against these schemas before acting on it, so
 * handlers only ever see typed, checked values. `README.md` beside this file
 * documents the same table for people.
 */
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { ShoalError } from "./errors.ts";
import { fileNameProblem } from "./validate.ts";

/** Bumped on any incompatible change; both sides send it in `hello`. */
export const PROTOCOL_VERSION = 4;

/** How often a peer holding a tracker connection sends a heartbeat. */
export const HEARTBEAT_MS = 10_000;

/** Account names: 2–32 letters, digits, `_`, `.` or `-`, starting alphanumeric. */
export const Username = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$/,
  "a username is 2-32 letters, digits, '_', '.' or '-', starting with a letter or digit",
);
/** Passwords: 8 to 1024 characters. */
export const Password = z.string()
  .min(8, "a password needs at least 8 characters")
  .max(1024, "a password may have at most 1024 characters");
/** Marks a schema rule about what a person typed: broken, it answers INVALID_INPUT, not BAD_MESSAGE. */
const INVALID_INPUT = { shoalCode: "INVALID_INPUT" } as const;

/**
 * A published name. It may become a file name on the fetcher's disk, on any
 * system, and is shown in tables: the rules are {@link fileNameProblem}'s,
 * the same on the tracker and on every peer.
 */
export const FileName = z.string().min(1, "a name cannot be empty")
  .max(255, "a name may have at most 255 characters")
  .superRefine((name, context) => {
    const problem = fileNameProblem(name);
    if (problem) context.addIssue({ code: "custom", message: problem, params: INVALID_INPUT });
  });
/**
 * A name as a tracker lists it. Looser than {@link FileName}, so that one
 * name published under older rules does not fail a whole search: a listed
 * name is escaped when shown and checked as a {@link FileName} before it
 * becomes a file name.
 */
const ListedName = z.string().min(1).max(255);
/** A file type: its lowercase extension, or empty; `folder` is a folder's (FOLDER_TYPE). */
export const FileType = z.string().max(16).regex(/^[a-z0-9]*$/);
/** The type of a folder share; a file's extension never maps to it. */
export const FOLDER_TYPE = "folder";
/** A SHA-256 digest in lowercase hex. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "expected a SHA-256 hex digest");
export const ByteCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const Port = z.number().int().min(1).max(65535);
/** How many rows a list reply found in all, of which it may carry fewer. */
const Count = z.number().int().min(0);
/** A host name or address; never starting with `-`, so it cannot pass for a command option. */
const Host = z.string().min(1).max(255).regex(/^[A-Za-z0-9.:_%][A-Za-z0-9.:_%-]*$/, "invalid host");
const Token = z.string().regex(/^[A-Za-z0-9_-]{20,100}$/, "invalid session token");
/** A session's public id, as `sessions` lists it: 16 lowercase hex digits. */
export const SessionId = z.string().regex(/^[0-9a-f]{16}$/, "a session id is 16 hex digits");

/** Largest piece size; a piece is buffered whole, so this bounds a reply's memory. */
export const MAX_PIECE_BYTES = 64 * 1024 * 1024;

/** Most pieces a manifest may list, so it fits in one frame (about 67 bytes a piece). */
export const MAX_PIECES = 12_288;
const MAX_BITFIELD_BASE64 = Math.ceil(MAX_PIECES / 8 / 3) * 4;

/**
 * Longest certificate PEM the tracker accepts and hands out. A P-256
 * certificate as Shoal makes them is about 500 characters.
 */
export const MAX_CERTIFICATE_CHARS = 2048;

/** A peer's self-signed TLS certificate, PEM, as the tracker vouches for it. */
export const Certificate = z.string().max(MAX_CERTIFICATE_CHARS).regex(
  /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*$/,
  "expected a PEM certificate",
);

/** A signature by a certificate's key, base64 (about 96 characters for P-256). */
const CertificateProof = z.string().max(1024).regex(/^[A-Za-z0-9+/]*={0,2}$/);

/**
 * A certificate a peer announces: it must parse as X.509, and is kept in its
 * canonical PEM form (so one certificate is one string, whatever its line ends).
 */
const AnnouncedCertificate = Certificate.transform((pem, context) => {
  let canonical: string;
  try {
    canonical = new X509Certificate(pem).toString();
  } catch {
    context.addIssue({ code: "custom", message: "not an X.509 certificate" });
    return z.NEVER;
  }
  if (canonical.length > MAX_CERTIFICATE_CHARS) {
    context.addIssue({ code: "custom", message: "the certificate is too large" });
    return z.NEVER;
  }
  return canonical;
});
/** A download ticket (see tickets.ts); absent, a peer answers TICKET_REQUIRED. */
const Ticket = z.string().max(2048).optional();

/** A file's manifest: what its content id is the SHA-256 of. */
export const Manifest = z.object({
  version: z.literal(1),
  size: ByteCount,
  pieceSize: z.number().int().min(1).max(MAX_PIECE_BYTES),
  pieces: z.array(Sha256Hex).max(MAX_PIECES),
}).refine(
  (m) => m.pieces.length === Math.ceil(m.size / m.pieceSize),
  "the piece count does not match the size",
);
export type Manifest = z.infer<typeof Manifest>;

/** `host:port`: a host of at most 255 characters, a colon, a port. */
const MAX_ADDRESS_CHARS = 255 + 6;

/** One published file as the tracker lists it. */
export const Listing = z.object({
  owner: Username,
  name: ListedName,
  type: FileType,
  size: ByteCount,
  contentId: Sha256Hex,
  publishedAt: z.string(),
  online: z.boolean(),
  /** `host:port` the owner serves on, when online. */
  address: z.string().max(MAX_ADDRESS_CHARS).nullable(),
  /** How many files it holds: 1 for a file, the file count of a folder (type `folder`). */
  files: z.number().int().min(0),
});
export type Listing = z.infer<typeof Listing>;

/**
 * Most rows a `lookup` or `search` reply carries. With every field at its
 * longest (a 255-unit name of 6-byte escapes, a 255-character host) a row is
 * under 2,100 bytes of JSON, so 400 rows stay far below MAX_FRAME_BYTES.
 */
export const MAX_LISTINGS = 400;
/**
 * Most sources a `sources` reply carries: each under 2,500 bytes with a
 * certificate at its longest, so the reply stays far below MAX_FRAME_BYTES.
 */
export const MAX_SOURCES = 200;

/** A peer that can serve some content: a complete owner, or a partial one still downloading. */
export const Source = z.object({
  owner: Username,
  /** `host:port` of the peer's piece server. */
  address: z.string().max(MAX_ADDRESS_CHARS),
  /** True for a peer still downloading: it serves only the pieces it has verified. */
  partial: z.boolean(),
  /** Its TLS certificate as the tracker vouches for it; null for a plaintext peer. */
  certificate: Certificate.nullable(),
});
export type Source = z.infer<typeof Source>;

/**
 * Most content ids one `members` or `holders` request carries: 67 bytes of
 * JSON each, so a request stays far below MAX_FRAME_BYTES.
 */
export const MAX_BATCH_IDS = 4096;
/**
 * Most holders a `holders` reply names for one content id; with MAX_SOURCES
 * distinct sources in all, the reply stays under MAX_FRAME_BYTES.
 */
export const MAX_HOLDERS_PER_ID = 8;
/** Largest chunk of a folder manifest one `folder` reply carries. */
export const FOLDER_CHUNK_BYTES = 4 * 1024 * 1024;
/** Largest folder manifest a peer makes or accepts (about 500,000 files). */
export const MAX_FOLDER_MANIFEST_BYTES = 256 * 1024 * 1024;

/**
 * Contents smaller than this may be asked for in a `pieces` batch (they are
 * one piece, since the smallest piece size is 256 KiB); a peer sends them
 * without an upload slot.
 */
export const BATCHED_BELOW_BYTES = 64 * 1024;
/** Most items one `pieces` request asks for. */
export const MAX_BATCH_ITEMS = 256;
/**
 * Most bytes one `pieces` reply carries: a request whose items add up to more
 * is refused whole (BAD_MESSAGE), so a batch is bounded in memory on both sides.
 */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Which pieces a peer holds: a bitfield (piece 0 is the high bit of byte 0), base64. */
const BitfieldBase64 = z.string().max(MAX_BITFIELD_BASE64).regex(/^[A-Za-z0-9+/]*={0,2}$/);
export const Have = z.object({
  count: z.number().int().min(0),
  bitfield: BitfieldBase64,
  /** Pieces this peer has sent (or is sending) to any downloader, a hint for the piece choice. */
  sent: BitfieldBase64.optional(),
});
export type Have = z.infer<typeof Have>;

/**
 * Longest message of a `pieces` reply's item error: a sender cuts a longer
 * one, since a receiver refuses the whole reply over it.
 */
export const MAX_BATCH_ERROR_MESSAGE = 1000;

/** One item of a `pieces` reply: its length, or why it is not sent. */
const BatchItem = z.union([
  z.object({ length: z.number().int().min(0).max(BATCHED_BELOW_BYTES - 1) }),
  z.object({
    error: z.object({ code: z.string().max(64), message: z.string().max(MAX_BATCH_ERROR_MESSAGE) }),
  }),
]);
export type BatchItem = z.infer<typeof BatchItem>;

const Empty = z.object({});

/** One row of the method table: what a request carries and what it returns. */
export interface Method<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  params: P;
  result: R;
}

function method<P extends z.ZodType, R extends z.ZodType>(params: P, result: R): Method<P, R> {
  return { params, result };
}

const Hello = method(
  z.object({ protocol: z.number().int(), agent: z.string().max(100) }),
  z.object({ protocol: z.number().int(), server: z.enum(["tracker", "peer"]) }),
);

/** Requests a tracker answers. */
export const TRACKER_METHODS = {
  hello: Hello,
  register: method(z.object({ username: Username, password: Password }), Empty),
  login: method(
    z.object({ username: Username, password: z.string().max(1024) }),
    /** `username` as registered, whatever letter case the login used. */
    z.object({ token: Token, username: Username }),
  ),
  resume: method(z.object({ token: Token }), z.object({ username: Username })),
  logout: method(Empty, Empty),
  /** The caller's own sessions; `current` marks the one this connection uses. */
  sessions: method(
    Empty,
    z.object({
      sessions: z.array(z.object({
        id: SessionId,
        created: z.string(),
        lastSeen: z.string(),
        address: z.string().nullable(),
        current: z.boolean(),
      })),
    }),
  ),
  /** Ends one of the caller's sessions; `current` says whether it was this connection's. */
  revoke: method(z.object({ id: SessionId }), z.object({ current: z.boolean() })),
  unregister: method(z.object({ password: z.string().max(1024) }), Empty),
  announce: method(
    z.object({
      host: Host.optional(),
      port: Port,
      /** Random per serving process: the same process reconnecting replaces its old connection. */
      instance: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/).optional(),
      /** The serving port's TLS certificate, for the tracker to vouch for; absent in plaintext. */
      certificate: AnnouncedCertificate.optional(),
      /** With a certificate: its key's signature that it serves this account (`proveCertificate`). */
      proof: CertificateProof.optional(),
    }),
    /** `ticketKey`: the tracker's Ed25519 public key (raw, base64), to check tickets with. */
    z.object({ address: z.string(), ticketKey: z.string().max(64) }),
  ),
  heartbeat: method(Empty, Empty),
  /** `files`: a folder's file count (type `folder`, its members sent first); 1 for a file. */
  publish: method(
    z.object({
      name: FileName,
      type: FileType,
      size: ByteCount,
      contentId: Sha256Hex,
      files: z.number().int().min(0).optional(),
    }),
    z.object({ replaced: z.boolean() }),
  ),
  /**
   * Records, for the caller, which files' content ids the folder `contentId`
   * holds, in batches before its `publish`; `sources` of such a file then
   * lists the folder's online owners too.
   */
  members: method(
    z.object({ contentId: Sha256Hex, files: z.array(Sha256Hex).max(MAX_BATCH_IDS) }),
    Empty,
  ),
  /**
   * For each content id, which online accounts hold it (published alone or in
   * a folder), as indexes into `sources`: at most MAX_HOLDERS_PER_ID per
   * id, MAX_SOURCES in all; with a ticket good for every content.
   */
  holders: method(
    z.object({ contentIds: z.array(Sha256Hex).max(MAX_BATCH_IDS) }),
    z.object({
      sources: z.array(Source).max(MAX_SOURCES),
      holds: z.array(z.array(z.number().int().min(0)).max(MAX_HOLDERS_PER_ID))
        .max(MAX_BATCH_IDS),
      ticket: z.string().max(2048),
    }),
  ),
  unpublish: method(z.object({ name: FileName }), Empty),
  /**
   * The owners of a name (only `owner`'s, if given), online first: at most
   * MAX_LISTINGS rows, and how many there are in all.
   */
  lookup: method(
    z.object({ name: FileName, owner: Username.optional() }),
    z.object({ files: z.array(Listing).max(MAX_LISTINGS), total: Count }),
  ),
  /** The publications of one content id (a `shoal:` link), online owners first. */
  lookupContent: method(
    z.object({ contentId: Sha256Hex }),
    z.object({ files: z.array(Listing).max(MAX_LISTINGS), total: Count }),
  ),
  search: method(
    z.object({ text: z.string().max(255) }),
    z.object({ files: z.array(Listing).max(MAX_LISTINGS), total: Count }),
  ),
  /**
   * The online peers that can serve this content (only `owner`, if given),
   * complete owners first, one row per account: at most MAX_SOURCES, and how
   * many there are in all; with a fresh download ticket, which every source asks for.
   */
  sources: method(
    z.object({ contentId: Sha256Hex, owner: Username.optional() }),
    z.object({
      sources: z.array(Source).max(MAX_SOURCES),
      total: Count,
      ticket: z.string().max(2048),
    }),
  ),
  /**
   * Lists this connection as a partial source of the content, serving at
   * `port` (and `host`, or the address the tracker sees), until it closes.
   */
  downloading: method(
    z.object({
      contentId: Sha256Hex,
      host: Host.optional(),
      port: Port,
      certificate: AnnouncedCertificate.optional(),
      proof: CertificateProof.optional(),
    }),
    z.object({ address: z.string(), ticketKey: z.string().max(64) }),
  ),
} as const;

/** Requests a peer answers on its serving port. */
export const PEER_METHODS = {
  hello: Hello,
  ping: method(Empty, z.object({ username: Username.nullable(), time: z.number() })),
  manifest: method(
    z.object({ contentId: Sha256Hex, ticket: Ticket }),
    z.object({ manifest: Manifest }),
  ),
  have: method(z.object({ contentId: Sha256Hex, ticket: Ticket }), Have),
  /**
   * A chunk of a folder's manifest from byte `offset`: `total` bytes in all,
   * `length` (at most FOLDER_CHUNK_BYTES) follow the reply frame.
   */
  folder: method(
    z.object({ contentId: Sha256Hex, offset: ByteCount, ticket: Ticket }),
    z.object({
      total: z.number().int().min(0).max(MAX_FOLDER_MANIFEST_BYTES),
      length: z.number().int().min(0).max(FOLDER_CHUNK_BYTES),
    }),
  ),
  /** The reply frame is followed by `length` raw bytes of the piece. */
  piece: method(
    z.object({
      contentId: Sha256Hex,
      index: z.number().int().min(0),
      ticket: Ticket,
      /**
       * Pieces of the same length the downloader would take instead of
       * `index` (a bitfield): the server may send one of them, and says which
       * in the reply's `index`.
       */
      alternatives: BitfieldBase64.optional(),
    }),
    z.object({
      index: z.number().int().min(0),
      length: z.number().int().min(0).max(MAX_PIECE_BYTES),
    }),
  ),
  /**
   * Many small contents at once (a folder's small files): each item a piece
   * of a content under BATCHED_BELOW_BYTES, at most MAX_BATCH_ITEMS items
   * and MAX_BATCH_BYTES in all. The reply lists, in the order asked, each
   * item's `length` or its own `error` (one missing file does not fail the
   * batch); the items' bytes follow it back to back, `length` in all.
   */
  pieces: method(
    z.object({
      items: z.array(z.object({ contentId: Sha256Hex, index: z.number().int().min(0) }))
        .min(1).max(MAX_BATCH_ITEMS),
      ticket: Ticket,
    }),
    z.object({
      length: z.number().int().min(0).max(MAX_BATCH_BYTES),
      items: z.array(BatchItem).max(MAX_BATCH_ITEMS),
    }).refine(
      (reply) =>
        reply.items.reduce((sum, item) => sum + ("length" in item ? item.length : 0), 0) ===
          reply.length,
      "the items' lengths do not add up to the body's length",
    ),
  ),
  /**
   * A downloader's place for an upload slot: 0 when it holds one (or needs
   * none), else its place in line (1 is next); asking keeps it in line.
   */
  queue: method(
    z.object({ contentId: Sha256Hex, ticket: Ticket }),
    z.object({
      place: z.number().int().min(0),
      slots: z.number().int().min(1),
      retryMs: z.number().int().min(0).max(60_000),
    }),
  ),
} as const;

/** Methods whose reply frame is followed by `result.length` raw bytes. */
export const METHODS_WITH_BODY: ReadonlySet<string> = new Set(["piece", "folder", "pieces"]);

export type MethodTable = Record<string, Method>;
export type TrackerMethods = typeof TRACKER_METHODS;
export type PeerMethods = typeof PEER_METHODS;
export type ParamsOf<T extends MethodTable, K extends keyof T> = z.infer<T[K]["params"]>;
export type ResultOf<T extends MethodTable, K extends keyof T> = z.infer<T[K]["result"]>;

/**
 * Checks a `pieces` reply against the request it answers, before its body is
 * read: one item per item asked, in order, and each item sent exactly as
 * long as the downloader knows it is (`lengths`, from the manifest). Throws
 * BAD_MESSAGE otherwise: the sender is broken or hostile.
 */
export function checkBatchReply(
  lengths: readonly number[],
  reply: ResultOf<PeerMethods, "pieces">,
): void {
  if (reply.items.length !== lengths.length) {
    throw new ShoalError(
      "BAD_MESSAGE",
      `a pieces reply listed ${reply.items.length} items where ${lengths.length} were asked`,
    );
  }
  for (let i = 0; i < lengths.length; i++) {
    const item = reply.items[i];
    if ("length" in item && item.length !== lengths[i]) {
      throw new ShoalError(
        "BAD_MESSAGE",
        `a pieces reply announced ${item.length} bytes for item ${i} where ${
          lengths[i]
        } were expected`,
      );
    }
  }
}

/** The envelope of every request: an id the reply echoes, a type, and its parameters. */
const RequestEnvelope = z.object({
  id: z.number().int().min(0),
  type: z.string().max(64),
  params: z.unknown().optional(),
});

const ErrorBody = z.object({ code: z.string(), message: z.string() });
/** The envelope of every reply. */
export const ReplyEnvelope = z.discriminatedUnion("ok", [
  z.object({ id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: ErrorBody }),
]);
export type ReplyEnvelope = z.infer<typeof ReplyEnvelope>;

/** A request that passed validation against its method's schema. */
export interface ParsedRequest<T extends MethodTable> {
  id: number;
  type: keyof T & string;
  params: unknown;
}

/**
 * Validates a decoded frame as a request of `table`. Throws BAD_MESSAGE with
 * the first problem found; the error keeps the request id when there is one,
 * so the reply can still be matched.
 */
export function parseRequest<T extends MethodTable>(
  table: T,
  frame: unknown,
): ParsedRequest<T> {
  const envelope = RequestEnvelope.safeParse(frame);
  if (!envelope.success) {
    throw new ShoalError("BAD_MESSAGE", "a request needs a numeric id and a type");
  }
  const { id, type, params: raw = {} } = envelope.data;
  if (!Object.hasOwn(table, type)) {
    throw new RequestError(id, new ShoalError("BAD_MESSAGE", `unknown request type "${type}"`));
  }
  const params = table[type].params.safeParse(raw);
  if (!params.success) {
    const issue = params.error.issues[0];
    const code = issue.code === "custom" && issue.params?.shoalCode === INVALID_INPUT.shoalCode
      ? "INVALID_INPUT"
      : "BAD_MESSAGE";
    throw new RequestError(id, new ShoalError(code, describe(type, params.error)));
  }
  return { id, type, params: params.data };
}

/** Validates a result against its method's schema (the client side of parsing at the edge). */
export function parseResult<T extends MethodTable, K extends keyof T & string>(
  table: T,
  type: K,
  result: unknown,
): ResultOf<T, K> {
  const parsed = table[type].result.safeParse(result);
  if (!parsed.success) {
    throw new ShoalError("BAD_MESSAGE", describe(`${type} reply`, parsed.error));
  }
  return parsed.data as ResultOf<T, K>;
}

/** A validation failure that still knows which request it answers. */
export class RequestError extends Error {
  constructor(readonly id: number, readonly error: ShoalError) {
    super(error.message);
  }
}

function describe(what: string, error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue.path.length > 0 ? ` (${issue.path.join(".")})` : "";
  return `invalid ${what}${where}: ${issue.message}`;
}
