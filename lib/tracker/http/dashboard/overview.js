// The overview: totals, peers online and activity per minute over the last hour (uPlot, served by
// the tracker), and the live event feed. Every event makes the totals and charts load again.
import { agoElement, api, el, formatBytes, live, reloader, startPage } from "./common.js";

startPage();

const FEED_LIMIT = 200;
/** The y axes count whole things: ticks at whole steps only. */
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
/** Events by sequence number, newest last once sorted. */
const events = new Map();

function cssColor(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Share names by content id, from the publish events seen, to name a ticket's content. */
const names = new Map();

/** A content id as its first 12 hex digits, after the share's name when one is known. */
function content(contentId) {
  const short = String(contentId ?? "").slice(0, 12);
  const name = names.get(contentId);
  return name === undefined ? short : `"${name}" (${short})`;
}

/** What an event says, in words, after its type and user: "published "notes" (2.9 MiB, …)". */
function details(event) {
  switch (event.type) {
    case "start":
      return `version ${event.version}, listening on ${event.address}`;
    case "peer.online":
      return `serving at ${event.address}`;
    case "peer.offline":
      return `reason: ${event.reason}`;
    case "login.ok":
      return `from ${event.address} (${event.via})`;
    case "login.failed":
      return `from ${event.address} (${event.via}): ${event.reason}`;
    case "register":
      return `new account, from ${event.address}`;
    case "unregister":
      return "deleted the account and its shares";
    case "publish":
      return `published "${event.name}" (${formatBytes(event.size)}, ${
        String(event.contentId).slice(0, 12)
      })${event.replaced ? ", replacing what was under that name" : ""}`;
    case "unpublish":
      return `unpublished "${event.name}"`;
    case "ticket":
      return `may download ${content(event.contentId)} from ${event.for}; ${event.sources} ${
        event.sources === 1 ? "source" : "sources"
      } online`;
    case "admin":
      if (event.action === "ping") {
        return `pinged ${event.target}${event.detail ? `: ${event.detail}` : ""}`;
      }
      return [event.action, event.target, event.detail].filter((part) => part).join(" · ");
  }
  const parts = [];
  for (const [key, value] of Object.entries(event)) {
    if (["seq", "time", "type", "user"].includes(key) || value === null || value === undefined) {
      continue;
    }
    parts.push(`${key} ${typeof value === "object" ? JSON.stringify(value) : String(value)}`);
  }
  return parts.join(" · ");
}

function drawFeed() {
  const list = document.getElementById("feed");
  const newest = [...events.values()].sort((a, b) => b.seq - a.seq).slice(0, FEED_LIMIT);
  for (const event of events.values()) {
    if (!newest.includes(event)) events.delete(event.seq);
  }
  if (newest.length === 0) {
    list.replaceChildren(
      el("li", {
        className: "meta",
        text: "No events yet. Logins, peers coming online and going offline, publishes and " +
          "download tickets show here as they happen.",
      }),
    );
    return;
  }
  list.replaceChildren(
    ...newest.map((event) =>
      el(
        "li",
        { data: { seq: event.seq, type: event.type } },
        agoElement(event.time),
        el("span", { className: "type", data: { type: event.type }, text: event.type }),
        event.user === null || event.user === undefined
          ? null
          : el("span", { className: "user", text: event.user }),
        el("span", { className: "details", text: details(event) }),
      )
    ),
  );
}

function addEvent(event) {
  if (typeof event?.seq !== "number" || events.has(event.seq)) return false;
  events.set(event.seq, event);
  if (event.type === "publish") names.set(event.contentId, event.name);
  return true;
}

function setStat(name, value, text = String(value)) {
  const node = document.getElementById(`stat-${name}`);
  node.textContent = text;
  node.dataset.value = String(value);
  node.title = String(value);
}

/** A uPlot chart of the last hour in `container`, resized with it. */
function chart(container, series) {
  // Counts per minute: a step per minute reads truer than lines between the points.
  const stepped = globalThis.uPlot.paths.stepped({ align: 1 });
  series = series.map((line) => ({ paths: stepped, points: { show: false }, ...line }));
  const axis = {
    stroke: cssColor("--muted", "#666"),
    grid: { stroke: cssColor("--line", "#ddd") },
  };
  const plot = new globalThis.uPlot(
    {
      width: Math.max(container.clientWidth, 200),
      height: 220,
      series: [{}, ...series],
      axes: [axis, { ...axis, size: 40, incrs: COUNT_STEPS }],
      scales: { y: { range: (_, __, max) => [0, Math.max(1, Math.ceil(max * 1.1))] } },
      legend: { live: false },
    },
    [[], ...series.map(() => [])],
    container,
  );
  new ResizeObserver(() =>
    plot.setSize({ width: Math.max(container.clientWidth, 200), height: 220 })
  )
    .observe(container);
  return plot;
}

let onlineChart = null;
let activityChart = null;

/** Draws the charts; minutes that ended before `startedAt` (this tracker was not running) are gaps. */
function drawCharts(minutes, startedAt) {
  if (!globalThis.uPlot) return;
  const ok = cssColor("--ok", "#1a7f37");
  onlineChart ??= chart(document.getElementById("chart-online"), [
    { label: "peers online", stroke: ok, fill: `${ok}22`, width: 2 },
  ]);
  activityChart ??= chart(document.getElementById("chart-activity"), [
    // Several counts are often equal (one login, one ticket): dashes keep a line drawn over
    // another visible, and the legend gives each one's total over the hour.
    { label: "publishes", stroke: cssColor("--accent", "#1f6feb"), width: 2 },
    { label: "logins", stroke: ok, width: 2, dash: [8, 4] },
    { label: "failed logins", stroke: cssColor("--bad", "#cf222e"), width: 2, dash: [3, 3] },
    { label: "tickets", stroke: "#b35900", width: 2, dash: [12, 3, 2, 3] },
  ]);
  // Each minute's count holds until the next minute: one more point, a minute after the last,
  // draws the current minute's step instead of a bare edge.
  const times = minutes.map((minute) => Date.parse(minute.time) / 1000);
  if (times.length > 0) times.push(times[times.length - 1] + 60);
  // Not zero: nobody counted then. A restarted tracker must not claim nobody was online.
  const started = Date.parse(startedAt);
  const before = (minute) => Date.parse(minute.time) + 60_000 <= started;
  const column = (name) => {
    const values = minutes.map((minute) => before(minute) ? null : minute[name]);
    if (values.length > 0) values.push(values[values.length - 1]);
    return values;
  };
  onlineChart.setData([times, column("peersOnline")]);
  // The legend says each series' total over the hour: "logins 2".
  const columns = { publishes: "publishes", logins: "logins" };
  Object.assign(columns, { "failed logins": "loginsFailed", tickets: "tickets" });
  for (const label of activityChart.root.querySelectorAll(".u-legend .u-label")) {
    label.dataset.title ??= label.textContent;
    const name = columns[label.dataset.title];
    if (name) {
      label.textContent = `${label.dataset.title} ${
        minutes.reduce((sum, minute) => sum + minute[name], 0)
      }`;
    }
  }
  activityChart.setData([
    times,
    column("publishes"),
    column("logins"),
    column("loginsFailed"),
    column("tickets"),
  ]);
}

async function loadTotals() {
  const [summary, history] = await Promise.all([
    api("/api/v1/summary"),
    api("/api/v1/history"),
  ]);
  for (const name of ["peersOnline", "peers", "accounts", "shares"]) setStat(name, summary[name]);
  setStat("bytesPublished", summary.bytesPublished, formatBytes(summary.bytesPublished));
  const next = document.getElementById("next-step");
  next.hidden = summary.peersOnline > 0;
  next.textContent = summary.peersOnline > 0
    ? ""
    : summary.shares === 0
    ? "No peer is online and nothing is published yet. On each machine: " +
      "`deno task peer register NAME`, `login NAME`, `publish NAME FILE`, then `serve` " +
      "(a peer is online while it serves)."
    : "No peer is online: a peer is online while it runs `deno task peer serve` or the " +
      "interactive shell. The Peers page says when each was last seen.";
  const started = document.getElementById("started");
  started.replaceChildren(`tracker ${summary.version}, started `, agoElement(summary.startedAt));
  const minutes = history.minutes ?? [];
  const sum = (name) => minutes.reduce((total, minute) => total + minute[name], 0);
  const totals = document.getElementById("activity-totals");
  const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  totals.textContent = `last hour: ${count(sum("publishes"), "publish", "publishes")}, ` +
    `${count(sum("logins"), "login", "logins")} and ` +
    `${count(sum("loginsFailed"), "failed login", "failed logins")}, ` +
    `${count(sum("tickets"), "download ticket", "download tickets")}`;
  for (const name of ["publishes", "logins", "loginsFailed", "tickets"]) {
    totals.dataset[name] = String(sum(name));
  }
  document.getElementById("feed-scope").hidden = !summary.sharedStore;
  drawCharts(minutes, summary.startedAt);
}

/** The tracker's last 100 events; `fresh` forgets the ones shown (a restarted tracker counts anew). */
function loadEvents(fresh = false) {
  api("/api/v1/events?limit=100").then(({ events: list }) => {
    if (fresh) events.clear();
    for (const event of list ?? []) addEvent(event);
    drawFeed();
  }).catch(() => {});
}

const reloadTotals = reloader(loadTotals, 1000);
live((event) => {
  if (addEvent(event)) drawFeed();
  reloadTotals();
}, () => {
  reloadTotals();
  loadEvents(true);
});
loadEvents();
// Minutes roll over without any event.
setInterval(() => reloadTotals(), 30_000);
// uPlot loads as a deferred classic script; draw once it is there if totals came first.
addEventListener("load", () => reloadTotals());
