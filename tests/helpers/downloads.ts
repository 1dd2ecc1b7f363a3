/** Peeking at a peer's download record from a test, the way a second process would. */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { Bitfield } from "../../lib/peer/bitfield.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { Manifest } from "../../lib/protocol/messages.ts";
import { manifestOf } from "./catalog.ts";

/** Verified pieces, total pieces and piece size of a peer's only unfinished download. */
export function downloadState(
  home: string,
): { have: number; total: number; pieceSize: number; size: number } | null {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(join(home, "peer.db"), { readOnly: true });
  } catch {
    return null;
  }
  try {
    const row = db.prepare("SELECT manifest, have FROM downloads LIMIT 1").get() as
      | { manifest: string; have: Uint8Array }
      | undefined;
    if (!row) return null;
    const manifest = Manifest.parse(JSON.parse(row.manifest));
    const have = new Bitfield(manifest.pieces.length, new Uint8Array(row.have));
    return {
      have: have.count,
      total: manifest.pieces.length,
      pieceSize: manifest.pieceSize,
      size: manifest.size,
    };
  } catch {
    // The schema may not exist yet while the peer starts.
    return null;
  } finally {
    db.close();
  }
}

/** Polls until a peer's unfinished download holds at least `pieces` verified pieces. */
export async function waitForPieces(home: string, pieces: number, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = downloadState(home);
    if (state && state.have >= pieces) return state;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the download in ${home} did not reach ${pieces} pieces`);
}

/**
 * A home in `dir`/home with one unfinished download of "notes" (4 pieces of
 * 16 bytes, 3 verified) whose partial file is `partPath`; logged in as alice
 * when `loggedIn`, as the commands that list downloads require.
 */
export function homeWithPartial(
  dir: string,
  partPath: string,
  { loggedIn = false }: { loggedIn?: boolean } = {},
): { home: PeerHome; contentId: string } {
  const home = PeerHome.open(join(dir, "home"));
  if (loggedIn) home.saveSession({ username: "alice", token: "t".repeat(32) });
  const { manifest, contentId } = manifestOf(new Uint8Array(4 * 16).fill(7), 16);
  const have = new Bitfield(4);
  for (const index of [0, 1, 3]) have.set(index);
  const now = new Date().toISOString();
  home.saveDownload({
    contentId,
    name: "notes",
    type: "pdf",
    partPath,
    manifest,
    have: have.bytes,
    startedAt: now,
    updatedAt: now,
  });
  return { home, contentId };
}

/** The content id of the folder download {@link homeWithFolderDownload} records. */
export const FOLDER_CONTENT_ID = "c".repeat(64);

/**
 * A home in `dir`/home, logged in as alice, with one unfinished fetch of the
 * folder "course" to `output`, which built its staging folder when `staged`.
 */
export function homeWithFolderDownload(dir: string, output: string, staged: boolean): PeerHome {
  const home = PeerHome.open(join(dir, "home"));
  home.saveSession({ username: "alice", token: "t".repeat(32) });
  const now = new Date().toISOString();
  home.saveFolderDownload({
    contentId: FOLDER_CONTENT_ID,
    name: "course",
    output,
    only: [],
    size: 10,
    files: 2,
    doneBytes: 5,
    staged,
    startedAt: now,
    updatedAt: now,
  });
  return home;
}
