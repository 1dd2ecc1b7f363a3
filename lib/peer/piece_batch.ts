/**
 * Reading a `pieces` batch: many small contents (a folder's small files)
 * looked up together and read back to back into one buffer, which is the
 * reply's body. Each item that cannot be sent gets its own error, so one
 * missing or changed file does not fail the others.
 */
import type { BufferPool } from "../protocol/buffer_pool.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import {
  BATCHED_BELOW_BYTES,
  type BatchItem,
  MAX_BATCH_BYTES,
  MAX_BATCH_ERROR_MESSAGE,
  type ParamsOf,
  type PeerMethods,
} from "../protocol/messages.ts";
import { type Catalog, type SmallContent, smallOf } from "./catalog.ts";

/** The items a `pieces` request asks for. */
export type BatchRequest = ParamsOf<PeerMethods, "pieces">["items"];

/** What one share of a batch added up to, for the upload log. */
export interface BatchShare {
  contentId: string;
  name: string | null;
  bytes: number;
  pieces: number;
}

/** A batch read: the reply's items, its body, and the buffer to give back once it is sent. */
export interface BatchRead {
  items: BatchItem[];
  /** The sent items' bytes back to back (a view of `buffer`). */
  body: Uint8Array;
  /** From the pool: released by the caller once the body is written. */
  buffer: Uint8Array;
  /** The bytes sent, by the share they belong to (a folder's files count under the folder). */
  shares: BatchShare[];
}

/**
 * Looks up and reads a batch's items, in the order asked; `covered` says
 * whether the request's ticket covers a content. The reads run one after
 * another straight into their place in one pooled buffer: an item that
 * fails leaves no gap, the next one takes its place. Throws BAD_MESSAGE,
 * for the whole batch, when the items found add up to more than
 * MAX_BATCH_BYTES; `admit` is told the bytes the batch will hold before any
 * is read, and refuses it by throwing (see BatchBudget).
 *
 * @example
 * ```ts
 * const read = await readBatch(catalog, [{ contentId, index: 0 }], () => true, pool);
 * // read.items: [{ length: 16384 }], read.body: its 16384 bytes
 * pool.release(read.buffer);
 * ```
 */
export async function readBatch(
  catalog: Catalog,
  asked: BatchRequest,
  covered: (contentId: string) => boolean,
  buffers: BufferPool,
  admit: (bytes: number) => void = () => {},
): Promise<BatchRead> {
  const contents = await findAll(catalog, asked.map((item) => item.contentId));
  const items: BatchItem[] = new Array(asked.length);
  let total = 0;
  for (let i = 0; i < asked.length; i++) {
    const { contentId, index } = asked[i];
    const content = contents[i];
    const problem = !covered(contentId)
      ? new ShoalError("TICKET_INVALID", "the download ticket is for another content")
      : content instanceof ShoalError
      ? content
      : content === null
      ? new ShoalError("NOT_FOUND", "this peer does not share that content")
      : content.size >= BATCHED_BELOW_BYTES
      ? new ShoalError(
        "BAD_MESSAGE",
        `a content of ${content.size} bytes is not sent in a batch (only those under ${BATCHED_BELOW_BYTES}): ask for its pieces with piece`,
      )
      : index !== 0
      ? new ShoalError("NOT_FOUND", `piece ${index} is beyond the end of the file`)
      : null;
    if (problem) items[i] = errorItem(problem);
    else total += (content as SmallContent).size;
  }
  if (total > MAX_BATCH_BYTES) {
    throw new ShoalError(
      "BAD_MESSAGE",
      `a pieces batch asked for ${total} bytes, more than the ${MAX_BATCH_BYTES} one may carry`,
    );
  }
  admit(total);
  const buffer = buffers.take(total);
  const shares = new Map<string, BatchShare>();
  let filled = 0;
  for (let i = 0; i < asked.length; i++) {
    if (items[i] !== undefined) continue;
    const content = contents[i] as SmallContent;
    const into = buffer.subarray(filled, filled + content.size);
    try {
      // Most catalogs read synchronously: no turn of the event loop per file then.
      const reading = content.read(into);
      if (reading) await reading;
    } catch (error) {
      items[i] = errorItem(toShoalError(error));
      continue;
    }
    items[i] = { length: content.size };
    filled += content.size;
    const key = content.share.contentId;
    const share = shares.get(key);
    if (share) {
      share.bytes += content.size;
      share.pieces++;
    } else {
      shares.set(key, { ...content.share, bytes: content.size, pieces: 1 });
    }
  }
  return { items, body: buffer.subarray(0, filled), buffer, shares: [...shares.values()] };
}

/** Each content found, in order: by the catalog's batch look-up if it has one, else one by one. */
function findAll(
  catalog: Catalog,
  contentIds: string[],
): Promise<(SmallContent | ShoalError | null)[]> {
  if (catalog.findSmall) return catalog.findSmall(contentIds);
  return Promise.all(contentIds.map((contentId) =>
    catalog.find(contentId).then(
      (content) => content && smallOf(content, { contentId, name: content.name ?? null }),
      (error) => toShoalError(error),
    )
  ));
}

/**
 * An item's own error. Its message is cut to what a receiver accepts: one
 * item's long message (say, an unexpected read error's) must not make the
 * whole reply invalid, and with it the connection.
 */
function errorItem(error: ShoalError): BatchItem {
  const message = error.message.length > MAX_BATCH_ERROR_MESSAGE
    ? `${error.message.slice(0, MAX_BATCH_ERROR_MESSAGE - 3)}...`
    : error.message;
  return { error: { code: error.code, message } };
}
