/**
 * The baselines for folder transfers: `rsync -a` and `scp -r` over ssh on
 * loopback, as people copy a tree between two machines. The benchmark runs
 * its own sshd, as the current user, on a free loopback port, with its own
 * host key and authorized_keys in a temporary folder, and stops it after.
 */
import { join } from "node:path";
import { delay } from "../lib/async/delay.ts";
import { onInterrupt, run } from "./resources.ts";

/** The programs these baselines need, and the Debian packages that have them. */
export const SSH_PROGRAMS: Record<string, string> = {
  rsync: "rsync",
  sshd: "openssh-server",
  ssh: "openssh-client",
  scp: "openssh-client",
  "ssh-keygen": "openssh-client",
};

/** A running sshd of the benchmark's own, and how to reach it. */
export interface SshServer extends AsyncDisposable {
  port: number;
  /** `ssh` with the options that reach this server and nothing else (no user config). */
  ssh: string[];
}

/** Where a program is on the PATH (sshd must be started by its absolute path). */
async function which(program: string): Promise<string> {
  const output = await new Deno.Command("sh", {
    args: ["-c", `command -v "$0"`, program],
    stdout: "piped",
    stderr: "null",
  }).output();
  const path = new TextDecoder().decode(output.stdout).trim();
  if (!output.success || !path) throw new Error(`${program} is not on the PATH`);
  return path;
}

function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return (listener.addr as Deno.NetAddr).port;
}

/**
 * Starts sshd on 127.0.0.1 and a free port, configured from files in `dir`
 * only (host key, client key, authorized_keys, config), and waits until an
 * `ssh ... true` gets through. Disposing stops it.
 */
export async function startSshServer(dir: string): Promise<SshServer> {
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
  const authorized = join(dir, "authorized_keys");
  await Deno.copyFile(`${clientKey}.pub`, authorized);
  await Deno.chmod(authorized, 0o600);
  const port = freePort();
  const config = join(dir, "sshd_config");
  await Deno.writeTextFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorized}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      // The temporary folder's modes are not sshd's business.
      "StrictModes no",
      "PermitRootLogin prohibit-password",
      // OpenSSH's scp speaks SFTP by default.
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  // As root sshd wants its privilege-separation folder, which only its service start makes.
  if (Deno.uid() === 0) await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const daemon = new Deno.Command(await which("sshd"), {
    args: ["-D", "-e", "-f", config],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(daemon.stderr).text();
  const stop = async () => {
    try {
      daemon.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await daemon.status;
  };
  const registration = onInterrupt(stop);
  const ssh = [
    "ssh",
    "-F",
    "/dev/null",
    "-p",
    String(port),
    "-i",
    clientKey,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
  ];
  const server: SshServer = {
    port,
    ssh,
    [Symbol.asyncDispose]: async () => {
      registration[Symbol.dispose]();
      await stop();
    },
  };
  let exited = false;
  daemon.status.then(() => exited = true);
  let lastError = "";
  // Bounded: 100 tries, 100 ms apart.
  for (let attempt = 0; attempt < 100 && !exited; attempt++) {
    try {
      await run(ssh[0], [...ssh.slice(1), "127.0.0.1", "true"]);
      return server;
    } catch (error) {
      lastError = (error as Error).message;
      await delay(100);
    }
  }
  await server[Symbol.asyncDispose]();
  throw new Error(`sshd did not let ssh in: ${lastError}\n${(await stderr).trim()}`);
}

/** Seconds from starting the copy until the copied tree is on the disk (sync -f). */
async function timed(copy: () => Promise<void>, target: string): Promise<number> {
  const started = performance.now();
  await copy();
  await run("sync", ["-f", target]);
  return (performance.now() - started) / 1000;
}

/**
 * Copies the tree `source` to the new folder `target` with `rsync -a` through
 * `server`, and returns the seconds it took, the final sync included.
 */
export function rsyncCopy(server: SshServer, source: string, target: string): Promise<number> {
  return timed(
    () => run("rsync", ["-a", "-e", server.ssh.join(" "), `${source}/`, `127.0.0.1:${target}/`]),
    target,
  );
}

/**
 * Copies the tree `source` to the new folder `target` with `scp -r` through
 * `server`, and returns the seconds it took, the final sync included.
 */
export function scpCopy(server: SshServer, source: string, target: string): Promise<number> {
  // scp takes ssh's options but spells the port -P.
  const options = server.ssh.slice(1).map((option) => option === "-p" ? "-P" : option);
  return timed(() => run("scp", ["-r", "-q", ...options, source, `127.0.0.1:${target}`]), target);
}
