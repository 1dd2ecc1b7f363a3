import assert from "node:assert/strict";
import { join } from "node:path";
import { formatAddress } from "../../../lib/protocol/address.ts";
import { login, register } from "../../../lib/peer/account.ts";
import { PeerHome } from "../../../lib/peer/home.ts";
import type { TrackerEndpoint } from "../../../lib/peer/tracker_link.ts";
import { startTestOperator } from "../../helpers/operator.ts";
import { servePeer } from "../../helpers/local_peers.ts";
import { tempDir } from "../../helpers/processes.ts";

Deno.test("API - a real peer coming online shows on the event stream, and its ping gets both answers", async () => {
  await using dir = await tempDir("shoal-live-peer-");
  await using op = await startTestOperator();
  const tracker = formatAddress(op.running.address);
  {
    using home = PeerHome.open(join(dir.path, "carol"));
    const endpoint: TrackerEndpoint = {
      addresses: [op.running.address],
      plaintext: true,
      notice: () => {},
    };
    await register(home, endpoint, "carol", "carol-password");
    await login(home, endpoint, "carol", "carol-password");
  }
  const alice = await op.loggedIn("alice");
  const stream = await alice.fetch("/api/v1/events/stream");
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  await using _carol = await servePeer(join(dir.path, "carol"), tracker, { plaintext: true });
  let text = "";
  for (let i = 0; i < 50 && !/"type":"peer\.online"/.test(text); i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  assert.match(text, /"type":"peer\.online","user":"carol","address":"127\.0\.0\.1:\d+"/);

  const { status, body } = await alice.json("/api/v1/peers/carol/ping", {
    method: "POST",
    headers: { "X-CSRF-Token": await alice.csrfToken() },
  });
  assert.equal(status, 200);
  assert.equal(body.probe.ok, true, JSON.stringify(body));
  assert.equal(typeof body.probe.rttMs, "number");
  assert.equal(body.probe.error, null);
  const peers = await alice.json("/api/v1/peers");
  const carol = peers.body.peers.find((p: { username: string }) => p.username === "carol");
  assert.equal(carol.online, true);
});
