/**
 * `--help` and `--version` of both programs: every command has a summary, its
 * options and an example; the README's tables and the help list the same commands; a
 * mistyped command or flag is a usage error (exit 2) with a suggestion.
 */
import assert from "node:assert/strict";
import { PROTOCOL_VERSION } from "../../lib/protocol/messages.ts";
import { SHOAL_VERSION } from "../../lib/version.ts";
import { tempDir } from "../helpers/processes.ts";
import { runPeerCli, runTrackerCli } from "../helpers/cli.ts";
import { runPeer } from "./_terminal.ts";

type Program = "peer.ts" | "tracker.ts";

/**
 * Runs a program in this process with a fresh home, so no config file of the
 * machine's user leaks in.
 */
async function run(program: Program, args: string[]) {
  if (program === "tracker.ts") return await runTrackerCli(args);
  await using home = await tempDir("shoal-help-");
  return await runPeerCli(["--home", home.path, ...args]);
}

/** The lines of one section ("Options:", "Commands:", …) of commander's help. */
function section(help: string, title: string): string[] {
  const lines = help.split("\n");
  const start = lines.indexOf(`${title}:`);
  if (start < 0) return [];
  const end = lines.findIndex((line, i) => i > start && line.trim() === "");
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The command names the top-level help lists, `help` included. */
function listedCommands(help: string): string[] {
  return section(help, "Commands")
    .map((line) => /^ {2}(\S+)/.exec(line)?.[1])
    .filter((name): name is string => !!name);
}

/** Checks the shape every help page must have, and returns its summary line. */
function assertHelpShape(help: string, label: string): string {
  const lines = help.split("\n");
  assert.match(lines[0], /^Usage: /, `${label}: starts with a usage line`);
  const summary = lines.slice(1).find((line) => line.trim() !== "") ?? "";
  assert.ok(
    summary !== "" && !/^(Options|Commands|Examples?):$/.test(summary),
    `${label}: a one-line summary follows the usage line, got ${JSON.stringify(summary)}`,
  );
  assert.ok(section(help, "Options").length > 0, `${label}: has an Options section\n${help}`);
  assert.ok(section(help, "Options").some((line) => line.includes("--help")), label);
  assert.match(help, /^Examples?:\n {2}\$ \S/m, `${label}: has an Example section\n${help}`);
  return summary;
}

/** The command names in the table under a `### <heading>` of README.md. */
async function readmeCommands(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const start = readme.indexOf(`### ${heading}\n`);
  assert.ok(start >= 0, `README.md has a "### ${heading}" section`);
  const body = readme.slice(start + `### ${heading}\n`.length);
  const end = body.search(/^#{2,3} /m);
  const text = end < 0 ? body : body.slice(0, end);
  const names = text.split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => /^\| `([a-z][\w-]*)/.exec(line)?.[1])
    .filter((name): name is string => !!name);
  assert.ok(names.length > 0, `the ${heading} table names commands`);
  return names;
}

for (const program of ["peer.ts", "tracker.ts"] as const) {
  Deno.test(`${program} --help - exits 0 with a summary, options, commands and an example`, async () => {
    const { code, stdout } = await run(program, ["--help"]);
    assert.equal(code, 0);
    assertHelpShape(stdout, `${program} --help`);
    assert.ok(listedCommands(stdout).length > 3, stdout);
  });

  Deno.test(`${program} <command> --help - every listed command has a summary, options and an example`, async () => {
    const top = await run(program, ["--help"]);
    const commands = listedCommands(top.stdout);
    const failures: string[] = [];
    await Promise.all(commands.map(async (command) => {
      const { code, stdout, stderr } = await run(program, [command, "--help"]);
      try {
        assert.equal(code, 0, `exit status\n${stderr}`);
        const summary = assertHelpShape(stdout, `${program} ${command} --help`);
        if (command !== "help") {
          assert.match(stdout, new RegExp(`^Usage: ${RegExp.escape(program)} ${command}\\b`));
          // The summary is the description the top-level list shows (perhaps wrapped).
          const listed = top.stdout.split("\n").find((line) =>
            new RegExp(`^ {2}${command}\\b`).test(line)
          )!;
          const start = summary.split(/\s+/).slice(0, 3).join(" ");
          assert.ok(listed.includes(start), `${JSON.stringify(summary)} vs ${listed}`);
        }
      } catch (error) {
        failures.push(`${program} ${command} --help: ${(error as Error).message}`);
      }
    }));
    assert.deepEqual(failures, []);
  });

  Deno.test(`${program} help <command> - shows the same page as <command> --help`, async () => {
    const command = program === "peer.ts" ? "fetch" : "discover";
    const viaHelp = await run(program, ["help", command]);
    const viaFlag = await run(program, [command, "--help"]);
    assert.equal(viaHelp.code, 0);
    // Examples repeat the --home they were run with: each run has its own temporary one.
    const sameHome = (text: string) => text.replace(/--home \S+/g, "--home HOME");
    assert.equal(sameHome(viaHelp.stdout), sameHome(viaFlag.stdout));
  });
}

Deno.test("peer.ts --help - the global options show their defaults and environment variables", async () => {
  const { stdout } = await run("peer.ts", ["--help"]);
  const options = section(stdout, "Options").join(" ").replace(/\s+/g, " ");
  assert.match(
    options,
    /--tracker <host:port> .*\(default: "127\.0\.0\.1:5050", env: SHOAL_TRACKER\)/,
  );
  // With discovery on (SHOAL_NO_DISCOVERY empty counts as unset), the default says it looks first.
  const looking = await runPeer(["--help"], { env: { SHOAL_NO_DISCOVERY: "" } });
  assert.match(
    looking.stdout.replace(/\s+/g, " "),
    /--tracker <host:port> .*\(default: one announced on the local network, else 127\.0\.0\.1:5050, env: SHOAL_TRACKER\)/,
  );
  assert.match(options, /--home <dir> .*\(default: \$XDG_DATA_HOME\/shoal, env: SHOAL_HOME\)/);
  assert.match(options, /--insecure-plaintext .*env: SHOAL_INSECURE_PLAINTEXT\)/);
});

Deno.test("peer.ts serve --help and tracker.ts serve --help - options show their defaults", async () => {
  const peer = (await run("peer.ts", ["serve", "--help"])).stdout.replace(/\s+/g, " ");
  assert.match(peer, /--host <host> .*\(default: "0\.0\.0\.0"\)/);
  assert.match(peer, /--port <port> .*\(default: "0"\)/);
  const tracker = (await run("tracker.ts", ["serve", "--help"])).stdout.replace(/\s+/g, " ");
  assert.match(tracker, /--port <port> .*\(default: "5050"\)/);
  assert.match(tracker, /--db <file\|url> .*\(default: "tracker\.db", env: SHOAL_TRACKER_DB\)/);
});

Deno.test("--version - prints the program, its version and the protocol version", async () => {
  for (const flag of ["--version", "-V"]) {
    const peer = await run("peer.ts", [flag]);
    assert.equal(peer.code, 0);
    assert.equal(peer.stdout, `shoal-peer ${SHOAL_VERSION} (protocol ${PROTOCOL_VERSION})\n`);
    const tracker = await run("tracker.ts", [flag]);
    assert.equal(tracker.code, 0);
    assert.equal(tracker.stdout, `shoal-tracker ${SHOAL_VERSION} (protocol ${PROTOCOL_VERSION})\n`);
  }
  assert.match(SHOAL_VERSION, /^\d+\.\d+\.\d+/);
});

for (
  const [program, heading] of [["tracker.ts", "`tracker.ts`"], ["peer.ts", "`peer.ts`"]] as const
) {
  Deno.test(`${program} --help - lists every command README.md's ${heading} table documents`, async () => {
    const documented = await readmeCommands(heading);
    const listed = listedCommands((await run(program, ["--help"])).stdout);
    // `pause` exists only inside the shell, which has no --help of its own.
    const missing = documented.filter((name) => !listed.includes(name) && name !== "pause");
    assert.deepEqual(missing, [], `documented in README.md but not in ${program} --help`);
    const undocumented = listed.filter((name) => !documented.includes(name) && name !== "help");
    assert.deepEqual(undocumented, [], `in ${program} --help but not in README.md's table`);
  });
}

Deno.test("an unknown command - exits 2 and suggests the nearest one", async () => {
  const cases: [Program, string, string][] = [
    ["peer.ts", "fetc", "fetch"],
    ["peer.ts", "pubish", "publish"],
    ["tracker.ts", "discovr", "discover"],
    ["tracker.ts", "peer", "peers"],
  ];
  for (const [program, typed, meant] of cases) {
    const { code, stdout, stderr } = await run(program, [typed, "x"]);
    assert.equal(code, 2, `${program} ${typed}: ${stderr}`);
    assert.match(stderr, new RegExp(`unknown command '${typed}'`));
    assert.match(stderr, new RegExp(`Did you mean ${meant}\\?`), stderr);
    assert.equal(stdout, "");
  }
});

Deno.test("a bad flag - exits 2, names the flag and suggests the nearest one", async () => {
  const cases: [Program, string[], string, string | null][] = [
    ["peer.ts", ["view", "--bogus"], "--bogus", null],
    ["peer.ts", ["view", "--jsn"], "--jsn", "--json"],
    ["peer.ts", ["--trackr", "h:1", "view"], "--trackr", "--tracker"],
    ["tracker.ts", ["peers", "--jsn"], "--jsn", "--json"],
    ["tracker.ts", ["serve", "--host", "127.0.0.1", "--port", "0", "--dbb", "x"], "--dbb", "--db"],
  ];
  for (const [program, args, flag, meant] of cases) {
    const { code, stderr } = await run(program, args);
    assert.equal(code, 2, `${program} ${args.join(" ")}: ${stderr}`);
    assert.match(stderr, new RegExp(`^error: unknown option '${flag}'`, "m"));
    if (meant) assert.match(stderr, new RegExp(`Did you mean ${meant}\\?`), stderr);
  }
});

Deno.test("a usage error - names the --help of the command it was in", async () => {
  const cases: [Program, string[], RegExp][] = [
    ["peer.ts", ["fetch", "notes", "--output-dir", "x"], /fetch --help` lists its options/],
    ["peer.ts", ["publsh", "x"], / --help` lists the commands and the global options/],
    ["peer.ts", ["sessions", "revoke"], /sessions revoke --help` lists its options/],
    ["tracker.ts", ["admin", "grant"], /admin grant --help` lists its options/],
  ];
  for (const [program, args, hint] of cases) {
    const { code, stderr } = await run(program, args);
    assert.equal(code, 2, `${program} ${args.join(" ")}: ${stderr}`);
    assert.match(stderr, new RegExp(`^hint: \`.*${hint.source}`, "m"), stderr);
  }
});

Deno.test("a missing argument - exits 2 and names it", async () => {
  const { code, stderr } = await run("peer.ts", ["fetch"]);
  assert.equal(code, 2);
  assert.match(stderr, /missing required argument 'name'/);
});

Deno.test("README.md - every `deno task NAME` it shows is a task of deno.json, used as it runs", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const tasks = config.tasks as Record<string, string | { dependencies: string[] }>;
  // `deno task --config PATH NAME` runs the task from another folder.
  const used = [
    ...readme.matchAll(/deno task (?:--config \S+ )?([\w-]+(?::[\w-]+)*)((?: [\w<>\[\].-]+)?)/g),
  ];
  assert.ok(used.length > 5, "the README shows deno tasks");
  for (const [whole, name, next] of used) {
    assert.ok(Object.hasOwn(tasks, name), `"${whole}": no task "${name}" in deno.json`);
    // `deno task tracker` always runs `serve`: an admin command after it would be an argument.
    const command = next.trim();
    if (name === "tracker") {
      assert.ok(
        !["ping", "discover", "peers", "files", "serve"].includes(command),
        `"${whole}": use deno task admin`,
      );
    }
  }
});
