// The Ping button of the peers and peer pages: the tracker runs the OS ping of the peer's host and
// a protocol probe of its serving port, and the page shows both round-trip times.
import { el, formatRtt, post } from "./common.js";

/** Last results and pings in flight, by peer, so a re-rendered table keeps them. */
const results = new Map();
const pending = new Set();

function half(label, title, result) {
  if (result?.ok && typeof result.rttMs === "number") {
    return el("span", { className: "ok", title }, `${label} ${formatRtt(result.rttMs)}`);
  }
  return el("span", { className: "failed", title }, `${label}: ${result?.error ?? "failed"}`);
}

/**
 * What a ping answered, as one line: "OS ping 0.05 ms · peer process 1.20 ms" (the host answers;
 * the Shoal peer on it answers on its serving port).
 */
export function pingResult(result) {
  return el(
    "span",
    {
      className: "ping-result",
      data: { osOk: result.os?.ok === true, probeOk: result.probe?.ok === true },
    },
    half("OS ping", "the OS ping of the peer's host, run by the tracker", result.os),
    " · ",
    half(
      "peer process",
      "a protocol probe of the peer's serving port: the Shoal peer itself answers",
      result.probe,
    ),
  );
}

/** A Ping button for `username` and the place its result shows, kept across re-renders. */
export function pingControl(username) {
  const output = el("span", { className: "ping-output", "aria-live": "polite" });
  const button = el(
    "button",
    { type: "button", className: "ping", data: { user: username } },
    "Ping",
  );
  const show = () => {
    const result = results.get(username);
    if (pending.has(username)) {
      button.disabled = true;
      output.replaceChildren(el("span", { className: "ping-result", text: "pinging…" }));
    } else if (result instanceof Error) {
      output.replaceChildren(el("span", { className: "ping-result failed", text: result.message }));
    } else if (result) output.replaceChildren(pingResult(result));
  };
  button.addEventListener("click", async () => {
    pending.add(username);
    show();
    try {
      results.set(username, await post(`/api/v1/peers/${encodeURIComponent(username)}/ping`));
    } catch (error) {
      results.set(username, error instanceof Error ? error : new Error(String(error)));
    } finally {
      pending.delete(username);
      // The table may have been drawn again meanwhile: update whichever control is on the page now.
      for (const control of document.querySelectorAll(".ping-control")) {
        if (control.dataset.user === username) control.refresh();
      }
    }
  });
  const control = el(
    "span",
    { className: "ping-control", data: { user: username } },
    button,
    output,
  );
  control.refresh = () => {
    button.disabled = pending.has(username);
    show();
  };
  show();
  return control;
}
