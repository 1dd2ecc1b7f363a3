/** `tracker.ts serve`'s HTTP side as the operator starts it: flags, the dashboard line, the certificate. */
import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli/errors.ts";
import type { ShoalError } from "../../lib/protocol/errors.ts";
import { buildTrackerProgram } from "../../lib/cli/tracker_program.ts";
import { createIdentity, fingerprintOf } from "../../lib/identity/certificate.ts";
import { TLS_SERVER_NAME } from "../../lib/protocol/tls.ts";
import { startTracker, tempDir } from "../helpers/processes.ts";

const serve = (...args: string[]) =>
  buildTrackerProgram().parseAsync(["serve", "--port", "0", ...args], { from: "user" });

Deno.test("tracker serve - a bad --http-port, or --tls-cert without --tls-key, is a usage error before anything starts", async () => {
  await using dir = await tempDir("shoal-http-flags-");
  const db = `${dir.path}/tracker.db`;
  await assert.rejects(
    serve("--db", db, "--http-port", "web"),
    new UsageError(
      '--http-port: invalid port "web"; give a number up to 65535, 0 for a free one, or off',
    ),
  );
  await assert.rejects(
    serve("--db", db, "--tls-cert", `${dir.path}/cert.pem`),
    new UsageError("--tls-cert and --tls-key go together: pass both, or neither"),
  );
  await assert.rejects(serve("--db", db, "--log-format", "xml"), /Allowed choices are text, json/);
  assert.equal(await Deno.stat(db).then(() => true, () => false), false, "no database made");
});

Deno.test("tracker serve --tls-cert/--tls-key - both ports serve that certificate, and the dashboard line says where", async () => {
  await using dir = await tempDir("shoal-http-tls-");
  const identity = await createIdentity();
  await Deno.writeTextFile(`${dir.path}/cert.pem`, identity.certificate);
  await Deno.writeTextFile(`${dir.path}/key.pem`, identity.key, { mode: 0o600 });
  const tracker = await startTracker({
    db: `${dir.path}/tracker.db`,
    extra: ["--tls-cert", `${dir.path}/cert.pem`, "--tls-key", `${dir.path}/key.pem`],
  });
  try {
    const [, port] = await tracker.daemon.waitFor(/^dashboard on https:\/\/127\.0\.0\.1:(\d+)$/);
    await tracker.daemon.waitFor(
      new RegExp(
        `^TLS certificate fingerprint: ${RegExp.escape(fingerprintOf(identity.certificate))}$`,
      ),
    );
    using tcp = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    const conn = await Deno.startTls(tcp, {
      hostname: TLS_SERVER_NAME,
      caCerts: [identity.certificate],
    });
    await conn.write(
      new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n"),
    );
    let text = "";
    for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) text += chunk;
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /"database":"ok"/);
  } finally {
    await tracker.daemon.stop();
  }
});

Deno.test("tracker serve --http-port off - no dashboard line, and the log goes to stderr as JSON", async () => {
  await using dir = await tempDir("shoal-http-off-");
  const tracker = await startTracker({
    db: `${dir.path}/tracker.db`,
    extra: ["--insecure-plaintext", "--http-port", "off", "--log-format", "json"],
  });
  await tracker.daemon.stop();
  assert.equal(tracker.daemon.lines.some((line) => line.startsWith("dashboard on")), false);
  const log = (await tracker.daemon.stderr()).split("\n").filter((line) => line.startsWith("{"));
  const start = JSON.parse(log[0]);
  assert.equal(start.msg, "start");
  assert.equal(start.level, "info");
  assert.equal(start.address, tracker.address);
});

Deno.test("tracker serve --tls-cert/--tls-key - a key of another certificate, or the two files swapped, is one clear line before anything listens", async () => {
  await using dir = await tempDir("shoal-http-tls-bad-");
  const [mine, other] = [await createIdentity(), await createIdentity()];
  const cert = `${dir.path}/cert.pem`;
  const key = `${dir.path}/key.pem`;
  const otherKey = `${dir.path}/other-key.pem`;
  await Deno.writeTextFile(cert, mine.certificate);
  await Deno.writeTextFile(key, mine.key, { mode: 0o600 });
  await Deno.writeTextFile(otherKey, other.key, { mode: 0o600 });
  const db = `${dir.path}/tracker.db`;
  await assert.rejects(
    serve("--db", db, "--no-announce", "--tls-cert", cert, "--tls-key", otherKey),
    (error: ShoalError) => {
      assert.equal(
        error.message,
        `the key (--tls-key) ${otherKey} is not the key of the certificate (--tls-cert) ${cert}`,
      );
      return true;
    },
  );
  await assert.rejects(
    serve("--db", db, "--no-announce", "--tls-cert", key, "--tls-key", cert),
    /it holds no certificate but a private key \(swapped --tls-cert and --tls-key\?\)/,
  );
});
