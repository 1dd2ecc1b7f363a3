import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import {
  FileName,
  Manifest,
  parseRequest,
  parseResult,
  Password,
  PEER_METHODS,
  RequestError,
  TRACKER_METHODS,
  Username,
} from "../../lib/protocol/messages.ts";
import { checkName } from "../../lib/peer/shares.ts";
import { shoalError } from "../helpers/errors.ts";

const HASH = "a".repeat(64);
const OTHER_HASH = "0123456789abcdef".repeat(4);

/**
 * A validator for `assert.throws`: a RequestError answering request `id`
 * with BAD_MESSAGE, whose message matches every pattern in `mentions`.
 */
function requestError(id: number, ...mentions: RegExp[]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RequestError, `expected a RequestError, got ${error}`);
    assert.equal(error.id, id);
    assert.ok(error.error instanceof ShoalError);
    assert.equal(error.error.code, "BAD_MESSAGE");
    assert.equal(error.message, error.error.message);
    for (const mention of mentions) assert.match(error.error.message, mention);
    return true;
  };
}

/** Like {@link requestError}, for a rule about what a person typed: INVALID_INPUT. */
function inputError(id: number, ...mentions: RegExp[]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof RequestError, `expected a RequestError, got ${error}`);
    assert.equal(error.id, id);
    assert.equal(error.error.code, "INVALID_INPUT", error.message);
    for (const mention of mentions) assert.match(error.error.message, mention);
    return true;
  };
}

function trackerRequest(type: string, params: unknown, id = 9) {
  return parseRequest(TRACKER_METHODS, { id, type, params });
}

Deno.test("parseRequest - a valid register request parses to its typed params", () => {
  const request = trackerRequest("register", { username: "alice", password: "correct horse" }, 1);
  assert.deepEqual(request, {
    id: 1,
    type: "register",
    params: { username: "alice", password: "correct horse" },
  });
});

Deno.test("parseRequest - a valid publish request parses to its typed params", () => {
  const params = { name: "Holiday photos (2024).tar.gz", type: "gz", size: 1234, contentId: HASH };
  assert.deepEqual(trackerRequest("publish", params, 0), { id: 0, type: "publish", params });
});

Deno.test("parseRequest - a valid peer piece request parses against the peer table", () => {
  const frame = { id: 4, type: "piece", params: { contentId: OTHER_HASH, index: 3 } };
  assert.deepEqual(parseRequest(PEER_METHODS, frame), frame);
});

Deno.test("parseRequest - omitted params count as empty for methods without params", () => {
  assert.deepEqual(parseRequest(TRACKER_METHODS, { id: 2, type: "logout" }), {
    id: 2,
    type: "logout",
    params: {},
  });
  assert.deepEqual(parseRequest(PEER_METHODS, { id: 3, type: "ping" }), {
    id: 3,
    type: "ping",
    params: {},
  });
});

Deno.test("parseRequest - omitted params fail for a method that needs them", () => {
  assert.throws(
    () => parseRequest(TRACKER_METHODS, { id: 5, type: "login" }),
    requestError(5, /invalid login/, /username/),
  );
});

Deno.test("parseRequest - unknown params fields are dropped", () => {
  const request = trackerRequest("unpublish", { name: "a.txt", owner: "mallory" });
  assert.deepEqual(request.params, { name: "a.txt" });
});

Deno.test("parseRequest - a request without a usable id throws a plain BAD_MESSAGE", () => {
  const frames: unknown[] = [
    { type: "hello", params: { protocol: 1, agent: "x" } },
    { id: "1", type: "hello" },
    { id: -1, type: "hello" },
    { id: 1.5, type: "hello" },
    { id: 1 },
    { id: 1, type: 7 },
    null,
    [],
    "hello",
    42,
  ];
  for (const frame of frames) {
    assert.throws(() => parseRequest(TRACKER_METHODS, frame), shoalError("BAD_MESSAGE"));
  }
});

Deno.test("parseRequest - an unknown type throws a RequestError carrying the id", () => {
  assert.throws(() => trackerRequest("launch", {}, 17), requestError(17, /unknown/, /"launch"/));
});

Deno.test("parseRequest - inherited object keys are not request types", () => {
  for (const type of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    assert.throws(() => trackerRequest(type, {}, 3), requestError(3, /unknown request type/));
  }
});

Deno.test("parseRequest - each table knows only its own server's types", () => {
  assert.throws(
    () => parseRequest(PEER_METHODS, { id: 8, type: "register", params: {} }),
    requestError(8, /unknown request type "register"/),
  );
  assert.throws(
    () => parseRequest(TRACKER_METHODS, { id: 8, type: "piece", params: {} }),
    requestError(8, /unknown request type "piece"/),
  );
});

Deno.test("parseRequest - a short password on register names the password rule", () => {
  assert.throws(
    () => trackerRequest("register", { username: "alice", password: "1234567" }, 11),
    requestError(11, /invalid register/, /password/, /at least 8 characters/),
  );
});

Deno.test("parseRequest - a username with spaces names the username rule", () => {
  assert.throws(
    () => trackerRequest("register", { username: "alice smith", password: "long enough" }, 12),
    requestError(12, /\(username\)/, /a username is 2-32 letters/),
  );
});

Deno.test("parseRequest - a file name containing '/' or '\\' answers INVALID_INPUT naming the character", () => {
  for (
    const [name, char] of [["dir/file.txt", "/"], ["/etc/passwd", "/"], ["..\\boot.ini", "\\"]]
  ) {
    assert.throws(
      () => trackerRequest("lookup", { name }, 13),
      inputError(13, /invalid lookup/, /\(name\)/, new RegExp(`cannot contain '\\${char}'`)),
      name,
    );
  }
});

Deno.test("parseRequest - a file name of '.' or '..' is rejected", () => {
  for (const name of [".", ".."]) {
    assert.throws(
      () => trackerRequest("unpublish", { name }, 14),
      inputError(14, /\(name\)/, /cannot be '\.' or '\.\.'/),
      name,
    );
  }
});

Deno.test("parseRequest - a file name with control or text-direction characters names the code point", () => {
  const names: [string, string][] = [
    ["bell\u0007.txt", "U\\+0007"],
    ["line\nbreak", "U\\+000A"],
    ["nul\u0000", "U\\+0000"],
    ["del\u007f", "U\\+007F"],
    ["tab\t", "U\\+0009"],
    ["csi\u009b", "U\\+009B"],
    ["rtl\u202e.txt", "U\\+202E"],
  ];
  for (const [name, codePoint] of names) {
    assert.throws(
      () => trackerRequest("lookup", { name }, 15),
      inputError(15, /\(name\)/, new RegExp(`cannot contain ${codePoint}`)),
      JSON.stringify(name),
    );
  }
});

/**
 * Names that look like another name, hide their end, or cannot be a file
 * on Windows, with the part of the rule each one breaks.
 */
const HOSTILE_NAMES: [string, RegExp][] = [
  ["report\u200b.pdf", /U\+200B/],
  ["report\u061c.pdf", /U\+061C/],
  ["invoice\u202efdp.exe", /U\+202E/],
  ["zero\u200dwidth", /U\+200D/],
  ["bom\ufeff", /U\+FEFF/],
  ["soft\u00adhyphen", /U\+00AD/],
  ["isolate\u2066x", /U\+2066/],
  ["line\u2028sep", /U\+2028/],
  ["filler\u3164", /U\+3164/],
  ["esc\u001b[31m", /U\+001B/],
  ["CON", /cannot be CON/],
  ["con.txt", /cannot be CON/],
  ["Aux.tar.gz", /cannot be AUX/],
  ["nul", /cannot be NUL/],
  ["PRN.", /end with '\.'/],
  ["COM1", /cannot be COM1/],
  ["lpt9.log", /cannot be LPT9/],
  ["a:b", /cannot contain ':'/],
  ["what?", /cannot contain '\?'/],
  ["x<y>", /cannot contain '<'/],
  ['say "hi"', /cannot contain '"'/],
  ["a|b", /cannot contain '\|'/],
  ["star*", /cannot contain '\*'/],
  ["x.", /end with '\.'/],
  ["x ", /end with '\.' or a space/],
  ["report\u034f.pdf", /U\+034F/],
  ["report\ufe0f.pdf", /U\+FE0F/],
  ["khmer\u17b4.pdf", /U\+17B4/],
  ["mongolian\u180b.pdf", /U\+180B/],
  ["report.pdf\u00a0", /end with '\.' or a space/],
  ["report.pdf\u3000", /end with '\.' or a space/],
  ["report.pdf\u2003", /end with '\.' or a space/],
  ["\u00e9".repeat(123), /at most 244 bytes of UTF-8/],
  ["x".repeat(245), /at most 244 bytes of UTF-8/],
];

Deno.test("FileName - hostile names are refused by the tracker's and the peer's validation alike", () => {
  for (const [name, rule] of HOSTILE_NAMES) {
    assert.throws(
      () => trackerRequest("publish", { name, type: "", size: 1, contentId: HASH }, 19),
      inputError(19, /\(name\)/, rule),
      JSON.stringify(name),
    );
    assert.throws(
      () => checkName(name),
      (error: unknown) => {
        assert.ok(error instanceof ShoalError, `expected a ShoalError, got ${error}`);
        assert.equal(error.code, "INVALID_INPUT");
        assert.match(error.message, rule);
        return true;
      },
      JSON.stringify(name),
    );
  }
});

Deno.test("FileName - names that only look like reserved ones are accepted", () => {
  for (
    const name of [
      "CONSOLE",
      "icon.png",
      "COM10",
      "LPT",
      "nul-result.txt",
      "a.b.c",
      " lead",
      "x".repeat(244),
      "\u00e9".repeat(122),
      "r\u00e9sum\u00e9 \u65e5\u672c.pdf",
    ]
  ) {
    assert.equal(checkName(name), name);
  }
});

Deno.test("parseRequest - a non-hex content id names the digest rule", () => {
  for (const contentId of ["z".repeat(64), "A".repeat(64), "a".repeat(63), "a".repeat(65), ""]) {
    assert.throws(
      () => parseRequest(PEER_METHODS, { id: 16, type: "manifest", params: { contentId } }),
      requestError(16, /invalid manifest/, /\(contentId\)/, /SHA-256/),
      contentId,
    );
  }
});

Deno.test("parseRequest - publish rejects a negative or fractional size", () => {
  for (const size of [-1, 1.5, "10"]) {
    assert.throws(
      () => trackerRequest("publish", { name: "f", type: "", size, contentId: HASH }, 18),
      requestError(18, /\(size\)/),
      String(size),
    );
  }
});

Deno.test("Username - accepts 2 to 32 letters, digits, '_', '.', '-' starting alphanumeric", () => {
  for (const name of ["al", "Alice", "a".repeat(32), "bob_the-builder.2", "9lives"]) {
    assert.ok(Username.safeParse(name).success, name);
  }
  for (const name of ["a", "a".repeat(33), "-alice", "_alice", ".alice", "al ice", "élodie", ""]) {
    assert.ok(!Username.safeParse(name).success, name);
  }
});

Deno.test("Password - accepts 8 to 1024 characters", () => {
  assert.ok(Password.safeParse("12345678").success);
  assert.ok(Password.safeParse("x".repeat(1024)).success);
  assert.ok(!Password.safeParse("1234567").success);
  assert.ok(!Password.safeParse("x".repeat(1025)).success);
});

Deno.test("FileName - accepts ordinary names, including dots inside and non-ASCII", () => {
  for (const name of ["notes..txt", ".hidden", "a b c.pdf", "été 🐟.mp3", "x".repeat(244)]) {
    assert.ok(FileName.safeParse(name).success, name);
  }
});

Deno.test("FileName - rejects empty, over-long, separators, control characters, '.' and '..'", () => {
  for (const name of ["", "x".repeat(256), "a/b", "a\\b", "a\u001fb", ".", "..", "..."]) {
    assert.ok(!FileName.safeParse(name).success, JSON.stringify(name));
  }
});

Deno.test("Manifest - a piece count matching the size is accepted", () => {
  const cases = [
    { version: 1, size: 0, pieceSize: 1024, pieces: [] },
    { version: 1, size: 1, pieceSize: 1024, pieces: [HASH] },
    { version: 1, size: 1024, pieceSize: 1024, pieces: [HASH] },
    { version: 1, size: 1025, pieceSize: 1024, pieces: [HASH, OTHER_HASH] },
  ];
  for (const manifest of cases) {
    assert.deepEqual(Manifest.parse(manifest), manifest);
  }
});

Deno.test("Manifest - a piece count that does not match the size is rejected", () => {
  const cases = [
    { version: 1, size: 0, pieceSize: 1024, pieces: [HASH] },
    { version: 1, size: 1025, pieceSize: 1024, pieces: [HASH] },
    { version: 1, size: 1024, pieceSize: 1024, pieces: [HASH, OTHER_HASH] },
  ];
  for (const manifest of cases) {
    const parsed = Manifest.safeParse(manifest);
    assert.ok(!parsed.success, JSON.stringify(manifest));
    assert.match(parsed.error.issues[0].message, /piece count does not match the size/);
  }
});

Deno.test("Manifest - a bad version, piece size or piece hash is rejected", () => {
  const good = { version: 1, size: 10, pieceSize: 10, pieces: [HASH] };
  const cases = [
    { ...good, version: 2 },
    { ...good, pieceSize: 0 },
    { ...good, pieceSize: 64 * 1024 * 1024 + 1 },
    { ...good, pieces: ["not a hash"] },
    { ...good, size: -10 },
  ];
  for (const manifest of cases) {
    assert.ok(!Manifest.safeParse(manifest).success, JSON.stringify(manifest));
  }
});

Deno.test("parseResult - a peer manifest reply with a mismatched piece count is rejected", () => {
  assert.throws(
    () =>
      parseResult(PEER_METHODS, "manifest", {
        manifest: { version: 1, size: 5000, pieceSize: 1024, pieces: [HASH] },
      }),
    (error: unknown) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, "BAD_MESSAGE");
      assert.match(error.message, /invalid manifest reply/);
      assert.match(error.message, /piece count does not match the size/);
      return true;
    },
  );
});

Deno.test("parseResult - a well-formed result is returned typed", () => {
  const token = "t".repeat(43);
  assert.deepEqual(parseResult(TRACKER_METHODS, "login", { token, username: "alice" }), {
    token,
    username: "alice",
  });
  assert.deepEqual(parseResult(TRACKER_METHODS, "publish", { replaced: true }), { replaced: true });
  assert.deepEqual(parseResult(PEER_METHODS, "piece", { index: 2, length: 4096 }), {
    index: 2,
    length: 4096,
  });
  assert.deepEqual(
    parseResult(PEER_METHODS, "hello", { protocol: 1, server: "peer" }),
    { protocol: 1, server: "peer" },
  );
});

Deno.test("parseResult - a malformed result throws BAD_MESSAGE naming the reply", () => {
  const cases: [string, () => unknown][] = [
    ["login", () => parseResult(TRACKER_METHODS, "login", { token: "short" })],
    ["login", () => parseResult(TRACKER_METHODS, "login", null)],
    ["publish", () => parseResult(TRACKER_METHODS, "publish", { replaced: "yes" })],
    ["hello", () => parseResult(TRACKER_METHODS, "hello", { protocol: 1, server: "client" })],
    ["piece", () => parseResult(PEER_METHODS, "piece", { index: 0, length: -1 })],
    ["lookup", () => parseResult(TRACKER_METHODS, "lookup", { files: [{ owner: "bob" }] })],
  ];
  for (const [type, parse] of cases) {
    assert.throws(parse, (error: unknown) => {
      assert.ok(error instanceof ShoalError, `expected a ShoalError, got ${error}`);
      assert.equal(error.code, "BAD_MESSAGE");
      assert.match(error.message, new RegExp(`^invalid ${type} reply`));
      return true;
    });
  }
});

Deno.test("RequestError - is an Error that keeps the id and the ShoalError it wraps", () => {
  const inner = new ShoalError("BAD_MESSAGE", "nope");
  const error = new RequestError(42, inner);
  assert.ok(error instanceof Error);
  assert.equal(error.id, 42);
  assert.equal(error.error, inner);
  assert.equal(error.message, "nope");
});
