/**
 * What the benchmarks use on the machine around the processes they run:
 * temporary folders and other clean-ups (also run on Ctrl-C), large random
 * files, TLS certificates, a process's memory, the programs on the PATH,
 * and a bounded pool for setting many peers up at once.
 */
import { randomFillSync } from "node:crypto";
import { join } from "node:path";
import { createIdentity } from "../lib/identity/certificate.ts";

/** Clean-ups still owed, run by {@link runCleanups} if the run is interrupted. */
const cleanups = new Set<() => Promise<void>>();

/**
 * Registers a clean-up to run if the benchmarks are interrupted (Ctrl-C)
 * before the `finally` that normally runs it; disposing unregisters it.
 */
export function onInterrupt(cleanup: () => Promise<void>): Disposable {
  cleanups.add(cleanup);
  return { [Symbol.dispose]: () => void cleanups.delete(cleanup) };
}

/** Runs every clean-up still owed, newest first. */
export async function runCleanups(): Promise<void> {
  for (const cleanup of [...cleanups].reverse()) {
    cleanups.delete(cleanup);
    await cleanup().catch((error) => console.error(`clean-up failed: ${error.message}`));
  }
}

/** A temporary folder (in `dir`, else the system's) removed when disposed, or when the run is interrupted. */
export async function tempDir(
  prefix: string,
  dir?: string,
): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix, dir });
  const remove = () => Deno.remove(path, { recursive: true }).catch(() => {});
  const registration = onInterrupt(remove);
  return {
    path,
    [Symbol.asyncDispose]: async () => {
      registration[Symbol.dispose]();
      await remove();
    },
  };
}

/** Writes `size` random bytes in 1 MiB blocks. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(1024 * 1024);
  for (let written = 0; written < size;) {
    randomFillSync(block);
    const chunk = block.subarray(0, Math.min(block.length, size - written));
    for (let offset = 0; offset < chunk.length;) offset += await file.write(chunk.subarray(offset));
    written += chunk.length;
  }
}

/** A certificate and key (PEM files) for a baseline's own TLS server. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** Makes a self-signed certificate like a peer's and writes it and its key into `dir`. */
export async function writeTlsFiles(dir: string): Promise<TlsFiles> {
  const identity = await createIdentity();
  const files = { certFile: join(dir, "baseline.crt"), keyFile: join(dir, "baseline.key") };
  await Deno.writeTextFile(files.certFile, identity.certificate);
  await Deno.writeTextFile(files.keyFile, identity.key);
  return files;
}

/** Resident memory of a process in KiB, from /proc; null where it cannot be read. */
export function rssKiB(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second in /proc stat files (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) used so far by process `pid`, or by the
 * children this process has waited for (`pid` "children"); null off Linux.
 */
export function cpuSeconds(pid: number | "children"): number | null {
  try {
    const path = pid === "children" ? "/proc/self/stat" : `/proc/${pid}/stat`;
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = Deno.readTextFileSync(path).split(") ")[1].split(" ");
    const [user, system] = pid === "children" ? [13, 14] : [11, 12];
    return (Number(fields[user]) + Number(fields[system])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Whether a program is on the PATH. */
export async function hasCommand(name: string): Promise<boolean> {
  try {
    const output = await new Deno.Command("sh", {
      args: ["-c", `command -v "$0"`, name],
      stdout: "null",
      stderr: "null",
    }).output();
    return output.success;
  } catch {
    return false;
  }
}

/** Runs a program to completion, its output discarded; fails with its stderr if it fails. */
export async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "null", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
}

/** Whether this process runs as root (false where the user id cannot be told). */
export function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** MB/s (10^6 bytes per second). */
export function mbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e6;
}

/**
 * Runs `work` on every item, at most `limit` at a time, and returns the
 * results in order. After a failure no new item starts, and the first error
 * is thrown once the running ones have ended (so nothing runs on after).
 */
export async function inParallel<T, R>(
  items: T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const index = next++;
      try {
        results[index] = await work(items[index], index);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length) throw errors[0];
  return results;
}

/** Runs `apt-get ARGS` quietly; the error text when it fails, else null. */
async function aptGet(args: string[]): Promise<string | null> {
  const output = await new Deno.Command("apt-get", {
    args,
    stdout: "null",
    stderr: "piped",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  }).output();
  return output.success ? null : new TextDecoder().decode(output.stderr).trim();
}

/**
 * Makes sure each program of `programs` (program → the Debian package that
 * has it) is there, installing the missing packages with apt-get when
 * running as root, after an `apt-get update` if the first try fails (the
 * package lists may be missing or old). Returns why not, or null when all are there.
 */
export async function ensurePrograms(
  programs: Record<string, string>,
  log: (line: string) => void,
): Promise<string | null> {
  const missing: string[] = [];
  for (const [program, pkg] of Object.entries(programs)) {
    if (!await hasCommand(program) && !missing.includes(pkg)) missing.push(pkg);
  }
  if (missing.length === 0) return null;
  const names = missing.join(" ");
  if (!isRoot() || !await hasCommand("apt-get")) {
    return `${names} not installed (and installing needs root and apt-get)`;
  }
  log(`installing ${names} with apt-get`);
  let failed = await aptGet(["install", "-y", ...missing]);
  if (failed !== null) {
    log("  apt-get install failed; updating the package lists and trying again");
    failed = await aptGet(["update"]) ?? await aptGet(["install", "-y", ...missing]);
  }
  const still = [];
  for (const program of Object.keys(programs)) {
    if (!await hasCommand(program)) still.push(program);
  }
  if (failed !== null || still.length > 0) {
    return `apt-get install ${names} failed${
      still.length ? ` (${still.join(", ")} missing)` : ""
    }: ${failed ?? "no error printed"}`;
  }
  return null;
}

/** Makes sure `socat` is there, installing it with apt-get when running as root. */
export function ensureSocat(log: (line: string) => void): Promise<string | null> {
  return ensurePrograms({ socat: "socat" }, log);
}
