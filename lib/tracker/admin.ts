import { abortable } from "../async/abortable.ts";
/** The operator's view of the network: find a peer, ping it, see what it shares. */
import { formatAddress, parseAddress } from "../protocol/address.ts";
import { ProtocolClient } from "../protocol/client.ts";
import { ShoalError, toShoalError } from "../protocol/errors.ts";
import { PEER_METHODS } from "../protocol/messages.ts";
import { SHOAL_VERSION } from "../version.ts";
import type { FileListing, PeerRecord, TrackerStore } from "./store.ts";

/** Where to look when a peer is not found (`tracker.ts` becomes the command as run). */
const LIST_PEERS = "`tracker.ts peers` lists the peers that have served";

/**
 * Finds a peer by username, host, or host:port. A host shared by several
 * peers is ambiguous; the message lists who is there.
 */
export async function resolvePeer(store: TrackerStore, name: string): Promise<PeerRecord> {
  const user = await store.getUser(name);
  const byName = user && await store.getPeer(user.username);
  if (byName) return byName;
  let address;
  try {
    address = parseAddress(name, 0);
  } catch {
    throw new ShoalError("NOT_FOUND", `no peer named "${name}"`, { hint: LIST_PEERS });
  }
  const found = await store.peersAt(address.host, address.port === 0 ? undefined : address.port);
  if (found.length === 0) {
    throw new ShoalError(
      "NOT_FOUND",
      user ? `${user.username} has never served files` : `no peer named or at "${name}"`,
      { hint: LIST_PEERS },
    );
  }
  if (found.length > 1) {
    throw new ShoalError(
      "AMBIGUOUS",
      `${found.length} peers at ${name} (${found.map((p) => p.username).join(", ")}); name one`,
    );
  }
  return found[0];
}

/** The outcome of the OS `ping`. */
export interface OsPingResult {
  /** False where the OS has no `ping` or it cannot run. */
  available: boolean;
  reachable: boolean;
  rttMs: number | null;
  detail: string;
}

/** What `ping` reports where the OS has no `ping` command. */
export const OS_PING_MISSING = "OS ping not found; install iputils-ping for ping's OS half";

/** Whether the OS has a `ping` command to run. */
export async function hasOsPing(): Promise<boolean> {
  try {
    await new Deno.Command("ping", { args: ["-V"], stdin: "null", stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch (error) {
    return !(error instanceof Deno.errors.NotFound);
  }
}

/** Runs the OS `ping -c 1` through Deno.Command. */
export async function osPing(
  host: string,
  timeoutSeconds = 2,
  signal?: AbortSignal,
): Promise<OsPingResult> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ping", {
      // "--": a host is never read as an option, whatever a peer announced.
      args: ["-c", "1", "-W", String(timeoutSeconds), "--", host],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? OS_PING_MISSING
      : toShoalError(error).message;
    return { available: false, reachable: false, rttMs: null, detail: why };
  }
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const rtt = /time[=<]([\d.]+)\s*ms/.exec(text);
  const lastLine = text.trim().split("\n").at(-1) ?? "";
  return {
    available: true,
    reachable: output.success,
    rttMs: rtt ? Number(rtt[1]) : null,
    detail: output.success ? "reply received" : lastLine || `ping exited ${output.code}`,
  };
}

/** The outcome of the application-level probe of a peer's serving port. */
export interface ProbeResult {
  answered: boolean;
  rttMs: number | null;
  /** Who the peer process says it is. */
  username: string | null;
  detail: string;
}

/**
 * Connects to a peer's serving port and times a protocol `ping`, over TLS
 * with the certificate the peer announced when it has one.
 */
export async function probePeer(
  host: string,
  port: number,
  certificate: string | null,
  timeoutMs = 3000,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const started = performance.now();
  try {
    const connecting = ProtocolClient.connect({ host, port }, PEER_METHODS, {
      expect: "peer",
      agent: `shoal-tracker/${SHOAL_VERSION}`,
      timeoutMs,
      tls: certificate ? { certificate, whose: "the certificate it announced" } : undefined,
    });
    // A connection made after a cancel is closed, not leaked.
    connecting.then((late) => signal?.aborted && late.close(), () => {});
    // Ctrl-C in the admin shell ends the probe at once, whichever step it is at.
    using peer = await abortable(connecting, signal);
    const pingStarted = performance.now();
    const { username } = await abortable(peer.call("ping", {}), signal);
    const rttMs = performance.now() - pingStarted;
    return {
      answered: true,
      rttMs,
      username,
      detail: `answered in ${(performance.now() - started).toFixed(1)} ms including connect`,
    };
  } catch (error) {
    const detail = signal?.aborted ? "cancelled" : toShoalError(error).message;
    return { answered: false, rttMs: null, username: null, detail };
  }
}

/** Everything `ping <peer>` reports. */
export interface PingReport {
  peer: PeerRecord;
  address: string;
  os: OsPingResult;
  probe: ProbeResult;
}

/** Pings a peer both ways: the OS `ping` to its host, and a protocol ping to its port. */
export async function pingPeer(
  store: TrackerStore,
  name: string,
  signal?: AbortSignal,
): Promise<PingReport> {
  const peer = await resolvePeer(store, name);
  const [os, probe] = await Promise.all([
    osPing(peer.host, 2, signal),
    probePeer(peer.host, peer.port, peer.certificate, 3000, signal),
  ]);
  signal?.throwIfAborted();
  return { peer, address: formatAddress(peer), os, probe };
}

/** What a peer has published. */
export async function discover(
  store: TrackerStore,
  name: string,
): Promise<{ peer: PeerRecord | null; files: FileListing[] }> {
  const user = await store.getUser(name);
  if (user) {
    return { peer: await store.getPeer(user.username), files: await store.filesOf(user.username) };
  }
  const peer = await resolvePeer(store, name);
  return { peer, files: await store.filesOf(peer.username) };
}
