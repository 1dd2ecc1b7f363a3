import { basename, extname, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { FileName } from "../protocol/messages.ts";
import { check } from "../protocol/validate.ts";
import type { PeerHome, Share } from "./home.ts";
import { contentIdOf, hashFile, identityOf, openRegularFile } from "./manifest.ts";
import { notLoggedIn, type TrackerEndpoint, withSession } from "./tracker_link.ts";
import { matchingNames, spellings } from "./name_match.ts";
import { quoteWord } from "../invocation.ts";

/** A file's type: its extension, lowercased, or empty when it has none usable. */
export function fileTypeOf(path: string): string {
  const type = extname(path).slice(1).toLowerCase();
  return /^[a-z0-9]{1,16}$/.test(type) ? type : "";
}

/** Checks a name against the protocol's rules, with the rule as the message. */
export function checkName(name: string): string {
  return check(FileName, name);
}

/**
 * Hashes a local file into a share record, checking it did not change while
 * hashed. A symbolic link is published as the file it points to now: the
 * record holds that file's real path and identity, and serving never follows
 * a link (see `ShareCatalog`).
 */
export async function describeFile(
  name: string,
  path: string,
  signal?: AbortSignal,
  onProgress?: (bytes: number, size: number) => void,
): Promise<Share> {
  let real: string;
  try {
    real = await Deno.realPath(resolve(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ShoalError("IO", `no such file or folder: ${path}`, {
        hint: `a relative path starts in the folder you typed the command in (${Deno.cwd()})`,
      });
    }
    if (error instanceof Deno.errors.NotADirectory) {
      throw new ShoalError("IO", `no such file or folder: ${path}`, {
        hint: "a part of that path is a file, not a folder",
      });
    }
    throw new ShoalError("IO", `cannot read ${path}: ${(error as Error).message}`);
  }
  const { file, identity: before } = await openRegularFile(real);
  let manifest;
  try {
    manifest = await hashFile(
      file,
      before.size,
      path,
      signal,
      onProgress && ((bytes) => onProgress(bytes, before.size)),
    );
  } finally {
    await file.close();
  }
  const after = identityOf(
    await Deno.lstat(real).catch(() => {
      throw new ShoalError("CONTENT_CHANGED", `${path} was removed while it was being hashed`);
    }),
  );
  if (
    after.size !== before.size || after.mtimeMs !== before.mtimeMs ||
    after.fileId !== before.fileId
  ) {
    throw new ShoalError("CONTENT_CHANGED", `${path} changed while it was being hashed; try again`);
  }
  return {
    name,
    path: real,
    type: fileTypeOf(path),
    size: manifest.size,
    mtimeMs: after.mtimeMs,
    fileId: after.fileId,
    contentId: contentIdOf(manifest),
    manifest,
    publishedAt: new Date().toISOString(),
  };
}

/** Tells the tracker about a share and records it in the home. */
export async function announceShare(home: PeerHome, tracker: TrackerEndpoint, share: Share) {
  return await withSession(home, tracker, async (client) => {
    const { replaced } = await client.call("publish", {
      name: share.name,
      type: share.type,
      size: share.size,
      contentId: share.contentId,
    });
    home.addShare(share);
    return { replaced };
  });
}

/**
 * Publishes a local file under a name (by default its file name). The file
 * stays where it is; only its name, size, type and content id reach the tracker.
 */
export async function publish(
  home: PeerHome,
  tracker: TrackerEndpoint,
  path: string,
  name = basename(path),
  signal?: AbortSignal,
  onProgress?: (bytes: number, size: number) => void,
): Promise<{ share: Share; replaced: boolean }> {
  checkName(name);
  if (!home.session()) throw notLoggedIn();
  const share = await describeFile(name, path, signal, onProgress);
  const { replaced } = await announceShare(home, tracker, share);
  return { share, replaced };
}

/**
 * Withdraws a publication (its name in any case, the exact spelling first);
 * the local file is left alone. Returns the name as it was published.
 */
export async function unpublish(
  home: PeerHome,
  tracker: TrackerEndpoint,
  typedAs: string,
): Promise<string> {
  // A folder's name as the shell completes it (`course/`): no name holds a slash, so it is that.
  const typed = /[^/]\/+$/.test(typedAs) ? typedAs.replace(/\/+$/, "") : typedAs;
  // Names match as in fetch: the exact spelling, else the one share of that name in any case.
  const mine = spellings(matchingNames(home.shares(), typed, (share) => share.name), (s) => s.name);
  const name = mine.length === 1 ? mine[0] : typed;
  // A path inside a shared folder: the folder is shared whole, so no one file of it is withdrawn.
  const folder = typed.includes("/") ? home.share(typed.slice(0, typed.indexOf("/"))) : null;
  if (folder?.kind === "folder") {
    throw new ShoalError(
      "INVALID_INPUT",
      `"${typed}" is inside your folder "${folder.name}", which is shared whole`,
      {
        hint: `move the file out of ${folder.path} and \`peer.ts publish ${
          quoteWord(folder.name)
        } ${quoteWord(folder.path)}\` again, or \`peer.ts unpublish ${quoteWord(folder.name)}\``,
      },
    );
  }
  await withSession(home, tracker, async (client) => {
    try {
      await client.call("unpublish", { name });
    } catch (error) {
      // Not published there (any more): still stop serving it here. Otherwise keep both in step.
      if (error instanceof ShoalError && error.code === "NOT_FOUND") {
        home.removeShare(name);
        // The tracker's words name a file: a folder is as likely here.
        throw new ShoalError("NOT_FOUND", `you share no file or folder named "${typed}"`, {
          hint: "`peer.ts view` lists what you share",
        });
      }
      throw error;
    }
    home.removeShare(name);
  });
  return name;
}

/** This peer's shares, from its home (works with the tracker down). */
export function view(home: PeerHome): Share[] {
  if (!home.session()) throw notLoggedIn();
  return home.shares();
}
