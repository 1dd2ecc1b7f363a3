/**
 * A tracker identity folder that is damaged or mixed up is refused at load,
 * naming the file, before the tracker listens (else every peer's TLS
 * handshake, or the first line after "listening", would fail without saying
 * which file is wrong).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createTrackerIdentity, loadTrackerIdentity } from "../../lib/identity/tracker_identity.ts";
import { shoalError } from "../helpers/errors.ts";
import { tempDir } from "../helpers/processes.ts";

Deno.test("tracker identity - a made identity loads; a damaged or mixed-up file is named at load", async () => {
  await using dir = await tempDir();
  const one = join(dir.path, "one");
  const other = join(dir.path, "other");
  await createTrackerIdentity(one);
  await createTrackerIdentity(other);
  await loadTrackerIdentity(one);

  const broken = join(dir.path, "broken");
  const fill = async () => {
    await Deno.mkdir(broken, { recursive: true });
    for (const file of ["tls-cert.pem", "tls-key.pem", "ticket-key.pem"]) {
      await Deno.copyFile(join(one, file), join(broken, file));
    }
  };
  await fill();
  await Deno.copyFile(join(other, "tls-cert.pem"), join(broken, "tls-cert.pem"));
  await assert.rejects(
    () => loadTrackerIdentity(broken),
    shoalError("IO", /^tls-key\.pem is not the key of tls-cert\.pem: .* \(in .*broken\)$/),
  );

  await fill();
  await Deno.writeTextFile(join(broken, "tls-cert.pem"), "junk\n");
  await assert.rejects(
    () => loadTrackerIdentity(broken),
    shoalError("IO", /^tls-cert\.pem is not a PEM certificate/),
  );

  await fill();
  await Deno.writeTextFile(join(broken, "tls-key.pem"), "junk\n");
  await assert.rejects(
    () => loadTrackerIdentity(broken),
    shoalError("IO", /^tls-key\.pem is not a PEM private key/),
  );

  await fill();
  await Deno.writeTextFile(join(broken, "ticket-key.pem"), "junk\n");
  await assert.rejects(
    () => loadTrackerIdentity(broken, { warn: () => {} }),
    shoalError("IO", /^the ticket key .*ticket-key\.pem is not an Ed25519 private key/),
  );
});

Deno.test("tracker identity - a file given as the folder is named as one", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "notes.txt");
  await Deno.writeTextFile(file, "notes\n");
  await assert.rejects(
    () => createTrackerIdentity(file),
    shoalError("INVALID_INPUT", /^--out .*notes\.txt: not a folder$/),
  );
  await assert.rejects(
    () => loadTrackerIdentity(file),
    shoalError("INVALID_INPUT", /^--identity .*notes\.txt: not a folder$/),
  );
});
