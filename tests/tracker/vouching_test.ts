import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createIdentity, proveCertificate } from "../../lib/identity/certificate.ts";
import { type ErrorCode, ShoalError } from "../../lib/protocol/errors.ts";
import { startTestTracker } from "../helpers/tracker.ts";

const CONTENT_ID = "cd".repeat(32);

/** Matches a ShoalError with this code and message. */
function refused(code: ErrorCode, message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ShoalError, `expected a ShoalError, got ${error}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  };
}

Deno.test("a peer naming another host than the one it connects from is refused", async () => {
  await using running = await startTestTracker();
  const mallory = await running.login("mallory");
  await assert.rejects(
    mallory.call("announce", { port: 4000, host: "10.9.8.7" }),
    refused("INVALID_INPUT", /connects from \(127\.0\.0\.1\).*--allow-advertise/),
  );
  await assert.rejects(
    mallory.call("downloading", { contentId: CONTENT_ID, port: 4000, host: "10.9.8.7" }),
    refused("INVALID_INPUT", /--allow-advertise/),
  );
  assert.equal(await running.store.getPeer("mallory"), null);
  assert.equal(running.tracker.partialSourceCount, 0);

  const { address } = await mallory.call("announce", { port: 4000, host: "127.0.0.1" });
  assert.equal(address, "127.0.0.1:4000");
});

Deno.test("with --allow-advertise a peer is handed out at the host it names", async () => {
  await using running = await startTestTracker({ allowAdvertisedHosts: true });
  const alice = await running.login("alice");
  const { address } = await alice.call("announce", { port: 4000, host: "127.0.0.2" });
  assert.equal(address, "127.0.0.2:4000");
});

Deno.test("an address another online account serves at is refused", async () => {
  await using running = await startTestTracker();
  const alice = await running.login("alice");
  await alice.call("announce", { port: 4000 });
  const mallory = await running.login("mallory");
  await assert.rejects(
    mallory.call("announce", { port: 4000 }),
    refused("INVALID_INPUT", /127\.0\.0\.1:4000 is where another online account serves/),
  );
  await assert.rejects(
    mallory.call("downloading", { contentId: CONTENT_ID, port: 4000 }),
    refused("INVALID_INPUT", /another online account/),
  );
  assert.equal(await running.store.getPeer("mallory"), null);
});

Deno.test("a certificate another online account announced is refused", async () => {
  await using running = await startTestTracker();
  const identity = await createIdentity();
  const { certificate } = identity;
  const alice = await running.login("alice");
  await alice.call("announce", {
    port: 4000,
    certificate,
    proof: proveCertificate(identity.key, "alice"),
  });
  // Even holding the key (say, one home shared by two accounts), a second online account is refused.
  const bob = await running.login("bob");
  await assert.rejects(
    bob.call("announce", { port: 4001, certificate, proof: proveCertificate(identity.key, "bob") }),
    refused("INVALID_INPUT", /already announced by another online account/),
  );
  // The same account may use its certificate again: serving and downloading at once.
  await alice.call("downloading", {
    contentId: CONTENT_ID,
    port: 4000,
    certificate,
    proof: proveCertificate(identity.key, "alice"),
  });
  await alice.call("logout", {});
  const { address } = await bob.call("announce", {
    port: 4001,
    certificate,
    proof: proveCertificate(identity.key, "bob"),
  });
  assert.equal(address, "127.0.0.1:4001");
});

Deno.test("an account cannot announce a certificate whose key it does not hold, so it cannot keep its owner from serving", async () => {
  await using running = await startTestTracker();
  const identity = await createIdentity();
  const { certificate } = identity;
  const alice = await running.login("alice");
  const aliceProof = proveCertificate(identity.key, "alice");
  await alice.call("announce", { port: 4000, certificate, proof: aliceProof });
  // Alice goes offline; mallory read her certificate in a `sources` reply and squats it.
  await alice.call("logout", {});
  const mallory = await running.login("mallory");
  const { key: malloryKey } = await createIdentity();
  for (
    const proof of [undefined, aliceProof, proveCertificate(malloryKey, "mallory"), "AAAA"]
  ) {
    await assert.rejects(
      mallory.call("announce", { port: 4001, certificate, proof }),
      refused("INVALID_INPUT", /without its key's signature for this account/),
    );
    await assert.rejects(
      mallory.call("downloading", { contentId: CONTENT_ID, port: 4001, certificate, proof }),
      refused("INVALID_INPUT", /without its key's signature/),
    );
  }
  assert.equal(running.tracker.partialSourceCount, 0);

  const back = await running.login("alice");
  const { address } = await back.call("announce", { port: 4000, certificate, proof: aliceProof });
  assert.equal(address, "127.0.0.1:4000");
  assert.equal(
    (await running.store.getPeer("alice"))?.certificate,
    new X509Certificate(certificate).toString(),
  );
});

Deno.test("a certificate of line breaks, or of 4 KiB, is refused before any handler runs", async () => {
  await using running = await startTestTracker();
  const mallory = await running.login("mallory");
  const lineBreaks = `-----BEGIN CERTIFICATE-----\r\n${
    "\r\n".repeat(1000)
  }-----END CERTIFICATE-----`;
  await assert.rejects(
    mallory.call("announce", { port: 4000, certificate: lineBreaks }),
    refused("BAD_MESSAGE", /certificate/),
  );
  const { certificate } = await createIdentity();
  const body = certificate.replace(/-----[A-Z ]+-----|\s/g, "");
  const padded = `-----BEGIN CERTIFICATE-----\n${
    body.padEnd(4000, "A")
  }\n-----END CERTIFICATE-----\n`;
  await assert.rejects(
    mallory.call("downloading", { contentId: CONTENT_ID, port: 4000, certificate: padded }),
    refused("BAD_MESSAGE", /certificate/),
  );
  assert.equal(await running.store.getPeer("mallory"), null);
  assert.equal(running.tracker.partialSourceCount, 0);
});

Deno.test("a certificate with CRLF line ends is kept and handed out in canonical PEM", async () => {
  await using running = await startTestTracker();
  const { certificate, key } = await createIdentity();
  const alice = await running.login("alice");
  await alice.call("announce", {
    port: 4000,
    certificate: certificate.replaceAll("\n", "\r\n"),
    proof: proveCertificate(key, "alice"),
  });
  const canonical = new X509Certificate(certificate).toString();
  assert.equal((await running.store.getPeer("alice"))?.certificate, canonical);
});
