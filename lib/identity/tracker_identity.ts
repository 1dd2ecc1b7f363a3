/**
 * A tracker identity in a folder of its own, shared by every process of one
 * tracker: its TLS certificate and key and its ticket-signing key. Made once
 * (`tracker.ts identity init --out DIR`) and copied to each machine, so
 * peers see one certificate fingerprint and every process's tickets verify
 * wherever they are checked.
 */
import { join } from "node:path";
import { ShoalError } from "../protocol/errors.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "./key_files.ts";

/** The files of an identity folder. */
export const IDENTITY_FILES = ["tls-cert.pem", "tls-key.pem", "ticket-key.pem"] as const;

/** A tracker's keys, as a process serves with them. */
export interface TrackerIdentity {
  tls: TlsIdentity;
  ticketKey: { privateKey: CryptoKey; publicKey: CryptoKey; publicKeyBase64: string };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes a new identity in `dir` (created, private to its owner); refuses a
 * folder that already holds one, so that an identity in use is never
 * replaced by accident.
 */
export async function createTrackerIdentity(dir: string): Promise<TrackerIdentity> {
  const present = IDENTITY_FILES.filter((file) => exists(join(dir, file)));
  if (present.length > 0) {
    throw new ShoalError(
      "IO",
      `${dir} already holds a tracker identity (${present.join(", ")}); ` +
        "keep using it, or pass another --out folder",
    );
  }
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new ShoalError("IO", `cannot create ${dir}: ${(error as Error).message}`);
  }
  return await loadTrackerIdentity(dir, { create: true });
}

/**
 * Loads the identity in `dir`; all three files must be there (unless
 * `create`), since a process that made its own would not be the same
 * tracker as the others.
 */
export async function loadTrackerIdentity(
  dir: string,
  options: { create?: boolean; warn?: (line: string) => void } = {},
): Promise<TrackerIdentity> {
  const missing = IDENTITY_FILES.filter((file) => !exists(join(dir, file)));
  if (!options.create && missing.length > 0) {
    throw new ShoalError(
      "NOT_FOUND",
      `no tracker identity in ${dir} (missing ${missing.join(", ")})`,
      {
        hint:
          `make one with: tracker.ts identity init --out ${dir}, and copy it to every tracker machine`,
      },
    );
  }
  const tls = await loadOrCreateIdentity(dir, "tls-", options);
  const ticketKey = await loadOrCreateTicketKey(dir, "ticket-key.pem", options);
  return { tls, ticketKey };
}
