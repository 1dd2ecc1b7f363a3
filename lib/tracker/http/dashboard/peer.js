// A peer's page: its status, a Ping button, and its shares. Its events make it load again.
import {
  agoElement,
  api,
  cell,
  el,
  fillTable,
  lastSeenElement,
  live,
  PEER_EVENTS,
  reloader,
  startPage,
  statusElement,
} from "./common.js";
import { pingControl } from "./ping.js";
import { sizeCell, typeText } from "./shares_table.js";

startPage();

const username = nameFromPath(location.pathname.replace(/^\/peers\//, ""));

/** The peer's name from the address; a malformed escape is taken as typed. */
function nameFromPath(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
document.getElementById("peer-name").textContent = username;
document.title = `${username} · Shoal tracker`;
const ping = pingControl(username);
document.getElementById("peer-ping").replaceChildren(ping);

async function load() {
  let answer;
  try {
    answer = await api(`/api/v1/peers/${encodeURIComponent(username)}`);
  } catch (error) {
    if (error?.status === 404) {
      document.getElementById("peer-facts").hidden = true;
      fillTable(document.getElementById("shares"), [], () => null, "–");
      throw new Error(`No account is named ${username}: the Peers page lists every account.`);
    }
    throw error;
  }
  const { peer, shares } = answer;
  document.getElementById("peer-facts").hidden = false;
  document.getElementById("peer-status").replaceChildren(statusElement(peer.online));
  document.getElementById("peer-address").replaceChildren(
    el("span", { className: "mono", text: peer.address ?? "–" }),
  );
  document.getElementById("peer-lastSeen").replaceChildren(
    lastSeenElement(peer),
  );
  const count = document.getElementById("peer-shares");
  count.textContent = String(peer.shares);
  count.dataset.value = String(peer.shares);
  ping.refresh();
  fillTable(
    document.getElementById("shares"),
    shares,
    (share) =>
      el(
        "tr",
        { data: { name: share.name } },
        cell("Name", share.name),
        cell("Type", typeText(share)),
        sizeCell(share),
        cell(
          "Content",
          el("span", {
            className: "mono",
            title: share.contentId,
            text: share.contentId.slice(0, 12),
          }),
        ),
        cell("Published", agoElement(share.publishedAt)),
      ),
    `${username} has published nothing (on their machine: deno task peer publish NAME FILE).`,
  );
}

const reload = reloader(load, 500);
live((event) => {
  if (PEER_EVENTS.has(event.type) && event.user?.toLowerCase() === username.toLowerCase()) {
    reload();
  }
}, () => reload());
setInterval(() => reload(), 30_000);
