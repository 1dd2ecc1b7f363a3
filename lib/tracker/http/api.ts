/**
 * The JSON API under /api/v1 (its routes are listed in the README's HTTP section):
 * read-only views of the store and the event feed, and a peer's ping. Every
 * route needs an admin (`requireAdmin`).
 */
import { type Context, Hono } from "hono";
import { formatAddress } from "../../protocol/address.ts";
import { ShoalError } from "../../protocol/errors.ts";
import { SHOAL_VERSION } from "../../version.ts";
import { pingPeer } from "../admin.ts";
import { type AccountSummary, type FileListing, isSharedStore } from "../store.ts";
import { toWireListing } from "../tracker.ts";
import { requireAdmin } from "./auth.ts";
import { apiError, type HttpDeps, type HttpEnv } from "./context.ts";
import { addEventRoutes } from "./event_stream.ts";
import { type History, trackerHistory } from "./history.ts";

/** The most shares one /api/v1/shares answer lists. */
export const MAX_SHARES_PER_PAGE = 1000;

/** A peer as the API lists it. */
function peerJson(account: AccountSummary) {
  return {
    username: account.username,
    online: account.online,
    address: account.online && account.host !== null && account.port !== null
      ? formatAddress({ host: account.host, port: account.port })
      : null,
    lastSeen: account.lastSeen,
    shares: account.shares,
  };
}

/** A share as the API lists it (the protocol's listing). */
const shareJson = (file: FileListing) => toWireListing(file);

/** A whole number query parameter within [1, max], or `fallback`. */
function limitOf(c: Context<HttpEnv>, fallback: number, max: number): number | null {
  const text = c.req.query("limit");
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1) return null;
  return Math.min(Number(text), max);
}

/** Builds the /api/v1 router. */
export function apiRoutes(deps: HttpDeps, history: History): Hono<HttpEnv> {
  const api = new Hono<HttpEnv>();
  api.use("*", requireAdmin(deps));
  const { store } = deps;

  api.get("/session", (c) => {
    const caller = c.get("caller")!;
    return c.json({ username: caller.username, csrfToken: caller.session?.csrfToken ?? null });
  });

  api.get("/summary", async (c) => {
    const stats = await store.stats();
    return c.json({
      peersOnline: stats.peersOnline,
      peers: stats.peers,
      accounts: stats.accounts,
      shares: stats.shares,
      bytesPublished: stats.bytesPublished,
      startedAt: deps.startedAt.toISOString(),
      version: SHOAL_VERSION,
      // Several processes share the store: the event feed (in memory) is this process's.
      sharedStore: isSharedStore(store),
    });
  });

  api.get("/history", async (c) => c.json({ minutes: await trackerHistory(history, store) }));

  api.get("/peers", async (c) => {
    const accounts = await store.listAccounts();
    return c.json({ peers: accounts.map(peerJson) });
  });

  api.get("/peers/:user", async (c) => {
    const name = c.req.param("user");
    const user = await store.getUser(name);
    if (!user) return apiError(c, 404, "NOT_FOUND", `no account named "${name}"`);
    const [peer, files] = await Promise.all([
      store.getPeer(user.username),
      store.filesOf(user.username),
    ]);
    return c.json({
      peer: {
        username: user.username,
        online: peer?.online ?? false,
        address: peer?.online ? formatAddress(peer) : null,
        lastSeen: peer?.since ?? user.createdAt,
        shares: files.length,
      },
      shares: files.map(shareJson),
    });
  });

  api.get("/shares", async (c) => {
    const limit = limitOf(c, 100, MAX_SHARES_PER_PAGE);
    if (limit === null) {
      return apiError(c, 400, "INVALID_INPUT", "limit: expected a whole number above 0");
    }
    const text = c.req.query("q") ?? "";
    const [files, total] = await Promise.all([
      store.searchFiles(text, limit),
      store.countSearch(text),
    ]);
    return c.json({ shares: files.map(shareJson), total });
  });

  api.post("/peers/:user/ping", async (c) => {
    const name = c.req.param("user");
    try {
      // Not the request's signal: reading it makes Deno.serve warn, and a ping ends within 3 s.
      const report = await pingPeer(store, name);
      deps.events.emit("admin", c.get("caller")!.username, {
        action: "ping",
        target: report.peer.username,
        detail: report.probe.answered ? "answered" : "no answer",
      });
      return c.json({
        os: {
          ok: report.os.reachable,
          rttMs: report.os.rttMs,
          error: report.os.reachable ? null : report.os.detail,
        },
        probe: {
          ok: report.probe.answered,
          rttMs: report.probe.rttMs,
          error: report.probe.answered ? null : report.probe.detail,
        },
      });
    } catch (error) {
      if (
        error instanceof ShoalError && (error.code === "NOT_FOUND" || error.code === "AMBIGUOUS")
      ) {
        return apiError(c, 404, "NOT_FOUND", error.message);
      }
      throw error;
    }
  });

  addEventRoutes(api, deps);
  return api;
}
