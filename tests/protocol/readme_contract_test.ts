/**
 * lib/protocol/README.md is the protocol as a document: its tables must list
 * every method, every param and result field, and every error code the code
 * beside it has. These tests read the zod schemas and the code list and
 * parse the README's tables, and fail naming what the README lacks.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { ERROR_CODES } from "../../lib/protocol/errors.ts";
import {
  Listing,
  Manifest,
  type MethodTable,
  PEER_METHODS,
  Source,
  TRACKER_METHODS,
} from "../../lib/protocol/messages.ts";

const README = await Deno.readTextFile(
  new URL("../../lib/protocol/README.md", import.meta.url),
);

/** The text of the README section under `## heading`, up to the next `## `. */
function section(heading: string): string {
  const start = README.indexOf(`\n## ${heading}\n`);
  assert.notEqual(start, -1, `lib/protocol/README.md has no "## ${heading}" section`);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end === -1 ? undefined : end);
}

/** The rows of the first table in `text`, each as its cells, header and rule left out. */
function tableRows(text: string): string[][] {
  const lines = text.split("\n").filter((line) => line.startsWith("|"));
  return lines.slice(2).map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
}

/** The names a cell puts in backticks, e.g. `files: Listing[]` gives "files"; `{}` gives none. */
function namesIn(cell: string): string[] {
  return [...cell.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1]);
}

/** The top-level field names of an object schema. */
function fieldsOf(schema: z.ZodType, what: string): string[] {
  assert.ok(schema instanceof z.ZodObject, `${what} is not an object schema`);
  return Object.keys(schema.shape);
}

interface DocumentedMethod {
  params: string[];
  result: string[];
}

/** The methods a README table documents, by name, with the fields its params and result name. */
function documentedMethods(heading: string): Map<string, DocumentedMethod> {
  const methods = new Map<string, DocumentedMethod>();
  for (const [type, params, result] of tableRows(section(heading))) {
    const [name] = namesIn(type);
    assert.ok(name, `a row of "${heading}" names no method: ${type}`);
    methods.set(name, { params: namesIn(params), result: namesIn(result) });
  }
  return methods;
}

/** Every way `table` and the README's `heading` table disagree, one line each. */
function methodGaps(table: MethodTable, heading: string): string[] {
  const documented = documentedMethods(heading);
  const gaps: string[] = [];
  for (const [name, method] of Object.entries(table)) {
    const row = documented.get(name);
    if (!row) {
      gaps.push(`method ${name} has no row`);
      continue;
    }
    for (const field of fieldsOf(method.params, `${name} params`)) {
      if (!row.params.includes(field)) gaps.push(`${name} lacks param ${field}`);
    }
    for (const field of fieldsOf(method.result, `${name} result`)) {
      if (!row.result.includes(field)) gaps.push(`${name} lacks result field ${field}`);
    }
  }
  for (const name of documented.keys()) {
    if (!Object.hasOwn(table, name)) gaps.push(`method ${name} is documented but not in the code`);
  }
  return gaps;
}

/**
 * The fields the README gives a record in prose, as in
 * "A `Listing` is `{ owner, name, ... }`".
 */
function documentedRecord(name: string): string[] {
  const match = README.match(new RegExp(`A \`${name}\` is\\s+\`\\{([^}]*)\\}\``));
  assert.ok(match, `lib/protocol/README.md does not say "A \`${name}\` is \`{ ... }\`"`);
  return match[1].split(",").map((field) => field.trim());
}

function assertNoGaps(gaps: string[], where: string): void {
  assert.deepEqual(
    gaps,
    [],
    `lib/protocol/README.md, ${where}, is out of step: ${gaps.join("; ")}`,
  );
}

Deno.test("Protocol README - the tracker methods table lists every method, param and result field", () => {
  assertNoGaps(methodGaps(TRACKER_METHODS, "Tracker methods"), '"Tracker methods"');
});

Deno.test("Protocol README - the peer methods table lists every method, param and result field", () => {
  assertNoGaps(methodGaps(PEER_METHODS, "Peer methods (a peer's serving port)"), '"Peer methods"');
});

Deno.test("Protocol README - the records inside replies list every field", () => {
  const sessions = TRACKER_METHODS.sessions.result.shape.sessions.element;
  const records: [string, z.ZodType][] = [
    ["Listing", Listing],
    ["Source", Source],
    ["Session", sessions],
  ];
  const gaps: string[] = [];
  for (const [name, schema] of records) {
    const documented = documentedRecord(name);
    for (const field of fieldsOf(schema, name)) {
      if (!documented.includes(field)) gaps.push(`${name} lacks ${field}`);
    }
  }
  const manifestExample = section("Content ids and manifests").match(/```json\n(.*)\n```/);
  assert.ok(manifestExample, 'the "Content ids and manifests" section has no JSON example');
  const example = Object.keys(JSON.parse(manifestExample[1]));
  // The key order is part of the content id, so the example must have it exactly.
  if (example.join() !== fieldsOf(Manifest, "Manifest").join()) {
    gaps.push(`the manifest example has keys ${example.join(", ")}`);
  }
  assertNoGaps(gaps, "the records");
});

Deno.test("Protocol README - the error codes table lists every code once, and no other", () => {
  const documented = tableRows(section("Error codes")).map(([code]) => namesIn(code)[0]);
  const gaps: string[] = [];
  for (const code of ERROR_CODES) {
    const times = documented.filter((name) => name === code).length;
    if (times === 0) gaps.push(`${code} has no row`);
    if (times > 1) gaps.push(`${code} has ${times} rows`);
  }
  for (const code of new Set(documented)) {
    if (!(ERROR_CODES as readonly string[]).includes(code)) {
      gaps.push(`${code} is documented but not in the code`);
    }
  }
  assertNoGaps(gaps, '"Error codes"');
});
