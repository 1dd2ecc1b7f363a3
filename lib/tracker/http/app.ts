/**
 * The tracker's HTTP app (hono): security headers on every answer, then
 * /healthz, /metrics, the dashboard's login and logout, /api/v1, and the
 * dashboard's pages through {@link addPages}.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { toShoalError } from "../../protocol/errors.ts";
import type { TrackerMetrics } from "../metrics.ts";
import { apiRoutes } from "./api.ts";
import { identifyCaller, refuseCrossSite } from "./auth.ts";
import { apiError, type HttpDeps, type HttpEnv } from "./context.ts";
import type { History } from "./history.ts";
import { addLoginRoutes } from "./login.ts";
import { addPages } from "./pages.ts";
import { securityHeaders } from "./security_headers.ts";

/** The largest request body taken. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Builds the app over the tracker's parts. */
export function buildHttpApp(
  deps: HttpDeps,
  parts: { metrics: TrackerMetrics; history: History; warn?: (line: string) => void },
): Hono<HttpEnv> {
  const app = new Hono<HttpEnv>();
  app.use("*", securityHeaders());
  // Nothing the tracker takes by POST (a login form, a ping) is bigger than a few hundred bytes.
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        apiError(c, 413, "INVALID_INPUT", `a request body is at most ${MAX_BODY_BYTES} bytes`),
    }),
  );

  app.get("/healthz", async (c) => {
    try {
      await deps.store.ping();
      return c.json({ status: "ok", database: "ok" });
    } catch (error) {
      return c.json({ status: "error", database: toShoalError(error).message }, 503);
    }
  });

  app.get("/metrics", async (c) => {
    const text = await parts.metrics.scrape();
    return c.body(text, 200, { "Content-Type": parts.metrics.contentType });
  });

  app.use("*", refuseCrossSite());
  app.use("*", identifyCaller(deps));
  addLoginRoutes(app, deps);
  app.route("/api/v1", apiRoutes(deps, parts.history));
  addPages(app, deps);

  app.notFound((c) =>
    c.req.path.startsWith("/api/")
      ? apiError(c, 404, "NOT_FOUND", `no such API route: ${c.req.method} ${c.req.path}`)
      : c.text("not found", 404)
  );
  app.onError((error, c) => {
    parts.warn?.(`http: ${c.req.method} ${c.req.path}: ${toShoalError(error).message}`);
    return c.req.path.startsWith("/api/")
      ? apiError(c, 500, "INTERNAL", toShoalError(error).message)
      : c.text("internal error", 500);
  });
  return app;
}
