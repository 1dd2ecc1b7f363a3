/**
 * The defaults both command lines show and the peer's modules fall back on,
 * in one place so that `--help`, the config file and the code agree.
 */

/** The port a tracker listens on, and the one a tracker address without a port means. */
export const DEFAULT_TRACKER_PORT = 5050;

/** The tracker a peer uses unless told otherwise (flag `--tracker`, config `tracker`). */
export const DEFAULT_TRACKER = `127.0.0.1:${DEFAULT_TRACKER_PORT}`;

/** Where a peer's `serve` listens unless told otherwise (flag `--host`, config `serve.host`). */
export const DEFAULT_SERVE_HOST = "0.0.0.0";

/** The port a tracker serves its HTTP side (dashboard, /metrics, /api/v1) on. */
export const DEFAULT_HTTP_PORT = 5080;
