/**
 * The layers of lib/ depend downwards only: entry points → lib/cli →
 * lib/tracker | lib/peer → lib/identity, lib/storage → lib/protocol → lib/async.
 * The protocol package holds only the wire (STYLE.md 14), so it imports
 * nothing of ours from outside it but the async toolkit, which imports
 * nothing at all; nothing below the CLI imports the CLI.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "..");

/** Modules of lib/ that import nothing of ours outside themselves: any layer above may use them. */
const LEAVES = ["async", "defaults", "invocation", "log_line", "version"];
/** What the tracker and the peer stand on. */
const BELOW_DOMAIN = ["identity", "storage", "protocol", ...LEAVES];

/** What each layer of lib/ may import from lib/, besides npm packages and node: builtins. */
const MAY_IMPORT: Record<string, string[]> = {
  protocol: ["protocol", "async"],
  identity: ["identity", "storage", "protocol", "async"],
  storage: ["storage", "protocol"],
  peer: ["peer", ...BELOW_DOMAIN],
  tracker: ["tracker", ...BELOW_DOMAIN],
  cli: ["cli", "peer", "tracker", ...BELOW_DOMAIN],
  // The leaves: the toolkit's modules import each other, and nothing else.
  async: ["async"],
  defaults: [],
  invocation: [],
  log_line: [],
  version: [],
};

/** `lib/peer/fetch.ts` → `peer`; `lib/version.ts` → `version`; outside lib/ → null. */
function layerOf(path: string): string | null {
  const parts = path.split("/");
  if (parts[0] !== "lib") return null;
  return parts.length === 2 ? parts[1].replace(/\.ts$/, "") : parts[1];
}

/** Every module specifier a source imports or re-exports, static or dynamic. */
function specifiersOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^"]*?\bfrom\s*"([^"]+)"/gm,
    /^\s*import\s*"([^"]+)"/gm,
    /\bimport\(\s*"([^"]+)"\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) found.push(match[1]);
  }
  return found;
}

/** A specifier that names a package (npm, through deno.json's imports) or a node: builtin. */
function isPackage(specifier: string): boolean {
  return specifier.startsWith("node:") || specifier.startsWith("npm:") ||
    /^(@[\w.-]+\/)?[\w.-]+(\/.*)?$/.test(specifier);
}

/**
 * The imports that break the layering, as `lib/a/x.ts imports lib/b/y.ts`,
 * for sources keyed by their path from the repository's root.
 */
function layeringViolations(sources: Map<string, string>): string[] {
  const violations: string[] = [];
  for (const [path, source] of sources) {
    const layer = layerOf(path);
    if (layer === null) continue;
    const allowed = MAY_IMPORT[layer];
    if (!allowed) {
      violations.push(`${path} is in a layer the layering test does not know: add it`);
      continue;
    }
    for (const specifier of specifiersOf(source)) {
      if (!specifier.startsWith(".")) {
        if (!isPackage(specifier)) violations.push(`${path} imports ${specifier}`);
        continue;
      }
      const target = join(dirname(path), specifier);
      const targetLayer = layerOf(target);
      if (targetLayer === null || !allowed.includes(targetLayer)) {
        violations.push(`${path} imports ${target}`);
      }
    }
  }
  return violations;
}

async function libSources(): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        sources.set(relative(ROOT, path), await Deno.readTextFile(path));
      }
    }
  };
  await walk(join(ROOT, "lib"));
  return sources;
}

Deno.test("layering - lib/protocol imports nothing of ours from outside it, and only lib/cli imports lib/cli", async () => {
  const sources = await libSources();
  assert.ok(sources.has("lib/protocol/frame.ts"), "the walk found lib/");
  assert.deepEqual(layeringViolations(sources), []);
});

Deno.test("layering - the check names each import that runs back up or out of the wire", () => {
  const sources = new Map([
    ["lib/protocol/frame.ts", 'import { z } from "zod";\nimport { Buffer } from "node:buffer";\n'],
    ["lib/protocol/client.ts", 'import { TLS_SERVER_NAME } from "./tls.ts";\n'],
    [
      "lib/protocol/server.ts",
      'import type {\n  TlsIdentity,\n} from "../identity/key_files.ts";\n',
    ],
    ["lib/protocol/tickets.ts", 'import { join } from "jsr:@std/path";\n'],
    ["lib/peer/fetch.ts", 'import { DEFAULT_SERVE_HOST } from "../defaults.ts";\n'],
    ["lib/peer/serve.ts", 'export { runFetch } from "../cli/fetch_command.ts";\n'],
    ["lib/tracker/admin.ts", 'const cli = await import("../cli/errors.ts");\n'],
    ["lib/cli/run.ts", 'import { Tracker } from "../tracker/tracker.ts";\n'],
    ["lib/cli/shell.ts", 'import "../../tests/helpers/bytes.ts";\n'],
  ]);
  assert.deepEqual(layeringViolations(sources), [
    "lib/protocol/server.ts imports lib/identity/key_files.ts",
    "lib/protocol/tickets.ts imports jsr:@std/path",
    "lib/peer/serve.ts imports lib/cli/fetch_command.ts",
    "lib/tracker/admin.ts imports lib/cli/errors.ts",
    "lib/cli/shell.ts imports tests/helpers/bytes.ts",
  ]);
});
