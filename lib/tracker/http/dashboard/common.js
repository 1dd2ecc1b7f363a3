// What every dashboard page shares: calls to /api/v1, the live event stream, the header, and
// building elements. Text from the network only ever goes in through textContent or attributes,
// never as HTML.

/** An element with `props` (`text`, `className`, `title`, `href`, `data` or any attribute) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key === "data") {
      for (const [name, item] of Object.entries(value)) node.dataset[name] = String(item);
    } else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

/** A failed API call: its HTTP status and the error code from the body. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GETs (or sends `init`) to an /api/v1 path and returns the JSON; no session sends the page to /login. */
export async function api(path, init = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...init,
    headers: { accept: "application/json", ...init.headers },
  });
  if (response.status === 401) {
    // A session that ended (the tracker restarted, or it idled out) says so on the login page.
    location.assign("/login?error=SESSION_ENDED");
    throw new ApiError(401, "UNAUTHORIZED", "not logged in");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // A body that is not JSON is reported by its status below.
  }
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? `HTTP ${response.status}`,
      error.message ?? `${path} answered ${response.status}`,
    );
  }
  return body;
}

let currentSession = null;

/** The logged-in admin and the CSRF token, fetched once per page. */
export function session() {
  currentSession ??= api("/api/v1/session");
  return currentSession;
}

/** POSTs to `path` with the session's CSRF token. */
export async function post(path) {
  const { csrfToken } = await session();
  return await api(path, { method: "POST", headers: { "x-csrf-token": csrfToken } });
}

/** Shows `error` in the page's error line (null hides it). */
export function showError(error) {
  const line = document.getElementById("error");
  if (!line) return;
  line.hidden = error === null;
  line.textContent = error === null ? "" : `${error.message ?? error}`;
}

/**
 * Runs `load` now and again whenever asked, at most one at a time: asks
 * that come while it runs, or within `delayMs`, are one more run. Events
 * come in bursts; this keeps a busy tracker from being asked once per event.
 */
export function reloader(load, delayMs = 250) {
  let running = false;
  let again = false;
  let timer = null;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await load();
      showError(null);
    } catch (error) {
      if (error?.status !== 401) showError(error);
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  /** Asks for a run in `ms` (the reloader's delay unless given), or with the one already asked. */
  const schedule = (ms = delayMs) => {
    timer ??= setTimeout(run, ms);
  };
  run();
  return schedule;
}

/** Says across the top of the page that the tracker is not answering (null: it is again). */
function showConnection(since) {
  const banner = document.getElementById("connection");
  if (!banner) return;
  banner.hidden = since === null;
  banner.textContent = since === null
    ? ""
    : `The tracker is not answering since ${since.toLocaleTimeString()}: what this page shows is from then. It reconnects by itself and brings the page up to date.`;
}

/**
 * Calls `onEvent` with every event of the tracker's live feed, and
 * `onReconnect` when the stream is back after a drop (the page loads its data
 * again: events may have been missed while the tracker was away). The header
 * shows whether the stream is up, and a banner says when the tracker is gone.
 * EventSource reconnects by itself and sends the last id it saw.
 */
export function live(onEvent, onReconnect = () => {}) {
  const badge = document.getElementById("live");
  const state = (name, text) => {
    if (!badge) return;
    badge.dataset.state = name;
    badge.textContent = text;
  };
  let downSince = null;
  let bannerTimer = null;
  const source = new EventSource("/api/v1/events/stream");
  // A browser allows six connections to a host: a page left behind must not keep its stream.
  addEventListener("pagehide", () => source.close());
  source.addEventListener("open", () => {
    state("live", "live");
    clearTimeout(bannerTimer);
    bannerTimer = null;
    if (downSince !== null) {
      downSince = null;
      showConnection(null);
      onReconnect();
    }
  });
  source.addEventListener("error", () => {
    state("down", source.readyState === EventSource.CLOSED ? "offline" : "reconnecting…");
    if (downSince === null) {
      downSince = new Date();
      // A blip (the stream's own reconnect) is not worth a banner; a tracker gone for 3 s is.
      bannerTimer = setTimeout(() => showConnection(downSince), 3000);
    }
    // A stream refused ends here for good. For want of a session: checking it sends us to /login.
    // For anything else (a proxy's 502, say): try the whole page again in a while.
    if (source.readyState === EventSource.CLOSED) {
      api("/api/v1/session").then(
        () => setTimeout(() => location.reload(), 10_000),
        (error) => {
          if (error?.status !== 401) setTimeout(() => location.reload(), 10_000);
        },
      );
    }
  });
  source.addEventListener("shoal", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    onEvent(event);
  });
  return source;
}

/** What changes the list of peers, their presence, addresses or share counts. */
export const PEER_EVENTS = new Set([
  "peer.online",
  "peer.offline",
  "register",
  "unregister",
  "publish",
  "unpublish",
]);

/** Sets up the header: the current page in the menu, who is logged in, and the log-out button. */
export function startPage() {
  setInterval(tickTimes, 10_000);
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === page || (page === "peer" && link.dataset.nav === "peers");
    if (current) link.setAttribute("aria-current", "page");
  }
  session().then(
    ({ username }) => {
      const who = document.getElementById("who");
      if (who) who.textContent = username;
    },
    (error) => {
      if (error?.status !== 401) showError(error);
    },
  );
  document.getElementById("logout")?.addEventListener("click", async () => {
    try {
      const { csrfToken } = await session();
      await fetch("/logout", {
        method: "POST",
        credentials: "same-origin",
        headers: { "x-csrf-token": csrfToken },
      });
    } finally {
      location.assign("/login");
    }
  });
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes) {
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** An ISO time as "12 s ago", "5 min ago", "3 h ago" or a date. */
export function formatAgo(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "–";
  const seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(then).toLocaleDateString();
}

/** A `<time>` showing how long ago `iso` was, the full time on hover. */
export function agoElement(iso) {
  const then = Date.parse(iso);
  return el("time", {
    datetime: iso,
    title: Number.isNaN(then) ? undefined : new Date(then).toLocaleString(),
    text: formatAgo(iso),
  });
}

/**
 * When a peer was last seen: "now" while it is online (its online-since time on hover), else how
 * long ago.
 */
export function lastSeenElement(peer) {
  if (!peer.lastSeen) return "–";
  if (!peer.online) return agoElement(peer.lastSeen);
  const since = Date.parse(peer.lastSeen);
  return el("time", {
    title: Number.isNaN(since) ? undefined : `online since ${new Date(since).toLocaleString()}`,
    text: "now",
  });
}

/** A round-trip time in milliseconds, to two significant decimals below 10 ms. */
export function formatRtt(ms) {
  return `${Number(ms).toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** The status cell's content: a dot and "online" or "offline". */
export function statusElement(online) {
  return el("span", {
    className: "status",
    data: { online: online === true },
    text: online ? "online" : "offline",
  });
}

/** A link to a peer's page. */
export function peerLink(username) {
  return el("a", { href: `/peers/${encodeURIComponent(username)}`, text: username });
}

/** A table cell labelled with its column (the label heads the cell at phone width). */
export function cell(label, content, className) {
  return el("td", { "data-label": label, className }, content);
}

/** What each table shows now, so that the same answer again leaves its rows alone. */
const shown = new WeakMap();

/**
 * Shows one row per item (built by `row`) in a table's body, or `empty`
 * across the table when there are none. An answer the same as the last one
 * changes nothing: a row being clicked, hovered or read stays where it is.
 */
export function fillTable(table, items, row, empty) {
  const signature = JSON.stringify([items, empty]);
  if (shown.get(table) === signature) return;
  shown.set(table, signature);
  const body = table.tBodies[0];
  if (items.length === 0) {
    const columns = table.tHead?.rows[0]?.cells.length ?? 1;
    body.replaceChildren(
      el("tr", {}, el("td", { className: "empty", colspan: columns, text: empty })),
    );
  } else body.replaceChildren(...items.map(row));
}

/** Brings every "… ago" on the page up to date, in place. */
function tickTimes() {
  for (const node of document.querySelectorAll("time[datetime]")) {
    node.textContent = formatAgo(node.getAttribute("datetime"));
  }
}
