/**
 * Real trackers and peers as subprocesses, for end-to-end tests. Each starts
 * on port 0 and reports the port it bound; each peer has its own home.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deadline } from "../../lib/async/deadline.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const TRACKER_TS = `${ROOT}tracker.ts`;
export const PEER_TS = `${ROOT}peer.ts`;

// No child of a test looks for trackers by multicast on the host's network, whatever
// environment it is given; a test in its own namespaces sets SHOAL_NO_DISCOVERY="" (unset).
Deno.env.set("SHOAL_NO_DISCOVERY", "1");

/**
 * The environment children get on top of ours: no colours, and no INIT_CWD
 * (set when the tests run under `deno task`), which would move them to the
 * repo root instead of the folder a test gives them.
 */
export const CHILD_ENV: Record<string, string> = {
  NO_COLOR: "1",
  INIT_CWD: "",
  // Nor an update check, which would reach for the network (from inside namespaces, too).
  DENO_NO_UPDATE_CHECK: "1",
  // Nor a look for trackers by multicast on the host's network: only inside a test's namespaces.
  SHOAL_NO_DISCOVERY: "1",
  // Trackers serve their HTTP side on a free port, never the fixed default, side by side.
  SHOAL_TRACKER_HTTP_PORT: "0",
};

/** The output of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How a child is launched: inside a namespace, and/or with a raised open-file limit. */
export interface Launch {
  /** Runs through `ip netns exec NETNS`. */
  netns?: string;
  /** Runs through `sh -c "ulimit -n N; exec ..."` (Deno has no setrlimit). */
  openFiles?: number;
}

/**
 * The command line for `deno ARGS` launched as asked; the process id stays
 * Deno's (exec). Used by the end-to-end tests and the benchmarks alike.
 */
export function denoCommand(args: string[], launch: Launch = {}): [string, string[]] {
  let command = Deno.execPath();
  let full = args;
  if (launch.openFiles) {
    // Without the privilege to raise the hard limit, take the hard limit.
    const raise = `ulimit -n ${launch.openFiles} 2>/dev/null || ulimit -n "$(ulimit -Hn)"`;
    full = ["-c", `${raise}; exec "$0" "$@"`, command, ...full];
    command = "sh";
  }
  if (launch.netns) {
    full = ["netns", "exec", launch.netns, command, ...full];
    command = "ip";
  }
  return [command, full];
}

/**
 * A long-running child whose stdout is read line by line until a marker
 * appears. Used by the end-to-end tests and the benchmarks alike.
 */
export class Daemon {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stderr: Promise<string>;
  readonly #waiters: { pattern: RegExp; resolve: (match: RegExpExecArray) => void }[] = [];
  readonly #done: Promise<void>;

  constructor(command: string, args: string[], env: Record<string, string> = {}) {
    this.#child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { ...CHILD_ENV, ...env },
    }).spawn();
    this.#stderr = new Response(this.#child.stderr).text();
    this.#done = this.#pump();
  }

  get pid(): number {
    return this.#child.pid;
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoderStream();
    let pending = "";
    for await (const text of this.#child.stdout.pipeThrough(decoder)) {
      pending += text;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        this.lines.push(line);
        for (const waiter of [...this.#waiters]) {
          const match = waiter.pattern.exec(line);
          if (match) {
            this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
            waiter.resolve(match);
          }
        }
      }
    }
  }

  /**
   * Waits for a stdout line matching `pattern`, among lines from `fromLine`
   * on (seen before or after the call). Fails at once if the process exits
   * without printing it.
   */
  async waitFor(pattern: RegExp, timeoutMs = 20_000, fromLine = 0): Promise<RegExpExecArray> {
    for (const line of this.lines.slice(fromLine)) {
      const match = pattern.exec(line);
      if (match) return match;
    }
    const { promise, resolve } = Promise.withResolvers<RegExpExecArray>();
    this.#waiters.push({ pattern, resolve });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(async () => {
        reject(
          new Error(
            `no line matching ${pattern} within ${timeoutMs} ms; stdout:\n${
              this.lines.join("\n")
            }\nstderr:\n${await this.stderrSoFar()}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout, this.#exitedWithout(pattern, fromLine)]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Waits like {@link waitFor} for the line that says the process is up; if
   * it never comes, stops the process before failing, so a failed start
   * leaves nothing running.
   */
  async waitOrStop(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray> {
    try {
      return await this.waitFor(pattern, timeoutMs);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Rejects if the process exits and the line never showed up. */
  async #exitedWithout(pattern: RegExp, fromLine: number): Promise<never> {
    const status = await this.#child.status;
    await this.#done;
    if (this.lines.slice(fromLine).some((line) => pattern.test(line))) {
      return await new Promise<never>(() => {});
    }
    throw new Error(
      `exited ${status.code} before printing ${pattern}:\n${this.lines.join("\n")}\n${await this
        .#stderr}`,
    );
  }

  stderrSoFar(): Promise<string> {
    return Promise.race([this.#stderr, Promise.resolve("(still running)")]);
  }

  /**
   * Sends `signal` and waits for the process to exit; one that has not
   * exited after `graceMs` gets SIGKILL.
   */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5_000): Promise<Deno.CommandStatus> {
    const kill = (which: Deno.Signal) => {
      try {
        this.#child.kill(which);
      } catch {
        // Already exited.
      }
    };
    kill(signal);
    const timer = setTimeout(() => kill("SIGKILL"), graceMs);
    try {
      const status = await this.#child.status;
      await this.#done;
      await this.#stderr;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  stderr(): Promise<string> {
    return this.#stderr;
  }
}

/** Options of {@link startTracker}. */
export interface TrackerStart extends Launch {
  db: string;
  host?: string;
  port?: number;
  /** More `serve` options, e.g. `--insecure-plaintext`. */
  extra?: string[];
  /** V8 flags for Deno (`--v8-flags=...`), e.g. the ones `deno task tracker` runs with. */
  v8Flags?: string[];
  /** How long it may take to say it listens. @default {20_000} */
  timeoutMs?: number;
  /**
   * Announce it on the network (mDNS): only inside a namespace the test made.
   * @default {false}
   */
  announce?: boolean;
}

/** A tracker subprocess and the address it bound. */
export interface RunningTracker {
  daemon: Daemon;
  host: string;
  port: number;
  /** `host:port` for peers' `--tracker`. */
  address: string;
}

/** Starts `tracker.ts serve` and waits for its `listening on HOST:PORT` line. */
export async function startTracker(options: TrackerStart): Promise<RunningTracker> {
  const host = options.host ?? "127.0.0.1";
  const [command, args] = denoCommand([
    "run",
    "--allow-all",
    ...options.v8Flags ?? [],
    TRACKER_TS,
    "serve",
    ...options.announce ? [] : ["--no-announce"],
    ...options.extra ?? [],
    "--host",
    host,
    "--port",
    String(options.port ?? 0),
    "--db",
    options.db,
  ], options);
  const daemon = new Daemon(command, args);
  const match = await daemon.waitOrStop(/listening on (\S+):(\d+)/, options.timeoutMs);
  const port = Number(match[2]);
  return { daemon, host, port, address: `${host}:${port}` };
}

/** Runs `tracker.ts ARGS` (an admin command) to completion, inside `netns` if given. */
export async function runTrackerCommand(args: string[], netns?: string): Promise<RunResult> {
  const [command, fullArgs] = denoCommand(["run", "--allow-all", TRACKER_TS, ...args], { netns });
  const output = await new Deno.Command(command, {
    args: fullArgs,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: CHILD_ENV,
  }).output();
  return decoded(output);
}

/** Options of {@link runCommand}. */
export interface CommandOptions {
  /** What the command reads on stdin (then end of file). @default {""} */
  stdin?: string;
  cwd?: string;
  /** The environment: on top of ours, or all of it with `clearEnv`. @default {CHILD_ENV} */
  env?: Record<string, string>;
  clearEnv?: boolean;
  /**
   * A command still running this long is killed and the test fails, naming
   * it, instead of hanging the suite. @default {120000}
   */
  timeoutMs?: number;
}

/** How long a command a test runs may take before it is killed as hung. */
const COMMAND_TIMEOUT_MS = 120_000;

/** Runs a command to completion, feeding it `stdin`, and returns its decoded output. */
export async function runCommand(
  command: string,
  args: string[],
  options: CommandOptions = {},
): Promise<RunResult> {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    clearEnv: options.clearEnv,
    env: options.env ?? CHILD_ENV,
  }).spawn();
  const writer = child.stdin.getWriter();
  // A command that exits without reading its input is not an error here.
  await writer.write(new TextEncoder().encode(options.stdin ?? "")).catch(() => {});
  await writer.close().catch(() => {});
  const timeoutMs = options.timeoutMs ?? COMMAND_TIMEOUT_MS;
  try {
    return decoded(
      await deadline(child.output(), timeoutMs, {
        what: `${command} ${args.join(" ")} (hung? killed)`,
      }),
    );
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It ended meanwhile.
    }
    throw error;
  }
}

function decoded(output: Deno.CommandOutput): RunResult {
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A tracker on a fresh database, and two peers signed up with it. */
export interface TwoPeerNetwork extends AsyncDisposable {
  db: string;
  tracker: RunningTracker;
  alice: TestPeer;
  bob: TestPeer;
}

/**
 * Starts a tracker on `dir`/tracker.db and signs alice and bob up (homes in
 * `dir`), the set-up most end-to-end tests share; disposing stops the tracker.
 */
export async function trackerWithAliceAndBob(dir: string): Promise<TwoPeerNetwork> {
  const db = join(dir, "tracker.db");
  const tracker = await startTracker({ db });
  try {
    const alice = new TestPeer(join(dir, "alice"), tracker.address);
    const bob = new TestPeer(join(dir, "bob"), tracker.address);
    await alice.signUp("alice");
    await bob.signUp("bob");
    return {
      db,
      tracker,
      alice,
      bob,
      async [Symbol.asyncDispose]() {
        await tracker.daemon.stop();
      },
    };
  } catch (error) {
    await tracker.daemon.stop();
    throw error;
  }
}

/** A peer identity: its home and the tracker it talks to (in plaintext if told). */
/** How a {@link TestPeer} runs one command. */
export type PeerRunOptions = Pick<CommandOptions, "stdin" | "cwd" | "timeoutMs">;

/**
 * What every test peer can do with `peer.ts`, however it runs it (a child
 * process here, the same program in the test's process in cli.ts): run a
 * command, run one that must succeed, sign up.
 */
export abstract class PeerCommands<Options extends { stdin?: string }> {
  /** Runs `peer.ts` with this peer's tracker and home, and `args`. */
  abstract run(args: string[], options?: Options): Promise<RunResult>;

  /** Runs a command that must succeed, and returns its stdout. */
  async ok(args: string[], options?: Options): Promise<string> {
    const result = await this.run(args, options);
    if (result.code !== 0) {
      throw new Error(
        `peer.ts ${args.join(" ")} exited ${result.code}:\n${result.stderr}${result.stdout}`,
      );
    }
    return result.stdout;
  }

  /** Registers and logs in with a password derived from the username. */
  async signUp(username: string): Promise<void> {
    const stdin = `${username}-password\n`;
    await this.ok(["register", username, "--password-stdin"], { stdin } as Options);
    await this.ok(["login", username, "--password-stdin"], { stdin } as Options);
  }
}

export class TestPeer extends PeerCommands<PeerRunOptions> {
  /** `--v8-flags=...` to run `peer.ts` with (the benchmarks take `deno task peer`'s). */
  v8Flags: string[] = [];

  constructor(
    readonly home: string,
    public tracker: string,
    readonly netns?: string,
    readonly plaintext = false,
  ) {
    super();
  }

  /** `peer.ts` with this peer's tracker and home, and `args`, inside its namespace if any. */
  #command(args: string[]): [string, string[]] {
    const global = ["--tracker", this.tracker, "--home", this.home];
    if (this.plaintext) global.push("--insecure-plaintext");
    return denoCommand(["run", "--allow-all", ...this.v8Flags, PEER_TS, ...global, ...args], {
      netns: this.netns,
    });
  }

  /** Runs one `peer.ts` command to completion. */
  run(args: string[], options: PeerRunOptions = {}): Promise<RunResult> {
    const [command, fullArgs] = this.#command(args);
    return runCommand(command, fullArgs, options);
  }

  /** Starts a `peer.ts` command without waiting for it, e.g. a fetch to kill halfway. */
  spawn(args: string[], options: { cwd?: string } = {}): Deno.ChildProcess {
    const [command, fullArgs] = this.#command(args);
    return new Deno.Command(command, {
      args: fullArgs,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: CHILD_ENV,
    }).spawn();
  }

  /**
   * Starts `peer.ts serve` and waits until the tracker has it online. `env`
   * can hold the test-only fault injections (SHOAL_TEST_*).
   */
  async serve(extra: string[] = [], env: Record<string, string> = {}): Promise<Daemon> {
    const daemon = await this.serveUnchecked(extra, env);
    await daemon.waitOrStop(/^online as /);
    return daemon;
  }

  /** Starts `peer.ts serve` and waits only until it listens, not until it is online. */
  async serveUnchecked(extra: string[] = [], env: Record<string, string> = {}): Promise<Daemon> {
    const [command, args] = this.#command([
      "serve",
      "--host",
      this.netns ? "0.0.0.0" : "127.0.0.1",
      ...extra,
    ]);
    const daemon = new Daemon(command, args, env);
    await daemon.waitOrStop(/serving on \S+/);
    return daemon;
  }
}

/** A temporary folder removed when disposed. */
export async function tempDir(prefix = "shoal-test-"): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** Writes `size` random bytes, starting with `marker` when given. */
export async function writeRandomFile(path: string, size: number, marker = ""): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(1024 * 1024);
  for (let written = 0; written < size;) {
    // getRandomValues fills at most 64 KiB per call.
    for (let i = 0; i < block.length; i += 65536) {
      crypto.getRandomValues(block.subarray(i, i + 65536));
    }
    if (written === 0) block.set(new TextEncoder().encode(marker));
    const chunk = block.subarray(0, Math.min(block.length, size - written));
    for (let offset = 0; offset < chunk.length;) offset += await file.write(chunk.subarray(offset));
    written += chunk.length;
  }
}

/** SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}
