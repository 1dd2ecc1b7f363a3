/** The folder manifest format: canonical text, content ids, and what a received one must pass. */
import assert from "node:assert/strict";
import {
  encodeFolderManifest,
  fileContentId,
  folderContentId,
  type FolderManifest,
  parseFolderManifest,
} from "../../lib/peer/folder_manifest.ts";
import { globMatcher } from "../../lib/peer/folder_fetch.ts";

const HELLO_PIECE = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const encoder = new TextEncoder();

const SAMPLE: FolderManifest = {
  version: 1,
  // Out of order on purpose: the canonical text sorts them.
  files: [
    { path: "e", size: 0, pieces: [] },
    { path: "a/b.txt", size: 6, pieces: [HELLO_PIECE] },
  ],
  folders: ["x", "a"],
};

Deno.test("folder manifest - the canonical text sorts entries by path, keys in a fixed order", () => {
  assert.equal(
    encodeFolderManifest(SAMPLE),
    `{"version":1,"files":[{"path":"a/b.txt","size":6,"pieces":["${HELLO_PIECE}"]},` +
      `{"path":"e","size":0,"pieces":[]}],"folders":["a","x"]}`,
  );
});

Deno.test("folder manifest - entries already in order give the same text, and no input is reordered", () => {
  const files = [...SAMPLE.files].reverse();
  const folders = [...SAMPLE.folders].reverse();
  assert.equal(
    encodeFolderManifest({ version: 1, files, folders }),
    encodeFolderManifest(SAMPLE),
  );
  assert.deepEqual(SAMPLE.files.map((file) => file.path), ["e", "a/b.txt"]);
  assert.deepEqual(SAMPLE.folders, ["x", "a"]);
});

Deno.test("folder manifest - its content id is pinned (printf %s '<text>' | sha256sum)", () => {
  assert.equal(
    folderContentId(encodeFolderManifest(SAMPLE)),
    "9f294eaacbb175a369e4b0526c856d009fc3a8d202b300f2b851219797e5989c",
  );
});

Deno.test("folder manifest - a file in a folder keeps the content id it has when shared alone", () => {
  // The ids of `hello\n` and of an empty file, as tests/protocol/wire_fixtures_test.ts pins them.
  assert.equal(
    fileContentId({ size: 6, pieces: [HELLO_PIECE] }),
    "00f11592d95e2c895df020637632084f84c47c4a504c02145cca15e758a58ddb",
  );
  assert.equal(
    fileContentId({ size: 0, pieces: [] }),
    "bd6f079b737ddf4fed9c89763ae76e2344db9c1553226c7074f137ac7a1f6ef8",
  );
});

Deno.test("folder manifest - a received manifest parses only if it matches its content id", () => {
  const text = encoder.encode(encodeFolderManifest(SAMPLE));
  const id = folderContentId(text);
  const parsed = parseFolderManifest(text, id, "alice");
  assert.deepEqual(parsed.files.map((f) => f.path), ["a/b.txt", "e"]);
  assert.throws(
    () => parseFolderManifest(text, "0".repeat(64), "alice"),
    /refused the folder manifest from alice: it does not match the content id/,
  );
});

/** A manifest text with these files, and the id that matches it. */
function signed(files: unknown[], folders: unknown[] = []): [Uint8Array, string] {
  const text = encoder.encode(JSON.stringify({ version: 1, files, folders }));
  return [text, folderContentId(text)];
}

Deno.test("folder manifest - malformed entries are refused even when the id matches", () => {
  const cases: [string, unknown[]][] = [
    ["a piece count that does not cover the size", [{ path: "a", size: 6, pieces: [] }]],
    ["a negative size", [{ path: "a", size: -1, pieces: [] }]],
    ["a piece that is not a digest", [{ path: "a", size: 6, pieces: ["nope"] }]],
    ["a path that is not a string", [{ path: 7, size: 0, pieces: [] }]],
  ];
  for (const [what, files] of cases) {
    const [text, id] = signed(files);
    assert.throws(() => parseFolderManifest(text, id, "mallory"), /mallory/, what);
  }
});

Deno.test("folder manifest - hostile paths are refused, naming the source", () => {
  const hostile = [
    "/etc/passwd",
    "../escape",
    "a/../../escape",
    "a//b",
    "nul\u0000byte",
    "bell\u0007",
    "A.txt\u0000",
    "./a",
  ];
  for (const path of hostile) {
    const [text, id] = signed([{ path, size: 0, pieces: [] }]);
    assert.throws(() => parseFolderManifest(text, id, "mallory"), /mallory/, JSON.stringify(path));
  }
  const [twice, twiceId] = signed([
    { path: "Readme", size: 0, pieces: [] },
    { path: "README", size: 0, pieces: [] },
  ]);
  assert.throws(() => parseFolderManifest(twice, twiceId, "mallory"), /mallory/);
  const [nfd, nfdId] = signed([
    { path: "caf\u00e9", size: 0, pieces: [] },
    { path: "cafe\u0301", size: 0, pieces: [] },
  ]);
  assert.throws(() => parseFolderManifest(nfd, nfdId, "mallory"), /mallory/);
});

Deno.test("--only globs: * within a name, ** across folders, a folder takes what it holds", () => {
  const match = globMatcher(["slides/**", "*.md", "data"]);
  assert.ok(match("slides/week 1/intro.pdf"));
  assert.ok(match("readme.md"));
  assert.ok(!match("notes/readme.md"));
  assert.ok(match("data/x/y.csv"));
  assert.ok(!match("database.csv"));
  assert.ok(globMatcher([])("anything"));
});

Deno.test("--only globs: a glob typed in NFC takes a name stored in NFD, and the other way", () => {
  assert.ok(globMatcher(["caf\u00e9/*.txt"])("cafe\u0301/menu.txt"));
  assert.ok(globMatcher(["cafe\u0301*"])("caf\u00e9.txt"));
  assert.ok(!globMatcher(["cafe*"])("caf\u00e9.txt"));
});

Deno.test("fetchFolderManifest with no source to ask: its hint names the search to run, with the folder's name", async () => {
  const { fetchFolderManifest } = await import("../../lib/peer/folder_fetch.ts");
  await assert.rejects(
    fetchFolderManifest("c".repeat(64), { sources: [], ticket: "" }, true, "week 2"),
    (error: Error & { hint?: string }) => {
      assert.match(error.message, /^no source is online$/);
      assert.equal(
        error.hint,
        "run it again once one of its owners serves it (`peer.ts search 'week 2'` shows who is online)",
      );
      return true;
    },
  );
});
