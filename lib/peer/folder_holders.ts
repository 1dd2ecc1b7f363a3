/**
 * Finding the sources of a folder fetch's files: the folder's own owners
 * (who hold every file) and, through `holders`, every peer that holds one of
 * its files by content id, however it shares it.
 */
import { delay } from "../async/delay.ts";
import { MAX_BATCH_IDS, type Source } from "../protocol/messages.ts";
import type { PlannedFile, PlannedSource, PlannedSources } from "./folder_download.ts";
import type { FolderFile } from "./folder_manifest.ts";
import type { TrackerClient } from "./tracker_link.ts";

/**
 * Content ids in the first `holders` batch when the folder's own owners are
 * online: its ticket is all the download needs to start, and the holders of
 * the other files come while it runs.
 */
const FIRST_HOLDERS = 64;

/**
 * How long a download that its folder's owners carry runs before the holders
 * of the rest of its files are looked up: a folder fetched within it needs no
 * other source, and 10,000 lookups take the tracker a tenth of a second of
 * CPU, taken from the transfer on a small machine. A download left short of
 * sources before then looks for them at once (FolderDownload's own look).
 */
const REST_HOLDERS_AFTER_MS = 1000;

/** The folder's sources as the tracker lists them (`sources` of its content id). */
export interface FolderSources {
  sources: Source[];
  ticket: string;
}

/**
 * The sources of the planned files still to fetch: batches of content ids
 * to `holders`, pipelined on the tracker connection; each source with the
 * files it holds. With `later`, when the folder's own owners (who hold every
 * file, `later.owners` as the caller had them listed) are online, it returns
 * once the first few files' holders are known, and hands the holders of the
 * rest to `later.found`, looked up if the download still runs
 * REST_HOLDERS_AFTER_MS later (`later.until` not aborted by then; none is
 * asked once it is). A file identical to one of the first few (another
 * path, one content id) is handed on as held by that one's holders.
 */
export async function findHolders(
  client: TrackerClient,
  folderId: string,
  planned: PlannedFile[],
  idOf: (file: FolderFile) => string,
  remaining: number[],
  usable: (source: Source) => boolean,
  onlyChosen?: boolean,
  later?: { owners: FolderSources; found: (found: PlannedSources) => void; until: AbortSignal },
): Promise<{ sources: PlannedSource[]; ticket: string }> {
  const byAddress = new Map<string, PlannedSource>();
  let ticket = "";
  // The folder's own owners hold every file; pinned to one owner, only it counts.
  const owners = later?.owners ?? await client.call("sources", { contentId: folderId });
  for (const source of owners.sources.filter((s) => usable(s) && !s.partial)) {
    byAddress.set(source.address, { source, holds: null });
  }
  ticket = owners.ticket;
  if (onlyChosen && remaining.length > 0) {
    // That ticket is the folder's; its files' pieces need the one `holders` hands out.
    const contentIds = [idOf(planned[remaining[0]])];
    ticket = (await client.call("holders", { contentIds })).ticket;
  }
  if (onlyChosen) return { sources: [...byAddress.values()], ticket };
  // The planned files of each content id (one, but for identical files in one folder), worked
  // out only as far as the lookups under way need: a big folder's ids take a while.
  const filesOf = new Map<string, number | number[]>();
  const ids: string[] = [];
  let scanned = 0;
  const scan = (count: number) => {
    for (; scanned < remaining.length && ids.length < count; scanned++) {
      const i = remaining[scanned];
      const id = idOf(planned[i]);
      const known = filesOf.get(id);
      if (known === undefined) {
        filesOf.set(id, i);
        ids.push(id);
      } else if (typeof known === "number") filesOf.set(id, [known, i]);
      else known.push(i);
    }
  };
  /**
   * Asks the holders of `ids` from `from` to `to`, in batches, into `into`
   * (no more batches once `stop` is aborted); the last ticket.
   */
  const collect = async (
    from: number,
    to: number,
    into: Map<string, PlannedSource>,
    stop?: AbortSignal,
  ) => {
    let last = "";
    // Two batches in flight at a time: pipelined, without 25 replies of a big folder held at once.
    const ask = (at: number) => {
      const contentIds = ids.slice(at, Math.min(at + MAX_BATCH_IDS, to));
      const asked = client.call("holders", { contentIds }).then((reply) => ({ contentIds, reply }));
      // Awaited in turn; one that fails while an earlier one is awaited is not left unhandled.
      asked.catch(() => {});
      return asked;
    };
    let next = from < to ? ask(from) : null;
    for (let at = from; next !== null; at += MAX_BATCH_IDS) {
      const current = next;
      next = at + MAX_BATCH_IDS < to && !stop?.aborted ? ask(at + MAX_BATCH_IDS) : null;
      const { contentIds, reply } = await current;
      last = reply.ticket;
      reply.holds.forEach((holders, k) => {
        for (const index of holders) {
          const source = reply.sources[index];
          if (!source || !usable(source)) continue;
          let entry = into.get(source.address);
          if (!entry) {
            entry = { source, holds: new Set() };
            into.set(source.address, entry);
          }
          const files = filesOf.get(contentIds[k]) ?? [];
          if (entry.holds) { for (const i of [files].flat()) entry.holds.add(i); }
        }
      });
    }
    return last;
  };
  const ownersOnline = byAddress.size > 0;
  if (later && ownersOnline && remaining.length > FIRST_HOLDERS) {
    scan(FIRST_HOLDERS);
    const first = ids.length;
    ticket = await collect(0, first, byAddress) || ticket;
    // The owners again, holding every file, so that the rest's replies do not narrow them.
    const rest = new Map([...byAddress].filter(([, entry]) => entry.holds === null));
    delay(REST_HOLDERS_AFTER_MS, { signal: later.until })
      .then(() => {
        scan(remaining.length);
        // Files later in the list identical to one of the first: its holders hold them too.
        for (const [address, entry] of byAddress) {
          const twins = new Set<number>();
          for (const i of entry.holds ?? []) {
            for (const j of [filesOf.get(idOf(planned[i])) ?? []].flat()) {
              if (!entry.holds!.has(j)) twins.add(j);
            }
          }
          if (twins.size > 0) rest.set(address, { source: entry.source, holds: twins });
        }
        // The download may end meanwhile: its tracker session has other work then.
        return collect(first, ids.length, rest, later.until);
      })
      .then(
        (restTicket) => {
          if (later.until.aborted) return;
          later.found({ sources: [...rest.values()], ticket: restTicket || ticket });
        },
        // Done by then, or the tracker is down: the owners already known carry the download.
        () => {},
      );
    return { sources: [...byAddress.values()], ticket };
  }
  scan(remaining.length);
  ticket = await collect(0, ids.length, byAddress) || ticket;
  return { sources: [...byAddress.values()], ticket };
}
