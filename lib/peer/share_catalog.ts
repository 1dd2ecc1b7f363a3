import type { FileHandle } from "node:fs/promises";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { BATCHED_BELOW_BYTES } from "../protocol/messages.ts";
import { Bitfield } from "./bitfield.ts";
import { type Catalog, type ServedContent, type SmallContent, smallOf } from "./catalog.ts";
import type { PeerHome, Share } from "./home.ts";
import {
  contentIdOf,
  type FileIdentity,
  hashFile,
  identityOf,
  openRegularFile,
  readFullyAt,
} from "./manifest.ts";

/** Shares kept open at most; the one used least recently is closed first. */
const MAX_OPEN_SHARES = 32;

/** Options of a {@link ShareCatalog}. */
export interface ShareCatalogOptions {
  /** Tells the owner, once per file, that a share can no longer be served. @default {console.error} */
  warn?: (line: string) => void;
  /**
   * How long a share is served without asking the home whether it is still
   * published and the disk whether its file changed. Downloaders verify
   * every piece, so a change inside this window costs a retry, not a bad file.
   * @default {1000}
   */
  recheckMs?: number;
}

interface OpenShare {
  share: Share;
  /** The `device:inode` of the open file, checked against the share's record. */
  fileId: string | null;
  content: ServedContent;
  checkedAt: number;
  file: FileHandle;
  /** Reads in progress: a retired file is closed once the last one ends. */
  reads: number;
  retired: boolean;
}

/**
 * This peer's published shares, each served from one file handle kept open
 * (a piece is one positional read, not an open, a stat and a lookup). A
 * share whose file changed on disk after publishing is refused rather than
 * served, and so is one whose path now holds a symbolic link or another
 * file (another `device:inode`), even with the same size and time: files
 * are opened with `O_NOFOLLOW` and checked against what was published
 * before any byte is read, in every process and after every restart.
 *
 * @example
 * ```ts
 * const catalog = new ShareCatalog(home);
 * const content = await catalog.find(contentId);
 * await content?.read(0, new Uint8Array(pieceLength(content!.manifest, 0)));
 * await catalog.close();
 * ```
 */
export class ShareCatalog implements Catalog {
  readonly #home: PeerHome;
  readonly #warn: (line: string) => void;
  readonly #recheckMs: number;
  readonly #warned = new Set<string>();
  /** By content id, least recently used first. */
  readonly #open = new Map<string, OpenShare>();
  readonly #checking = new Map<string, Promise<ServedContent | null>>();
  #closed = false;

  constructor(home: PeerHome, options: ShareCatalogOptions = {}) {
    this.#home = home;
    this.#warn = options.warn ?? console.error;
    this.#recheckMs = options.recheckMs ?? 1000;
  }

  find(contentId: string): Promise<ServedContent | null> {
    const kept = this.#open.get(contentId);
    if (kept && performance.now() - kept.checkedAt < this.#recheckMs) {
      this.#open.delete(contentId);
      this.#open.set(contentId, kept);
      return Promise.resolve(kept.content);
    }
    // Requests arriving together share one check.
    let checking = this.#checking.get(contentId);
    if (!checking) {
      checking = this.#check(contentId).finally(() => this.#checking.delete(contentId));
      this.#checking.set(contentId, checking);
    }
    return checking;
  }

  /**
   * Many small shares at once, for a `pieces` batch: their records in two
   * queries (not two per file), each read as {@link #small} reads one but
   * without its `lstat` first (the check on the opened file is the one that
   * counts). A share recorded before identities takes the one-by-one path.
   */
  async findSmall(contentIds: readonly string[]): Promise<(SmallContent | ShoalError | null)[]> {
    const files = this.#home.filesByContent(contentIds);
    const found: (SmallContent | ShoalError | null)[] = [];
    for (let i = 0; i < contentIds.length; i++) {
      const contentId = contentIds[i];
      const file = files[i];
      if (!file) {
        found.push(null);
        continue;
      }
      const share = { contentId: file.shareContentId, name: file.share };
      if (file.fileId === null && file.size < BATCHED_BELOW_BYTES) {
        found.push(
          await this.find(contentId).then(
            (content) => content && smallOf(content, share),
            toShoalError,
          ),
        );
      } else {
        // A larger one is only sized here: the piece server refuses it from a batch unread.
        found.push({ size: file.size, share, read: (into) => this.#readSmall(file, into) });
      }
    }
    return found;
  }

  folderManifest(contentId: string): Promise<string | null> {
    const share = this.#home.folderByContent(contentId);
    return Promise.resolve(share ? this.#home.folderManifestPath(contentId) : null);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#checking.values());
    for (const contentId of [...this.#open.keys()]) this.#retire(contentId);
  }

  async #check(contentId: string): Promise<ServedContent | null> {
    const share = this.#home.shareByContent(contentId);
    if (!share) {
      this.#retire(contentId);
      return null;
    }
    if (share.manifest.pieces.length <= 1) return this.#small(share);
    let info: Deno.FileInfo;
    try {
      // lstat: a symbolic link at the path is never followed, whatever it points to.
      info = await Deno.lstat(share.path);
    } catch {
      this.#retire(contentId);
      this.#refuse(
        share.path,
        "is gone",
        new ShoalError("NOT_FOUND", "the owner's copy of this file is gone"),
      );
    }
    const now = identityOf(info);
    const problem = !info.isFile
      ? "is no longer a regular file (a symbolic link?)"
      : now.size !== share.size || now.mtimeMs !== share.mtimeMs
      ? "changed since it was published"
      : share.fileId !== null && now.fileId !== share.fileId
      ? "was replaced by another file since it was published"
      : null;
    if (problem) {
      this.#retire(contentId);
      this.#refuse(share.path, problem, changed());
    }
    const kept = this.#open.get(contentId);
    if (
      kept && kept.share.path === share.path && kept.share.mtimeMs === share.mtimeMs &&
      kept.fileId === now.fileId
    ) {
      kept.checkedAt = performance.now();
      return kept.content;
    }
    this.#retire(contentId);
    const { file, fileId } = await this.#openShare(share);
    if (this.#closed) {
      await file.close();
      return null;
    }
    const entry: OpenShare = {
      share,
      file,
      fileId,
      checkedAt: performance.now(),
      reads: 0,
      retired: false,
      content: {
        manifest: share.manifest,
        name: share.name,
        have: Bitfield.full(share.manifest.pieces.length),
        read: async (index, into) => {
          const position = share.manifest.pieceSize * index;
          if (entry.retired) {
            // Handed out before it was retired (its file may be closed by now): read once,
            // afresh, and only from the very file that was checked.
            const once = await openRegularFile(share.path).catch(() => {
              throw changed();
            });
            try {
              if (once.identity.fileId !== fileId) throw changed();
              return await readPiece(once.file, position, into);
            } finally {
              await once.file.close();
            }
          }
          entry.reads++;
          try {
            await readPiece(file, position, into);
          } finally {
            entry.reads--;
            if (entry.retired && entry.reads === 0) file.close().catch(() => {});
          }
        },
      },
    };
    this.#open.set(contentId, entry);
    if (this.#open.size > MAX_OPEN_SHARES) this.#retire(this.#open.keys().next().value!);
    return entry.content;
  }

  /**
   * A share of at most one piece (the small files of a folder, thousands of
   * them): served without keeping its file open, each read a synchronous
   * open with `O_NOFOLLOW`, a check that it is the very file published
   * (`device:inode`, size and time, as for every share), one read and a
   * close. In the page cache these take microseconds, where a hand-off to an
   * I/O thread per call costs more than the read.
   */
  #small(share: Share): ServedContent {
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(share.path);
    } catch {
      this.#refuse(
        share.path,
        "is gone",
        new ShoalError("NOT_FOUND", "the owner's copy of this file is gone"),
      );
    }
    if (!info.isFile) {
      this.#refuse(share.path, "is no longer a regular file (a symbolic link?)", changed());
    }
    this.#checkIdentity(share, identityOf(info));
    return {
      manifest: share.manifest,
      have: Bitfield.full(share.manifest.pieces.length),
      read: (_index, into) => {
        try {
          this.#readSmall(share, into);
          return Promise.resolve();
        } catch (error) {
          return Promise.reject(toShoalError(error));
        }
      },
    };
  }

  /**
   * Reads a file of at most one piece whole, synchronously, only if it is
   * the very file published: opened with `O_NOFOLLOW` (a link at the path
   * is never followed) and `O_NONBLOCK` (a FIFO swapped in cannot hang the
   * process), then checked through its own handle (a regular file with the
   * recorded `device:inode`, size and time) before a byte is read. Four
   * calls: open, fstat, read, close.
   */
  #readSmall(
    share: { path: string; size: number; mtimeMs: number; fileId: string | null },
    into: Uint8Array,
  ): void {
    let fd: number;
    try {
      fd = openSync(share.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ENOENT") {
        this.#refuse(
          share.path,
          "is gone",
          new ShoalError("NOT_FOUND", "the owner's copy of this file is gone"),
        );
      }
      this.#refuse(
        share.path,
        code === "ELOOP"
          ? "is no longer a regular file (a symbolic link?)"
          : `cannot be opened (${code})`,
        changed(),
      );
    }
    try {
      const opened = statOpened(fd);
      if (!opened.isFile) {
        this.#refuse(share.path, "is no longer a regular file", changed());
      }
      this.#checkIdentity(share, identityOf(opened));
      let filled = 0;
      while (filled < into.length) {
        const read = readSync(fd, into, filled, into.length - filled, filled);
        if (read === 0) throw changed();
        filled += read;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Refuses a file whose size, time or `device:inode` is not the share's. */
  #checkIdentity(
    share: { path: string; size: number; mtimeMs: number; fileId: string | null },
    now: FileIdentity,
  ): void {
    if (
      now.size !== share.size || now.mtimeMs !== share.mtimeMs ||
      (share.fileId !== null && now.fileId !== share.fileId)
    ) {
      this.#refuse(share.path, "changed since it was published", changed());
    }
  }

  /**
   * Opens a share's file without following a link, and makes sure it is the
   * file that was published: the same `device:inode` as recorded, or, for a
   * share recorded before identities were, the same content, hashed through
   * this very handle before a byte of it is served.
   */
  async #openShare(share: Share): Promise<{ file: FileHandle; fileId: string | null }> {
    let opened;
    try {
      opened = await openRegularFile(share.path);
    } catch (error) {
      const { message } = toShoalError(error);
      if (!this.#warned.has(share.path)) {
        this.#warned.add(share.path);
        this.#warn(`warning: cannot serve ${share.path}: ${message}`);
      }
      // The local path and its problem stay here; the downloader learns only that it changed.
      throw changed();
    }
    const { file, identity } = opened;
    const replaced = share.fileId !== null
      ? identity.fileId !== share.fileId
      : !await this.#sameContent(file, share);
    if (replaced || identity.size !== share.size || identity.mtimeMs !== share.mtimeMs) {
      await file.close();
      this.#refuse(share.path, "is not the file that was published", changed());
    }
    if (share.fileId === null && identity.fileId !== null) {
      this.#home.setShareFileId(share, identity.fileId);
    }
    return { file, fileId: identity.fileId };
  }

  /** Whether an open file still hashes to a share's content id. */
  async #sameContent(file: FileHandle, share: Share): Promise<boolean> {
    try {
      return contentIdOf(await hashFile(file, share.size, share.path)) === share.contentId;
    } catch {
      return false;
    }
  }

  /** Stops serving from a kept file; it closes once its last read ends. */
  #retire(contentId: string): void {
    const kept = this.#open.get(contentId);
    if (!kept) return;
    this.#open.delete(contentId);
    kept.retired = true;
    if (kept.reads === 0) kept.file.close().catch(() => {});
  }

  #refuse(path: string, problem: string, error: ShoalError): never {
    if (!this.#warned.has(path)) {
      this.#warned.add(path);
      this.#warn(`warning: ${path} ${problem}; publish it again to share it`);
    }
    throw error;
  }
}

/**
 * This process's open descriptors in procfs, by its pid rather than through
 * `/proc/self`: the kernel then resolves no `self` link on every stat.
 */
const PROC_FDS = `/proc/${Deno.pid}/fd/`;

/**
 * Whether {@link PROC_FDS} may be read: Linux, with the permission granted
 * already (no prompt); false from its first failure on (a Linux without
 * procfs mounted, as in some containers, would fail once a file otherwise).
 */
let procFd = Deno.build.os === "linux" &&
  Deno.permissions.querySync({ name: "read", path: PROC_FDS }).state === "granted";

/**
 * The status of the very file an open descriptor holds, as `fstat` gives
 * it. On Linux through `/proc/<pid>/fd/N`, which resolves to the file the
 * descriptor holds, not to whatever its path names now: node's `fstatSync`
 * builds a `Stats` object that costs about as much as the open, the read
 * and the close of a small file together.
 */
function statOpened(fd: number): Deno.FileInfo {
  if (procFd) {
    try {
      return Deno.statSync(PROC_FDS + fd);
    } catch {
      // No procfs after all: fstat below, and from now on.
      procFd = false;
    }
  }
  const info = fstatSync(fd);
  return {
    isFile: info.isFile(),
    size: info.size,
    mtime: info.mtime,
    dev: info.dev,
    ino: info.ino,
  } as Deno.FileInfo;
}

/** The error a downloader gets for a share whose file is not the one published. */
function changed(): ShoalError {
  return new ShoalError(
    "CONTENT_CHANGED",
    "the owner's copy of this file changed since it was published; they need to publish it again",
  );
}

/** Fills `into` from `position`, or fails with CONTENT_CHANGED if the file got shorter. */
async function readPiece(file: FileHandle, position: number, into: Uint8Array): Promise<void> {
  if (!await readFullyAt(file, position, into)) {
    throw new ShoalError("CONTENT_CHANGED", "the file is shorter than when it was published");
  }
}
