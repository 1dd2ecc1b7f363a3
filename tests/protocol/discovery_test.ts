/**
 * The TXT record a tracker announces on the local network, as bytes on the
 * wire and back, and what a peer makes of one it receives. Pure functions:
 * nothing here opens a socket.
 */
import assert from "node:assert/strict";
import { decodeTrackerTxt, encodeTrackerTxt } from "../../lib/protocol/discovery.ts";

const FINGERPRINT = `SHA256:${Array(32).fill("6C").join(":")}`;

Deno.test("discovery TXT - a TLS tracker's record holds its version, name, TLS flag and fingerprint", () => {
  const txt = encodeTrackerTxt({ name: "lab-1", version: 2, tls: true, fingerprint: FINGERPRINT });
  assert.deepEqual(txt, { v: "2", name: "lab-1", tls: "1", fp: FINGERPRINT });
  assert.deepEqual(decodeTrackerTxt(txt), {
    name: "lab-1",
    version: 2,
    tls: true,
    fingerprint: FINGERPRINT,
  });
});

Deno.test("discovery TXT - values arrive as bytes too, and a bound host is kept", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const txt = { v: bytes("2"), name: bytes("lab.one"), tls: bytes("0"), host: bytes("10.0.0.5") };
  assert.deepEqual(decodeTrackerTxt(txt), {
    name: "lab.one",
    version: 2,
    tls: false,
    host: "10.0.0.5",
  });
});

Deno.test("discovery TXT - a record that is not a Shoal tracker's is ignored", () => {
  const good = { v: "2", name: "lab-1", tls: "1", fp: FINGERPRINT };
  assert.equal(decodeTrackerTxt(undefined), undefined);
  assert.equal(decodeTrackerTxt({}), undefined);
  assert.equal(decodeTrackerTxt({ ...good, v: "two" }), undefined);
  assert.equal(decodeTrackerTxt({ ...good, name: "" }), undefined);
  assert.equal(decodeTrackerTxt({ ...good, tls: "yes" }), undefined);
  assert.equal(decodeTrackerTxt({ ...good, fp: undefined }), undefined, "TLS without fingerprint");
  assert.equal(decodeTrackerTxt({ ...good, fp: "SHA256:AB" }), undefined, "a short fingerprint");
});

Deno.test("discovery TXT - an entry over 255 bytes is refused when encoding", () => {
  assert.throws(
    () => encodeTrackerTxt({ name: "x".repeat(260), version: 2, tls: false }),
    /the TXT entry "name" is over 255 bytes/,
  );
});

Deno.test("discovery TXT - a host that is not an address or a host name drops the record", () => {
  const txt = { v: "2", name: "lab-1", tls: "0" };
  assert.equal(decodeTrackerTxt({ ...txt, host: "10.0.0.5" })?.host, "10.0.0.5");
  assert.equal(decodeTrackerTxt({ ...txt, host: "fe80::1" })?.host, "fe80::1");
  assert.equal(decodeTrackerTxt({ ...txt, host: "a b" }), undefined);
  assert.equal(decodeTrackerTxt({ ...txt, host: "x\u001b[2J" }), undefined);
});
