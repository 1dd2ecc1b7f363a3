/**
 * The peer and tracker programs run in the test's own process, as `peer.ts`
 * and `tracker.ts` run them (the same commander program, the same error
 * report and exit status), with what they print captured and stdin given as
 * a string, and no terminal on any side (as for a child with piped output).
 * Runs are one at a time: the console is shared.
 */
import { join, relative } from "node:path";
import process from "node:process";
import { format } from "node:util";
import type { Command } from "commander";
import { addCompletionsCommand } from "../../lib/cli/completions.ts";
import { reportError, wantsJson } from "../../lib/cli/errors.ts";
import { withPeerExamples } from "../../lib/cli/help.ts";
import { homeFromArgs } from "../../lib/cli/peer_context.ts";
import { buildPeerProgram } from "../../lib/cli/peer_program.ts";
import { addShellCommand } from "../../lib/cli/peer_shell.ts";
import { buildTrackerProgram } from "../../lib/cli/tracker_program.ts";
import { type Program, quoteWord, setInvocation, splitGlobals } from "../../lib/invocation.ts";
import { loadConfig } from "../../lib/peer/config.ts";
import { deadline } from "../../lib/async/deadline.ts";
import { PEER_TS, PeerCommands, type RunResult, TRACKER_TS } from "./processes.ts";

/** Options of {@link runPeerCli} and {@link runTrackerCli}. */
export interface CliOptions {
  /** What the command reads on stdin (then end of file). @default {""} */
  stdin?: string;
}

// A peer run here never looks for trackers by multicast: that would reach the host's network.
Deno.env.set("SHOAL_NO_DISCOVERY", "1");

let queue: Promise<unknown> = Promise.resolve();

/** A stdin that reads `text`, then ends, and is no terminal. */
function stdinOf(text: string): typeof Deno.stdin {
  const readable = ReadableStream.from([new TextEncoder().encode(text)]);
  return { readable, isTerminal: () => false } as unknown as typeof Deno.stdin;
}

/**
 * Deno.stdin/stdout/stderr are typed read-only but are plain writable
 * properties: swapped for a run.
 */
function setStdio(name: "stdin" | "stdout" | "stderr", value: unknown): void {
  Object.defineProperty(Deno, name, { value, writable: true, configurable: true });
}

/** `stream` as a run sees it: no terminal, as for a child with piped output. */
function notTerminal<T extends { isTerminal(): boolean }>(stream: T): T {
  return new Proxy(stream, {
    get: (target, key) => key === "isTerminal" ? () => false : Reflect.get(target, key, target),
  });
}

/** Node's `isTTY` of a stream, set for a run (commander colours and wraps help on a TTY). */
function setTty(stream: NodeJS.WriteStream, isTTY: boolean | undefined): void {
  Object.defineProperty(stream, "isTTY", { value: isTTY, writable: true, configurable: true });
}

async function runInProcess(
  program: Program,
  build: (args: string[]) => Command,
  args: string[],
  options: CliOptions,
): Promise<RunResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const saved = {
    log: console.log,
    info: console.info,
    error: console.error,
    warn: console.warn,
    stdin: Deno.stdin,
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    stdoutTty: process.stdout.isTTY,
    stderrTty: process.stderr.isTTY,
    stdoutWrite: process.stdout.write,
    stderrWrite: process.stderr.write,
  };
  const to = (lines: string[]) => (...data: unknown[]) => void lines.push(`${format(...data)}\n`);
  const writeTo = (lines: string[]) => (chunk: string | Uint8Array) => {
    lines.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
    return true;
  };
  console.log = console.info = to(stdout);
  console.error = console.warn = to(stderr);
  process.stdout.write = writeTo(stdout) as typeof process.stdout.write;
  process.stderr.write = writeTo(stderr) as typeof process.stderr.write;
  setStdio("stdin", stdinOf(options.stdin ?? ""));
  setStdio("stdout", notTerminal(saved.stdout));
  setStdio("stderr", notTerminal(saved.stderr));
  setTty(process.stdout, false);
  setTty(process.stderr, false);
  let code: number;
  try {
    // Hints name the command as a child started by tests/helpers/processes.ts would
    // (`deno run -A PATH/peer.ts` and the globals), whatever launched the test runner.
    const script = program === "peer" ? PEER_TS : TRACKER_TS;
    const near = relative(Deno.cwd(), script);
    const launcher = `deno run -A ${quoteWord(near.length <= script.length ? near : script)}`;
    // The tracker has no global options (its --insecure-plaintext is serve's).
    const globals = program === "peer" ? splitGlobals(args).globals.map(quoteWord) : [];
    setInvocation(program, args, [launcher, ...globals].join(" "));
    await build(args).parseAsync(args, { from: "user" });
    code = 0;
  } catch (error) {
    code = reportError(error, { json: wantsJson(args) });
  } finally {
    Object.assign(console, {
      log: saved.log,
      info: saved.info,
      error: saved.error,
      warn: saved.warn,
    });
    process.stdout.write = saved.stdoutWrite;
    process.stderr.write = saved.stderrWrite;
    setStdio("stdin", saved.stdin);
    setStdio("stdout", saved.stdout);
    setStdio("stderr", saved.stderr);
    setTty(process.stdout, saved.stdoutTty);
    setTty(process.stderr, saved.stderrTty);
  }
  return { code, stdout: stdout.join(""), stderr: stderr.join("") };
}

/** How long an in-process command may take before its test fails as hung. */
const RUN_TIMEOUT_MS = 120_000;

/**
 * Runs one command after those before it (they share the console), failing
 * with a message if it hangs rather than hanging the suite.
 */
function queued(run: () => Promise<RunResult>, what: string): Promise<RunResult> {
  const result = queue.then(() => deadline(run(), RUN_TIMEOUT_MS, { what: `${what} (hung?)` }));
  queue = result.catch(() => {});
  return result;
}

/** Runs `peer.ts ARGS` to completion in this process; the exit status is `code`. */
export function runPeerCli(args: string[], options: CliOptions = {}): Promise<RunResult> {
  return queued(() =>
    runInProcess(
      "peer",
      (args) => {
        const config = loadConfig(homeFromArgs(args));
        const program = addShellCommand(buildPeerProgram(undefined, config), config);
        addCompletionsCommand(program, ["peer.ts", "shoal-peer"]);
        return withPeerExamples(program);
      },
      args,
      options,
    ), `peer.ts ${args.join(" ")}`);
}

/** Runs `tracker.ts ARGS` (an admin command) to completion in this process. */
export function runTrackerCli(args: string[], options: CliOptions = {}): Promise<RunResult> {
  return queued(
    () => runInProcess("tracker", buildTrackerProgram, args, options),
    `tracker.ts ${args.join(" ")}`,
  );
}

/** A peer home and its tracker, for {@link runPeerCli} runs as that peer. */
export class CliPeer extends PeerCommands<CliOptions> {
  constructor(readonly home: string, readonly tracker: string) {
    super();
  }

  /** Runs `peer.ts --tracker T --home H ARGS` in this process. */
  run(args: string[], options: CliOptions = {}): Promise<RunResult> {
    return runPeerCli(["--tracker", this.tracker, "--home", this.home, ...args], options);
  }
}

/**
 * One {@link CliPeer} per name, its home `dir`/name, each signed up with
 * `tracker` under that name, in order.
 */
export async function signedUpCliPeers(
  dir: string,
  tracker: string,
  ...names: string[]
): Promise<CliPeer[]> {
  const peers: CliPeer[] = [];
  for (const name of names) {
    const peer = new CliPeer(join(dir, name), tracker);
    await peer.signUp(name);
    peers.push(peer);
  }
  return peers;
}
