/**
 * What a peer makes of DNS-SD answers, and which tracker it picks among
 * those found. Pure functions: nothing here opens a socket (the browse
 * itself is tested in network namespaces, tests/e2e/discovery_netns_test.ts).
 */
import assert from "node:assert/strict";
import { type FoundTracker, trackerFromService } from "../../lib/peer/discover.ts";
import { checkMode, chooseFound, describeFound } from "../../lib/cli/tracker_discovery.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";

const FINGERPRINT = `SHA256:${Array(32).fill("0A").join(":")}`;
const TXT = { v: "2", name: "lab-1", tls: "1", fp: FINGERPRINT };

Deno.test("discover - an answer becomes a tracker at the address that reached us", () => {
  const tracker = trackerFromService({
    port: 5050,
    txt: TXT,
    addresses: ["192.168.1.10", "10.0.0.3"],
    referer: { address: "10.0.0.3" },
  });
  assert.deepEqual(tracker, {
    name: "lab-1",
    address: "10.0.0.3:5050",
    host: "10.0.0.3",
    port: 5050,
    tls: true,
    fingerprint: FINGERPRINT,
    version: 2,
  });
});

Deno.test("discover - the host a tracker listens on wins; else its first IPv4 address", () => {
  const bound = trackerFromService({
    port: 5050,
    txt: { ...TXT, host: "192.168.1.10" },
    addresses: ["10.0.0.3"],
    referer: { address: "10.0.0.3" },
  });
  assert.equal(bound?.address, "192.168.1.10:5050");
  const listed = trackerFromService({
    port: 6000,
    txt: TXT,
    addresses: ["fe80::1", "192.168.1.10"],
    referer: { address: "172.16.0.9" },
  });
  assert.equal(listed?.address, "192.168.1.10:6000");
});

Deno.test("discover - answers that are not a Shoal tracker's are dropped", () => {
  assert.equal(trackerFromService({ port: 5050, txt: {}, addresses: ["10.0.0.3"] }), undefined);
  assert.equal(trackerFromService({ port: 0, txt: TXT, addresses: ["10.0.0.3"] }), undefined);
  assert.equal(trackerFromService({ port: 5050, txt: TXT, addresses: [] }), undefined);
});

const found = (name: string, address: string, tls = true): FoundTracker => ({
  name,
  address,
  host: address.split(":")[0],
  port: Number(address.split(":")[1]),
  tls,
  ...(tls ? { fingerprint: FINGERPRINT } : {}),
  version: 2,
});

Deno.test("discover - one tracker found is used; none is undefined", async () => {
  const one = found("lab-1", "10.0.0.3:5050");
  assert.equal(await chooseFound([one], { pinned: () => false }), one);
  assert.equal(await chooseFound([], { pinned: () => false }), undefined);
  assert.equal(
    describeFound(one),
    `lab-1 at 10.0.0.3:5050, fingerprint ${FINGERPRINT}`,
  );
});

Deno.test("discover - of several, the one this home used is taken without asking", async () => {
  const a = found("lab-1", "10.0.0.3:5050");
  const b = found("lab-2", "10.0.0.4:5050");
  const chosen = await chooseFound([a, b], {
    pinned: (address) => address === b.address,
    ask: () => Promise.reject(new Error("must not ask")),
  });
  assert.equal(chosen, b);
});

Deno.test("discover - of several, a terminal is asked; without one, the error lists them", async () => {
  const a = found("lab-1", "10.0.0.3:5050");
  const b = found("lab-2", "10.0.0.4:5050");
  const asked: FoundTracker[][] = [];
  const chosen = await chooseFound([a, b], {
    pinned: () => false,
    ask: (list) => {
      asked.push(list);
      return Promise.resolve(2);
    },
  });
  assert.equal(chosen, b);
  assert.deepEqual(asked, [[a, b]]);

  await assert.rejects(chooseFound([a, b], { pinned: () => false }), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "AMBIGUOUS");
    assert.match(
      error.message,
      /^2 trackers found on the local network: lab-1 at 10\.0\.0\.3:5050/,
    );
    assert.match(error.message, /lab-2 at 10\.0\.0\.4:5050/);
    assert.match(error.hint ?? "", /--tracker 10\.0\.0\.3:5050/);
    return true;
  });
});

Deno.test("discover - a tracker found that speaks otherwise (TLS or not) is refused with the flag to change", () => {
  assert.doesNotThrow(() => checkMode(found("lab-1", "10.0.0.3:5050"), false));
  assert.throws(() => checkMode(found("lab-1", "10.0.0.3:5050", false), false), (error) => {
    assert.ok(error instanceof ShoalError);
    assert.match(error.message, /runs without TLS/);
    assert.match(error.hint ?? "", /--insecure-plaintext/);
    return true;
  });
  assert.throws(() => checkMode(found("lab-1", "10.0.0.3:5050"), true), /uses TLS/);
});

Deno.test("discover - a name announced with escape sequences is shown escaped", () => {
  const tracker = { ...found("lab-1", "10.0.0.3:5050"), name: "lab\u001b[2J-1" };
  assert.equal(
    describeFound(tracker),
    `lab\\u{1b}[2J-1 at 10.0.0.3:5050, fingerprint ${FINGERPRINT}`,
  );
});
