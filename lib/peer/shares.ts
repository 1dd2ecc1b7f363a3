import { basename, extname, resolve } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import { FileName } from "../protocol/messages.ts";
import { check } from "../protocol/validate.ts";
import type { PeerHome, Share } from "./home.ts";
import { buildManifest, contentIdOf } from "./manifest.ts";
import { notLoggedIn, type TrackerEndpoint, withSession } from "./tracker_link.ts";

/** A file's type: its extension, lowercased, or empty when it has none usable. */
export function fileTypeOf(path: string): string {
  const type = extname(path).slice(1).toLowerCase();
  return /^[a-z0-9]{1,16}$/.test(type) ? type : "";
}

/** Checks a name against the protocol's rules, with the rule as the message. */
export function checkName(name: string): string {
  return check(FileName, name);
}

/** Stats a path that must be a readable regular file, with a one-line error otherwise. */
export async function statRegularFile(path: string): Promise<Deno.FileInfo> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
    // Checked before opening: opening a FIFO waits for a writer, forever.
    if (!info.isFile) throw new ShoalError("IO", `not a regular file: ${path} is ${kindOf(info)}`);
    (await Deno.open(path, { read: true })).close();
  } catch (error) {
    if (error instanceof ShoalError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new ShoalError("IO", `no such file: ${path}`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new ShoalError("IO", `cannot read ${path}: permission denied`);
    }
    throw new ShoalError("IO", `cannot read ${path}: ${(error as Error).message}`);
  }
  return info;
}

/** What a path that is not a regular file is, for the message that refuses it. */
function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a folder";
  if (info.isFifo) return "a named pipe (FIFO)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "not a file";
}

/** Hashes a local file into a share record, checking it did not change while hashed. */
export async function describeFile(
  name: string,
  path: string,
  signal?: AbortSignal,
): Promise<Share> {
  const absolute = resolve(path);
  const before = await statRegularFile(absolute);
  const manifest = await buildManifest(absolute, signal);
  const after = await statRegularFile(absolute);
  if (after.size !== before.size || after.mtime?.getTime() !== before.mtime?.getTime()) {
    throw new ShoalError("CONTENT_CHANGED", `${path} changed while it was being hashed; try again`);
  }
  return {
    name,
    path: absolute,
    type: fileTypeOf(absolute),
    size: manifest.size,
    mtimeMs: after.mtime?.getTime() ?? 0,
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
): Promise<{ share: Share; replaced: boolean }> {
  checkName(name);
  if (!home.session()) throw notLoggedIn();
  const share = await describeFile(name, path, signal);
  const { replaced } = await announceShare(home, tracker, share);
  return { share, replaced };
}

/** Withdraws a publication; the local file is left alone. */
export async function unpublish(
  home: PeerHome,
  tracker: TrackerEndpoint,
  name: string,
): Promise<void> {
  await withSession(home, tracker, async (client) => {
    try {
      await client.call("unpublish", { name });
    } catch (error) {
      // Not published there (any more): still stop serving it here. Otherwise keep both in step.
      if (error instanceof ShoalError && error.code === "NOT_FOUND") home.removeShare(name);
      throw error;
    }
    home.removeShare(name);
  });
}

/** This peer's shares, from its home (works with the tracker down). */
export function view(home: PeerHome): Share[] {
  if (!home.session()) throw notLoggedIn();
  return home.shares();
}
