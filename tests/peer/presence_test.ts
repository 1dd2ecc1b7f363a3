import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { parseAddress } from "../../lib/protocol/address.ts";
import { Presence, type PresenceOptions } from "../../lib/peer/presence.ts";
import type { TrackerEndpoint } from "../../lib/peer/tracker_link.ts";
import { startTestTracker, type TestTracker } from "../helpers/tracker.ts";
import { eventually } from "../helpers/eventually.ts";
import { join } from "node:path";
import { localPeer, startLocalTracker } from "../helpers/local_peers.ts";
import { tempDir } from "../helpers/processes.ts";

/** A peer home logged in as `username` on `running`, in a temporary folder. */
async function loggedInHome(running: TestTracker, username: string) {
  const dir = await Deno.makeTempDir({ prefix: "shoal-presence-" });
  const home = PeerHome.open(dir);
  const client = await running.login(username);
  const { token } = await client.call("login", { username, password: "correct horse battery" });
  home.saveSession({ username, token });
  return {
    home,
    async [Symbol.asyncDispose]() {
      home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * A started Presence of `home` through `tracker`, its log lines in `lines`;
 * being logged out fails the test unless `options` say otherwise. Disposing
 * it stops it.
 */
function startPresence(
  home: PeerHome,
  tracker: TrackerEndpoint,
  options: Partial<PresenceOptions> = {},
) {
  const lines: string[] = [];
  const presence = new Presence({
    tracker,
    home,
    port: 4000,
    onTicketKey: () => Promise.resolve(),
    log: (line) => lines.push(line),
    onLoggedOut: (error) => assert.fail(`logged out: ${error.message}`),
    ...options,
  });
  presence.start();
  return { lines, [Symbol.asyncDispose]: () => presence.stop() };
}

/** A plaintext endpoint of the in-process tracker `running`. */
const plaintextAt = (running: TestTracker): TrackerEndpoint => ({
  addresses: [running.address],
  plaintext: true,
  notice: () => {},
});

Deno.test("a serving peer the tracker's database lost is online again after its next heartbeat", async () => {
  await using running = await startTestTracker();
  await using alice = await loggedInHome(running, "alice");
  await using presence = startPresence(alice.home, plaintextAt(running), { heartbeatMs: 20 });
  await eventually(
    async () => (await running.store.getPeer("alice"))?.online === true,
    "alice is online",
  );
  await running.store.markAllPeersOffline();
  await eventually(
    async () => (await running.store.getPeer("alice"))?.online === true,
    "alice is back",
  );
  assert.equal(presence.lines.filter((line) => line.startsWith("online as alice")).length, 1);
});

Deno.test("a serving peer whose advertised host the tracker refuses stops and says why", async () => {
  await using running = await startTestTracker();
  await using mallory = await loggedInHome(running, "mallory");
  let stoppedWith: ShoalError | null = null;
  await using _presence = startPresence(mallory.home, plaintextAt(running), {
    advertise: "10.9.8.7",
    onLoggedOut: (error) => stoppedWith = error,
  });
  await eventually(() => stoppedWith !== null, "presence stops");
  const error = stoppedWith as ShoalError | null;
  assert.equal(error?.code, "INVALID_INPUT");
  assert.match(error?.message ?? "", /--allow-advertise/);
  assert.equal(await running.store.getPeer("mallory"), null);
});

Deno.test("a serving peer whose tracker cannot reach its database says so once, not 'cannot reach the tracker', and comes online when it is back", async () => {
  await using running = await startTestTracker();
  await using alice = await loggedInHome(running, "alice");
  const store = running.store;
  const setPeerOnline = store.setPeerOnline.bind(store);
  let down = true;
  store.setPeerOnline = (...args) =>
    down
      ? Promise.reject(new ShoalError("STORE_UNAVAILABLE", "the database is away"))
      : setPeerOnline(...args);
  await using presence = startPresence(alice.home, plaintextAt(running));
  const { lines } = presence;
  await eventually(() => lines.length > 0, "a first line");
  down = false;
  await eventually(
    () => lines.some((line) => line.startsWith("online as alice")),
    () => lines.join("\n"),
    { tries: 200, everyMs: 100 },
  );
  assert.deepEqual(
    lines.filter((line) => !line.startsWith("online as")),
    ["not online yet: the tracker cannot reach its database; retrying"],
  );
});

Deno.test("a serving peer with no tracker address answering says so once, without saying 'cannot reach' twice", async () => {
  await using running = await startTestTracker();
  await using alice = await loggedInHome(running, "alice");
  await using presence = startPresence(alice.home, {
    addresses: [parseAddress("127.0.0.1:1"), parseAddress("127.0.0.1:2")],
    plaintext: true,
    notice: () => {},
  });
  const { lines } = presence;
  await eventually(() => lines.length > 0, "a first line");
  assert.match(
    lines[0],
    /^cannot reach the tracker at any of its 2 addresses: 127\.0\.0\.1:1 \(connection refused\); 127\.0\.0\.1:2 \(connection refused\); retrying$/,
  );
});

Deno.test("a serving peer whose tracker comes back with another certificate says so once, with the command that fixes it", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(join(dir.path, "first"));
  await Deno.mkdir(join(dir.path, "impostor"));
  const first = await startLocalTracker(join(dir.path, "first"));
  using alice = await localPeer(dir.path, "alice", first.address);
  await using presence = startPresence(alice.home, alice.endpoint, { heartbeatMs: 20 });
  const { lines } = presence;
  await eventually(() => lines.some((line) => line.startsWith("online as alice")), "online");
  await first.stop();
  await eventually(() => lines.some((line) => line.startsWith("lost the tracker")), "lost");
  // Another tracker (another identity) where the first one was.
  await using _impostor = await startLocalTracker(join(dir.path, "impostor"), first.port);
  await eventually(
    () => lines.some((line) => line.startsWith("still not online")),
    "the refusal said",
  );
  const said = lines.filter((line) => line.startsWith("still not online"));
  assert.equal(said.length, 1);
  assert.match(said[0], /DIFFERENT certificate/);
  assert.match(said[0], /forget-tracker/);
});
