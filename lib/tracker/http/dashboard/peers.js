// The peers page: every peer that has served, online first; a Ping button per peer. Peer and share
// events make it load again.
import {
  agoElement,
  api,
  cell,
  el,
  fillTable,
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
  count.textContent = `${online} of ${peers.length} online`;
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
        cell("Last seen", peer.lastSeen ? agoElement(peer.lastSeen) : "–"),
        cell("Shares", String(peer.shares), "num shares"),
        cell("Ping", pingControl(peer.username)),
      ),
    "no peer has served yet",
  );
}

const reload = reloader(load, 1000);
live((event) => {
  if (PEER_EVENTS.has(event.type)) reload();
});
setInterval(() => reload(), 30_000);
