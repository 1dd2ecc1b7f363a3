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
import { createPrivateKey, X509Certificate } from "node:crypto";
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

/** An identity is a folder: a file given instead is named as such, not "missing" files. */
function refuseNonFolder(dir: string, flag: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch {
    return;
  }
  if (!info.isDirectory) {
    throw new ShoalError("INVALID_INPUT", `${flag} ${dir}: not a folder`, {
      hint: "an identity is a folder of its own (made by tracker.ts identity init --out DIR)",
    });
  }
}

/**
 * Makes a new identity in `dir` (created, private to its owner); refuses a
 * folder that already holds one, so that an identity in use is never
 * replaced by accident.
 */
export async function createTrackerIdentity(dir: string): Promise<TrackerIdentity> {
  refuseNonFolder(dir, "--out");
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
 * Checks that the certificate and key read from `dir` are one pair: a
 * damaged or mixed-up file would otherwise be found only after listening,
 * or at every peer's TLS handshake.
 */
function checkTlsPair(dir: string, tls: TlsIdentity): void {
  const broken = (what: string) =>
    new ShoalError("IO", `${what} (in ${dir})`, {
      hint: "restore the identity's files from a backup or another of the tracker's machines",
    });
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(tls.certificate);
  } catch {
    throw broken("tls-cert.pem is not a PEM certificate");
  }
  let key;
  try {
    key = createPrivateKey(tls.key);
  } catch {
    throw broken("tls-key.pem is not a PEM private key");
  }
  if (!certificate.checkPrivateKey(key)) {
    throw broken("tls-key.pem is not the key of tls-cert.pem: the files come from two identities");
  }
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
  refuseNonFolder(dir, "--identity");
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
  checkTlsPair(dir, tls);
  const ticketKey = await loadOrCreateTicketKey(dir, "ticket-key.pem", options);
  return { tls, ticketKey };
}
