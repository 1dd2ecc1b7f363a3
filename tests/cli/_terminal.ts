/**
 * Terminals for CLI tests: a tmux pane to type into and read back, and the
 * plain subprocess runs the other CLI tests share.
 */
import {
  CHILD_ENV,
  PEER_TS,
  runCommand,
  type RunResult,
  TRACKER_TS,
} from "../helpers/processes.ts";

/** Whether a program is on PATH. */
export function hasCommand(name: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v "$1"`, "sh", name] })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * The environment a child starts from: ours without the SHOAL_* variables a
 * developer may have exported, which would change what the tests observe.
 */
export function baseEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("SHOAL_")),
  );
}

/** Options of {@link runDeno}. */
export interface RunOptions {
  /** Variables set on top of CHILD_ENV. */
  env?: Record<string, string>;
  /** Variables removed from the environment (e.g. NO_COLOR, which CHILD_ENV sets). */
  unset?: string[];
  stdin?: string;
}

/** Runs `deno run --allow-all <script> ...args` without a terminal. */
export async function runDeno(
  script: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const env = { ...baseEnv(), ...CHILD_ENV, ...options.env };
  for (const name of options.unset ?? []) delete env[name];
  return await runCommand(Deno.execPath(), ["run", "--allow-all", script, ...args], {
    stdin: options.stdin,
    clearEnv: true,
    env,
  });
}

/** `peer.ts ...args`, without a terminal. */
export const runPeer = (args: string[], options?: RunOptions) => runDeno(PEER_TS, args, options);

/** `tracker.ts ...args`, without a terminal. */
export const runTracker = (args: string[], options?: RunOptions) =>
  runDeno(TRACKER_TS, args, options);

/** The argv of `deno run --allow-all <script> ...args`. */
export const denoRun = (script: string, ...args: string[]) => [
  Deno.execPath(),
  "run",
  "--allow-all",
  script,
  ...args,
];

/** Options of {@link TmuxPane.start}. */
export interface PaneOptions {
  columns?: number;
  rows?: number;
  /** Variables set on top of CHILD_ENV. */
  env?: Record<string, string>;
  cwd?: string;
}

/**
 * A command running in a pane of a private tmux server (its own socket in a
 * temporary folder, so nothing else's tmux is touched). When the command ends the pane prints
 * `[exited N]` and stays, so its output can still be read.
 *
 * @example
 * ```ts
 * await using pane = await TmuxPane.start(["bash", "--norc"]);
 * await pane.type("echo hi");
 * await pane.waitFor("hi");
 * ```
 */
export class TmuxPane implements AsyncDisposable {
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async start(command: string[], options: PaneOptions = {}): Promise<TmuxPane> {
    const pane = new TmuxPane(await Deno.makeTempDir({ prefix: "shoal-tmux-" }));
    const env = { ...CHILD_ENV, ...options.env };
    const wrapped = [
      "env",
      // Not the SHOAL_* variables a developer may have exported.
      ...Object.keys(Deno.env.toObject()).filter((name) => name.startsWith("SHOAL_"))
        .flatMap((name) => ["-u", name]),
      ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
      "sh",
      "-c",
      // The trap keeps this sh alive after a Ctrl-C typed to the command (a trap,
      // unlike an ignored signal, is not inherited, so the command sees Ctrl-C).
      'trap : INT; "$@"; echo "[exited $?]"; exec sleep 3600',
      "sh",
      ...command,
    ];
    try {
      await pane.#tmux([
        "new-session",
        "-d",
        "-s",
        "test",
        "-x",
        String(options.columns ?? 120),
        "-y",
        String(options.rows ?? 40),
        ...(options.cwd ? ["-c", options.cwd] : []),
        ...wrapped,
      ]);
    } catch (error) {
      await pane[Symbol.asyncDispose]();
      throw error;
    }
    return pane;
  }

  async #tmux(args: string[]): Promise<string> {
    const output = await new Deno.Command("tmux", {
      args: ["-S", `${this.#dir}/socket`, "-f", "/dev/null", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (!output.success) {
      throw new Error(`tmux ${args.join(" ")}: ${decoder.decode(output.stderr)}`);
    }
    return decoder.decode(output.stdout);
  }

  /** Sends key names as tmux spells them: "Enter", "Tab", "C-d", "Up". */
  async keys(...keys: string[]): Promise<void> {
    await this.#tmux(["send-keys", "-t", "test", ...keys]);
  }

  /** Types text literally, then Enter. */
  async type(text: string): Promise<void> {
    if (text) await this.#tmux(["send-keys", "-t", "test", "-l", "--", text]);
    await this.keys("Enter");
  }

  /**
   * Everything the pane shows and has scrolled away, wrapped lines joined
   * (so a line wider than the pane shows as one long line).
   */
  async capture(): Promise<string> {
    return await this.#tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", "test"]);
  }

  /**
   * Polls the pane until `pattern` occurs at least `count` times, and returns
   * the capture; fails with the pane's text after `timeoutMs`.
   */
  async waitFor(pattern: string | RegExp, count = 1, timeoutMs = 30_000): Promise<string> {
    const regex = typeof pattern === "string"
      ? new RegExp(RegExp.escape(pattern), "g")
      : new RegExp(
        pattern.source,
        pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g",
      );
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const text = await this.capture();
      if ((text.match(regex)?.length ?? 0) >= count) return text;
      if (Date.now() > deadline) {
        const wanted = typeof pattern === "string" ? JSON.stringify(pattern) : String(pattern);
        throw new Error(`the pane never showed ${wanted} (${count}x); it shows:\n${text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Whether the terminal shows its cursor (a program may hide it, and must show it again). */
  async cursorVisible(): Promise<boolean> {
    return (await this.#tmux(["display-message", "-p", "-t", "test", "#{cursor_flag}"])).trim() ===
      "1";
  }

  /** Waits for the command to end and returns its exit status. */
  async exitCode(timeoutMs = 30_000): Promise<number> {
    const text = await this.waitFor(/\[exited \d+\]/, 1, timeoutMs);
    return Number(/\[exited (\d+)\]/.exec(text)![1]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#tmux(["kill-server"]).catch(() => {});
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Whether the text holds an ANSI colour (SGR) sequence. Other sequences do not
 * count: deno itself clears its progress line on a terminal.
 */
// deno-lint-ignore no-control-regex -- the escape character is what is looked for
export const hasColour = (text: string) => /\x1b\[[0-9;]*m/.test(text);
