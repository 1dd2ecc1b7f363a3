/**
 * Real trackers and peers as subprocesses for the benchmarks: the e2e
 * helpers of `tests/helpers/processes.ts` (which launch in namespaces, with
 * a raised open-file limit, in plaintext), plus what a benchmark needs on
 * top: the tracker's V8 flags, timings, and Deno copies as a floor.
 */
import { fileURLToPath } from "node:url";
import type { TlsFiles } from "./resources.ts";
import {
  Daemon,
  denoCommand,
  type Launch,
  PEER_TS,
  sha256File,
  startTracker as startTestTracker,
  TestPeer,
  TRACKER_TS,
} from "../tests/helpers/processes.ts";

export { Daemon, denoCommand, type Launch, PEER_TS, TRACKER_TS };

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * The V8 flags `deno task tracker` (and the compiled tracker) runs with,
 * read from deno.json so the benchmarks measure the tracker as it is run.
 */
export function trackerV8Flags(): string[] {
  return taskV8Flags("tracker");
}

/** The V8 flags `deno task peer` (and the installed `shoal`) runs with, likewise. */
export function peerV8Flags(): string[] {
  return taskV8Flags("peer");
}

function taskV8Flags(task: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  };
  return config.tasks[task].match(/--v8-flags=\S+/g) ?? [];
}

/** Options of {@link startTracker}. */
export interface TrackerStart extends Launch {
  db: string;
  host?: string;
  plaintext?: boolean;
  /** More `serve` options, e.g. `--identity DIR`. */
  extra?: string[];
}

/** A tracker subprocess and the address it bound. */
export interface RunningTracker {
  daemon: Daemon;
  address: string;
  /** Seconds from spawning to its `listening on` line. */
  startSeconds: number;
}

/**
 * Starts `tracker.ts serve` on port 0 as the tests do, with the V8 flags it
 * runs with, and times it until its `listening on HOST:PORT` line.
 */
export async function startTracker(options: TrackerStart): Promise<RunningTracker> {
  const started = performance.now();
  const { daemon, address } = await startTestTracker({
    db: options.db,
    host: options.host,
    netns: options.netns,
    openFiles: options.openFiles,
    v8Flags: trackerV8Flags(),
    extra: [...options.plaintext ? ["--insecure-plaintext"] : [], ...options.extra ?? []],
    // Benchmarks start trackers beside busy processes on a small machine.
    timeoutMs: 120_000,
  });
  return { daemon, address, startSeconds: (performance.now() - started) / 1000 };
}

/** The output of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/**
 * A peer identity for the benchmarks: the tests' {@link TestPeer} (its
 * home, tracker, namespace, plaintext), with each command timed.
 */
export class BenchPeer {
  readonly #peer: TestPeer;

  constructor(
    readonly home: string,
    readonly tracker: string,
    readonly options: { netns?: string; plaintext?: boolean } = {},
  ) {
    this.#peer = new TestPeer(home, tracker, options.netns, options.plaintext);
    // Measured as it is run.
    this.#peer.v8Flags = peerV8Flags();
  }

  /** Runs one `peer.ts` command to completion, timing it. */
  async run(args: string[], stdin = ""): Promise<RunResult> {
    const started = performance.now();
    // A benchmark's transfer may take longer than a test's command is allowed to.
    const result = await this.#peer.run(args, { stdin, timeoutMs: 30 * 60_000 });
    return { ...result, seconds: (performance.now() - started) / 1000 };
  }

  /** Runs a command that must succeed. */
  async ok(args: string[], stdin = ""): Promise<RunResult> {
    const result = await this.run(args, stdin);
    if (result.code !== 0) {
      throw new Error(
        `peer.ts ${args.join(" ")} exited ${result.code}:\n${result.stderr}${result.stdout}`,
      );
    }
    return result;
  }

  /** Starts one `peer.ts` command without waiting for it (to watch its memory, say). */
  spawn(args: string[]): Deno.ChildProcess {
    return this.#peer.spawn(args);
  }

  /** Registers and logs in with a password derived from the username. */
  signUp(username: string): Promise<void> {
    return this.#peer.signUp(username);
  }

  /** Starts `peer.ts serve` (with `extra` flags) and waits until the tracker has it online. */
  serve(extra: string[] = []): Promise<Daemon> {
    return this.#peer.serve(extra);
  }
}

/** A download summary as `peer.ts fetch --json` prints it (the fields the benchmarks use). */
export interface FetchSummary {
  size: number;
  seconds: number;
  transferred: number;
  sources: {
    owner: string;
    pieces: number;
    partial: boolean;
    queued: { place: number; seconds: number } | null;
  }[];
}

/** Fetches `name` to `output` and returns the summary with the command's wall time. */
export async function fetchJson(
  peer: BenchPeer,
  name: string,
  output: string,
  extra: string[] = [],
): Promise<FetchSummary & { wallSeconds: number }> {
  const result = await peer.ok(["fetch", name, "--json", "--output", output, ...extra]);
  return { ...JSON.parse(result.stdout) as FetchSummary, wallSeconds: result.seconds };
}

const DENO_COPY_TS = `${ROOT}bench/deno_copy.ts`;
/** Eight Deno start-ups at once in namespaces, on two cores, take a while. */
const COPY_START_MS = 120_000;
const COPY_MS = 300_000;

/** One run of bench/deno_copy.ts: its senders, its receiver, and what they do. */
export interface DenoCopyPlan {
  source: string;
  /** Where the receiver writes; with several senders, TARGET.0, TARGET.1, ... */
  target: string;
  /** One sender per entry, each sending all of `source` from `ip` (127.0.0.1 unless given). */
  senders: { netns?: string; ip?: string }[];
  receiver?: { netns?: string };
  tls: TlsFiles | null;
  /**
   * Whether the receiver hashes what it receives, as a fetch verifies its
   * pieces; the digests are then checked against `source`'s.
   */
  sha256: boolean;
}

/** SHA-256 of each source hashed so far: a 1 GiB source is sent many times, hashed once. */
const sourceDigests = new Map<string, Promise<string>>();

/**
 * Runs the plainest Deno copy as planned and returns the receiver's seconds
 * from connecting to every sender until every byte is written and synced
 * (start-up excluded, as in a fetch's own seconds). Checks the byte count
 * and, when hashing, the digests; removes what it wrote.
 */
export async function runDenoCopy(plan: DenoCopyPlan): Promise<number> {
  const tlsSend = plan.tls ? ["--tls", plan.tls.certFile, "--key", plan.tls.keyFile] : [];
  const targets = plan.senders.length === 1
    ? [plan.target]
    : plan.senders.map((_, i) => `${plan.target}.${i}`);
  const daemons: Daemon[] = [];
  try {
    const addresses: Promise<string>[] = [];
    for (const { netns, ip = "127.0.0.1" } of plan.senders) {
      const sender = new Daemon(...denoCommand(
        ["run", "--allow-all", DENO_COPY_TS, "send", plan.source, "--host", ip, ...tlsSend],
        { netns },
      ));
      daemons.push(sender);
      addresses.push(
        sender.waitFor(/^port (\d+)$/, COPY_START_MS).then(([, port]) => `${ip}:${port}`),
      );
    }
    const receiver = new Daemon(...denoCommand([
      "run",
      "--allow-all",
      DENO_COPY_TS,
      "receive",
      plan.target,
      ...await Promise.all(addresses),
      ...(plan.sha256 ? ["--sha256"] : []),
      ...(plan.tls ? ["--tls", plan.tls.certFile] : []),
    ], plan.receiver));
    daemons.push(receiver);
    const [line] = await receiver.waitFor(/^\{.*\}$/, COPY_MS);
    const { bytes, seconds, sha256 } = JSON.parse(line) as {
      bytes: number;
      seconds: number;
      sha256: string[];
    };
    const expected = plan.senders.length * (await Deno.stat(plan.source)).size;
    if (bytes !== expected) throw new Error(`deno_copy.ts received ${bytes} of ${expected} bytes`);
    if (plan.sha256) {
      let hashing = sourceDigests.get(plan.source);
      if (!hashing) sourceDigests.set(plan.source, hashing = sha256File(plan.source));
      const digest = await hashing;
      if (sha256.length !== plan.senders.length || sha256.some((hex) => hex !== digest)) {
        throw new Error("deno_copy.ts received bytes other than the source's");
      }
    }
    return seconds;
  } finally {
    for (const daemon of daemons) await daemon.stop().catch(() => {});
    for (const target of targets) await Deno.remove(target).catch(() => {});
  }
}
