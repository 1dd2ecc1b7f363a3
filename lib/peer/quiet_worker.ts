/**
 * Starting a worker whose module may fail to load (a compiled binary built
 * without it, a file gone since) without Deno printing "Uncaught (in
 * worker)" and a stack on stderr before the caller's own message. Deno's
 * worker thread prints that itself whenever a worker's main module fails to
 * load or throws as it runs, whatever the parent's `onerror` does (its
 * `preventDefault` only keeps the parent alive). So the main module is a
 * small bootstrap given inline, which cannot fail to load: it imports the
 * real module and, should that fail, says so in a message
 * ({@link WorkerLoadFailure}) and closes.
 */

/** The message a worker sends instead of running when its module failed to load. */
export interface WorkerLoadFailure {
  workerLoadFailed: string;
}

/** Whether a worker's message says its module failed to load. */
export function isLoadFailure(data: unknown): data is WorkerLoadFailure {
  return typeof data === "object" && data !== null && "workerLoadFailed" in data;
}

/**
 * The bootstrap of `module`: messages that come while it loads are kept and
 * handed to the `onmessage` it sets, in order.
 */
const bootstrap = (module: string) => `
const early = [];
self.onmessage = (event) => { early.push(event); };
try {
  await import(${JSON.stringify(module)});
  for (const event of early.splice(0)) self.onmessage?.(event);
} catch (error) {
  self.postMessage({ workerLoadFailed: String(error?.message ?? error) });
  self.close();
}
`;

/**
 * Starts a module worker running `module`. Should the module fail to load,
 * the worker's first message is a {@link WorkerLoadFailure}, and nothing is
 * printed.
 *
 * @example
 * ```ts
 * const worker = startWorker(new URL("./hash_worker.ts", import.meta.url).href);
 * worker.onmessage = (event) => isLoadFailure(event.data) ? fallBack() : use(event.data);
 * ```
 */
export function startWorker(module: string): Worker {
  return new Worker(`data:text/javascript,${encodeURIComponent(bootstrap(module))}`, {
    type: "module",
  });
}
