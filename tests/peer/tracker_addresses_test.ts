import assert from "node:assert/strict";
import {
  connectOrder,
  formatTrackerAddresses,
  MAX_TRACKER_ADDRESSES,
  parseTrackerAddresses,
} from "../../lib/peer/tracker_addresses.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";

const a = { host: "a", port: 5050 };
const b = { host: "b", port: 5050 };
const c = { host: "c", port: 6000 };

Deno.test("tracker addresses - one address is a list of one; a bare host takes the default port", () => {
  assert.deepEqual(parseTrackerAddresses("10.0.0.1:5050"), [{ host: "10.0.0.1", port: 5050 }]);
  assert.deepEqual(parseTrackerAddresses("lab-1", 5050), [{ host: "lab-1", port: 5050 }]);
});

Deno.test("tracker addresses - several, comma-separated, spaces around entries allowed, IPv6 bracketed", () => {
  assert.deepEqual(parseTrackerAddresses("a:5050, b ,c:6000", 5050), [a, b, c]);
  assert.deepEqual(parseTrackerAddresses("[::1]:5050,[::1]:5051"), [
    { host: "::1", port: 5050 },
    { host: "::1", port: 5051 },
  ]);
  assert.equal(formatTrackerAddresses([a, { host: "::1", port: 1 }]), "a:5050,[::1]:1");
});

function refused(text: string, pattern: RegExp) {
  assert.throws(() => parseTrackerAddresses(text, 5050), (error: unknown) => {
    assert.ok(error instanceof ShoalError);
    assert.equal(error.code, "INVALID_INPUT");
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

Deno.test("tracker addresses - a bad entry is named, with its place in the list", () => {
  refused("", /no tracker address given/);
  refused("a:5050,", /empty tracker address \(address 2 of 2 in "a:5050,"\)/);
  refused("a:5050,,b:5050", /empty tracker address \(address 2 of 3/);
  refused("a:5050,b:99999", /"b:99999" \(address 2 of 2 in "a:5050,b:99999"\) is not a HOST:PORT/);
  refused("a:x", /^"a:x" is not a HOST:PORT address$/);
  // A newcomer's usual mistakes say what to write instead.
  refused(
    "https://127.0.0.1:5050/",
    /^"https:\/\/127\.0\.0\.1:5050\/" is not a HOST:PORT address; write it without "https:\/\/": 127\.0\.0\.1:5050$/,
  );
  refused(
    "127.0.0.1:99999",
    /^"127\.0\.0\.1:99999" is not a HOST:PORT address; a port is at most 65535$/,
  );
  refused("a:5050 b:5050", /not a HOST:PORT address; separate several with commas/);
  refused("a:5050,A:5050", /"A:5050" is listed twice \(addresses 1 and 2/);
  refused("a,a:5050", /listed twice/);
  const many = Array.from({ length: MAX_TRACKER_ADDRESSES + 1 }, (_, i) => `h${i}:1`).join(",");
  refused(many, new RegExp(`at most ${MAX_TRACKER_ADDRESSES}`));
});

Deno.test("tracker addresses - the one that answered last goes first; a lost one goes last", () => {
  assert.deepEqual(connectOrder([a, b, c]), [a, b, c]);
  assert.deepEqual(connectOrder([a, b, c], b), [b, a, c]);
  assert.deepEqual(connectOrder([a, b, c], { host: "elsewhere", port: 1 }), [a, b, c]);
  assert.deepEqual(connectOrder([a, b, c], b, b), [a, c, b]);
  assert.deepEqual(connectOrder([a, b, c], null, a), [b, c, a]);
});
