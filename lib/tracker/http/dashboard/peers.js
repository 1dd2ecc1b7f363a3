// The peers page: every account, online first; a Ping button per peer. Peer and share
// events make it load again.
import {
  api,
  cell,
  el,
  fillTable,
  lastSeenElement,
  live,
  PEER_EVENTS,
  peerLink,
  reloader,
  startPage,
  statusElement,
} from "./common.js";
import { pingControl } from "./ping.js";

startPage();

async function load() {
  const { peers } = await api("/api/v1/peers");
  peers.sort((a, b) => Number(b.online) - Number(a.online) || a.username.localeCompare(b.username));
  const online = peers.filter((peer) => peer.online).length;
  const count = document.getElementById("peer-count");
  count.textContent = `${online} of ${peers.length} online` +
    (peers.length > 0 && online === 0
      ? ": a peer is online while it runs `deno task peer serve` or the interactive shell"
      : "");
  count.dataset.online = String(online);
  count.dataset.total = String(peers.length);
  fillTable(
    document.getElementById("peers"),
    peers,
    (peer) =>
      el(
        "tr",
        { data: { user: peer.username, online: peer.online } },
        cell("Peer", peerLink(peer.username)),
        cell("Status", statusElement(peer.online)),
        cell("Address", el("span", { className: "mono", text: peer.address ?? "–" })),
        cell("Last seen", lastSeenElement(peer)),
        cell("Shares", String(peer.shares), "num shares"),
        cell("Ping", pingControl(peer.username)),
      ),
    "No accounts yet. A peer signs up with `deno task peer register NAME`; it shows here, " +
      "online while it serves.",
  );
}

const reload = reloader(load, 1000);
live((event) => {
  if (PEER_EVENTS.has(event.type)) reload();
}, () => reload());
setInterval(() => reload(), 30_000);
