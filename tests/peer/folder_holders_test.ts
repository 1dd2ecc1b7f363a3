/**
 * The sources of a folder fetch's files (findHolders), against a fake
 * tracker session: with the folder's owners online, the holders of the
 * first files are asked at once and those of the rest a second later,
 * handed to the download as they come; no more is asked once the download
 * ended, and a file identical to one of the first is known to be held by
 * the first one's holders.
 */
import assert from "node:assert/strict";
import { deadline } from "../../lib/async/deadline.ts";
import type { PlannedFile, PlannedSources } from "../../lib/peer/folder_download.ts";
import { findHolders } from "../../lib/peer/folder_holders.ts";
import type { TrackerClient } from "../../lib/peer/tracker_link.ts";
import { MAX_BATCH_IDS, type Source } from "../../lib/protocol/messages.ts";
import { eventually } from "../helpers/eventually.ts";

const source = (owner: string, port: number): Source => ({
  owner,
  address: `127.0.0.1:${port}`,
  partial: false,
  certificate: null,
});
const OWNER = source("alice", 7001);
const CAROL = source("carol", 7002);

/** `count` planned files, each its own content (`id-N`) but where `same` says otherwise. */
function plannedFiles(count: number, same: Record<number, string> = {}) {
  const files: PlannedFile[] = Array.from({ length: count }, (_, i) => ({
    path: `f${i}`,
    size: 1,
    pieces: ["00"],
  }));
  const ids = new Map(files.map((file, i) => [file, same[i] ?? `id-${i}`]));
  return { files, idOf: (file: PlannedFile) => ids.get(file)! };
}

/**
 * A tracker session whose `holders` replies say `holderOf(id)` holds each
 * id (nobody when null), held back while `holding` (until `answer`); the
 * content ids of each `holders` call, in order.
 */
function fakeTracker(holderOf: (id: string) => Source | null) {
  const asked: string[][] = [];
  const held: (() => void)[] = [];
  const state = {
    asked,
    holding: false,
    /** Answers the calls held back. */
    answer: () => {
      for (const answer of held.splice(0)) answer();
    },
    client: null as unknown as TrackerClient,
  };
  const call = (method: string, params: { contentIds: string[] }) => {
    assert.equal(method, "holders");
    asked.push(params.contentIds);
    const sources: Source[] = [];
    const holds = params.contentIds.map((id) => {
      const holder = holderOf(id);
      if (!holder) return [];
      if (!sources.includes(holder)) sources.push(holder);
      return [sources.indexOf(holder)];
    });
    const reply = { ticket: `ticket-${asked.length}`, sources, holds };
    if (!state.holding) return Promise.resolve(reply);
    return new Promise((resolve) => held.push(() => resolve(reply)));
  };
  state.client = { call } as unknown as TrackerClient;
  return state;
}

/**
 * findHolders of every file of `files` while alice, the folder's owner, is
 * online: the rest's holders go to `found`, until `until` is aborted.
 */
function whileOwnerOnline(
  tracker: ReturnType<typeof fakeTracker>,
  files: PlannedFile[],
  idOf: (file: PlannedFile) => string,
  found: (found: PlannedSources) => void,
  until: AbortSignal,
) {
  const owners = { sources: [OWNER], ticket: "t" };
  const everyone = files.map((_, i) => i);
  return findHolders(tracker.client, "folder", files, idOf, everyone, () => true, false, {
    owners,
    found,
    until,
  });
}

Deno.test("findHolders - with the folder's owners online, the rest's holders come later; none is asked once the download ended", async () => {
  // The first 64, then five batches of the rest.
  const { files, idOf } = plannedFiles(64 + 5 * MAX_BATCH_IDS);
  const tracker = fakeTracker(() => null);
  const ended = new AbortController();
  const { sources } = await whileOwnerOnline(tracker, files, idOf, () => {}, ended.signal);
  assert.deepEqual(sources, [{ source: OWNER, holds: null }]);
  assert.deepEqual(tracker.asked.map((ids) => ids.length), [64], "only the first 64 at once");

  // A second later, the rest; the download ends while its first batches are out.
  tracker.holding = true;
  await eventually(() => tracker.asked.length >= 2, "the rest's lookup started", { tries: 400 });
  ended.abort();
  tracker.holding = false;
  tracker.answer();
  // Bounded: each turn lets one more answer through, as the tracker's would.
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(
    tracker.asked.length <= 3,
    `the first 64, and no more than the two batches out when it ended: ${tracker.asked.length}`,
  );
});

Deno.test("findHolders - a file identical to one of the first is held by that one's holders, found with the rest", async () => {
  // Files 10 and 150 have one content; carol holds it (alone), alice the whole folder.
  const { files, idOf } = plannedFiles(200, { 10: "same", 150: "same" });
  const tracker = fakeTracker((id) => id === "same" ? CAROL : null);
  const found = Promise.withResolvers<PlannedSources>();
  const ended = new AbortController();
  try {
    const first = await whileOwnerOnline(tracker, files, idOf, found.resolve, ended.signal);
    const carolFirst = first.sources.find((s) => s.source.owner === "carol");
    assert.deepEqual([...carolFirst?.holds ?? []], [10]);
    const rest = await deadline(found.promise, 10_000, { what: "the rest's holders" });
    const carolLater = rest.sources.find((s) => s.source.owner === "carol");
    assert.ok(carolLater?.holds?.has(150), "carol holds file 150 too");
  } finally {
    ended.abort();
  }
});
