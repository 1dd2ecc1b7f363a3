/**
 * Counts the timers (`setTimeout`, `setInterval`) started and not yet fired
 * or cleared while it is in use, so a test can check that code cleans up its
 * timers on every path: Deno's test sanitizers no longer report leaked timers.
 * Timers started before it are not counted.
 *
 * @example
 * ```ts
 * using timers = trackTimers();
 * await swarm.run(list);
 * assert.equal(timers.pending, 0);
 * ```
 */
export function trackTimers(): { readonly pending: number } & Disposable {
  const real = {
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    clearTimeout: globalThis.clearTimeout,
    clearInterval: globalThis.clearInterval,
  };
  const pending = new Set<unknown>();
  globalThis.setTimeout =
    ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const id = real.setTimeout(
        (...given: unknown[]) => {
          pending.delete(id);
          callback(...given);
        },
        ms,
        ...args,
      );
      pending.add(id);
      return id;
    }) as typeof setTimeout;
  globalThis.setInterval =
    ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const id = real.setInterval(callback, ms, ...args);
      pending.add(id);
      return id;
    }) as typeof setInterval;
  const clear = (id: Parameters<typeof clearTimeout>[0]) => {
    if (id !== undefined) pending.delete(id);
    real.clearTimeout(id);
  };
  globalThis.clearTimeout = clear;
  globalThis.clearInterval = clear;
  return {
    get pending() {
      return pending.size;
    },
    [Symbol.dispose]() {
      Object.assign(globalThis, real);
    },
  };
}
