/**
 * Text from the network reaches a terminal escaped: control and escape
 * sequences cannot drive it, invisible and bidi characters cannot disguise
 * a name, and what is ordinary text (accents, emoji) is left alone.
 */
import assert from "node:assert/strict";
import { escapeForTerminal, printJson, renderTable } from "../../lib/cli/output.ts";
import { reportError } from "../../lib/cli/errors.ts";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { summaryLine } from "../../lib/cli/fetch_command.ts";
import type { DownloadSummary } from "../../lib/peer/downloader.ts";
import { HIDDEN_CHARACTER } from "../../lib/protocol/validate.ts";

Deno.test("escapeForTerminal - controls, ESC, DEL and C1 become \\u{..} escapes", () => {
  const cases: [string, string][] = [
    ["\x1b[2J\x1b]0;owned\x07", "\\u{1b}[2J\\u{1b}]0;owned\\u{7}"],
    ["line\nbreak\r", "line\\u{a}break\\u{d}"],
    ["tab\there", "tab\\u{9}here"],
    ["nul\x00del\x7f", "nul\\u{0}del\\u{7f}"],
    ["csi\x9b31m", "csi\\u{9b}31m"],
  ];
  for (const [raw, shown] of cases) assert.equal(escapeForTerminal(raw), shown);
});

Deno.test("escapeForTerminal - invisible and text-direction characters are shown, not obeyed", () => {
  const cases: [string, string][] = [
    ["report\u200b.pdf", "report\\u{200b}.pdf"],
    ["invoice\u202efdp.exe", "invoice\\u{202e}fdp.exe"],
    ["arabic\u061cmark", "arabic\\u{61c}mark"],
    ["\u2066isolate\u2069", "\\u{2066}isolate\\u{2069}"],
    ["bom\ufeff", "bom\\u{feff}"],
    ["tag\u{e0041}", "tag\\u{e0041}"],
    ["lone\ud800", "lone\\u{d800}"],
    ["para\u2029", "para\\u{2029}"],
  ];
  for (const [raw, shown] of cases) assert.equal(escapeForTerminal(raw), shown);
});

Deno.test("escapeForTerminal - ordinary text, accents and emoji pass unchanged", () => {
  for (const text of ["notes.pdf", "été 🐟.mp3", "日本語", "a \\u{1b} b", "100% done"]) {
    assert.equal(escapeForTerminal(text), text);
  }
});

Deno.test("reportError - an error message is escaped with the same helper", () => {
  const printed: string[] = [];
  const error = console.error;
  console.error = (line: string) => printed.push(line);
  try {
    reportError(new ShoalError("IO", "disk \x1b[31mfull\u202e"));
  } finally {
    console.error = error;
  }
  assert.equal(printed[0], "error: disk \\u{1b}[31mfull\\u{202e}");
});

Deno.test("reportError - a hint quoting a listed name is escaped like the message", () => {
  const lines: string[] = [];
  const write = console.error;
  console.error = (line: string) => lines.push(line);
  try {
    const hint =
      'fetch another owner\'s copy: `peer.ts fetch "x\x1b]0;owned\x07" --from <username>`';
    reportError(new ShoalError("INTEGRITY", 'refusing "x\x1b[2J"', { hint }));
  } finally {
    console.error = write;
  }
  assert.equal(lines.length, 2);
  // deno-lint-ignore no-control-regex -- the raw controls that must not reach a terminal
  assert.ok(lines.every((line) => !/[\x00-\x1f\x7f]/.test(line)), JSON.stringify(lines));
  assert.match(lines[1], /^hint: .*x\\u\{1b\}\]0;owned\\u\{7\}/);
});

Deno.test("renderTable - names and owners from the network are escaped in their cells", () => {
  const table = renderTable(["name", "owner"], [["report\u200b.pdf", "eve\x1b[8m"]]);
  assert.match(table, /report\\u\{200b\}\.pdf/);
  assert.match(table, /eve\\u\{1b\}\[8m/);
  assert.doesNotMatch(table.replaceAll("\n", " "), HIDDEN_CHARACTER);
});

Deno.test("printJson - hidden characters are \\u escapes that parse back to the same text", () => {
  const value = { name: "invoice\u202efdp.exe", reason: "\x1b[2J\x9b", emoji: "🐟\u{e0041}" };
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    printJson(value);
  } finally {
    console.log = log;
  }
  assert.doesNotMatch(printed[0].replaceAll("\n", " "), HIDDEN_CHARACTER);
  assert.deepEqual(JSON.parse(printed[0]), value);
});

Deno.test("summaryLine - a hostile source's error text in 'dropped' is escaped", () => {
  const summary: DownloadSummary = {
    path: "plan.pdf",
    contentId: "a".repeat(64),
    manifest: { version: 1, size: 10, pieceSize: 262144, pieces: ["b".repeat(64)] },
    size: 10,
    seconds: 1,
    transferred: 10,
    resumed: 0,
    sources: [{
      owner: "alice",
      address: "127.0.0.1:1",
      partial: false,
      pieces: 1,
      bytes: 10,
      queued: null,
    }],
    dropped: [{
      owner: "mallory",
      address: "127.0.0.1:2",
      reason: "\x1b]0;owned\x07\x1b[2Jdisk \u202efull",
    }],
  };
  const line = summaryLine(summary, "plan");
  assert.match(
    line,
    /; dropped mallory \(\\u\{1b\}\]0;owned\\u\{7\}\\u\{1b\}\[2Jdisk \\u\{202e\}full\)$/,
  );
  assert.doesNotMatch(line, HIDDEN_CHARACTER);
});
