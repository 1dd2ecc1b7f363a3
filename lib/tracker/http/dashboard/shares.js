// The shares page: every published share with its owner, searched by name as you type (the search
// is in the address, so a search can be bookmarked). Share and peer events make it load again.
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
import { sizeCell, typeText } from "./shares_table.js";

startPage();

const LIMIT = 500;
const input = document.getElementById("search");
input.value = new URLSearchParams(location.search).get("q") ?? "";

/** Only the answer to the newest search is drawn. */
let asked = 0;

async function load() {
  const q = input.value.trim();
  const mine = ++asked;
  const params = new URLSearchParams({ limit: String(LIMIT) });
  if (q !== "") params.set("q", q);
  const { shares, total } = await api(`/api/v1/shares?${params}`);
  if (mine !== asked) return;
  const count = document.getElementById("share-count");
  const what = q === "" ? "" : ` matching “${q}”`;
  count.textContent = shares.length < total
    ? `showing ${shares.length} of ${total} shares${what}`
    : `${total} ${total === 1 ? "share" : "shares"}${what}`;
  count.dataset.total = String(total);
  count.dataset.shown = String(shares.length);
  fillTable(
    document.getElementById("shares"),
    shares,
    (share) =>
      el(
        "tr",
        { data: { name: share.name, owner: share.owner } },
        cell("Name", share.name),
        cell("Owner", peerLink(share.owner)),
        cell("Type", typeText(share)),
        sizeCell(share),
        cell(
          "Status",
          el(
            "span",
            {},
            statusElement(share.online),
            share.address
              ? el("span", { className: "mono meta", text: ` ${share.address}` })
              : null,
          ),
        ),
        cell("Published", agoElement(share.publishedAt)),
      ),
    q === ""
      ? "Nothing is published yet: a peer shares a file with `deno task peer publish NAME FILE`."
      : `No share's name contains "${q}".`,
  );
}

const reload = reloader(load, 500);
input.addEventListener("input", () => {
  const url = new URL(location.href);
  if (input.value.trim() === "") url.searchParams.delete("q");
  else url.searchParams.set("q", input.value.trim());
  history.replaceState(null, "", url);
  // Typing is answered sooner than events are.
  reload(150);
});
document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  reload(0);
});
live((event) => {
  if (PEER_EVENTS.has(event.type)) reload();
}, () => reload());
setInterval(() => reload(), 30_000);
