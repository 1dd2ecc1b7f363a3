/**
 * Waits `ms` milliseconds. An abort of `signal` ends the wait at once, clears
 * the timer and rejects with the signal's reason, as denoland/std's
 * `async/delay.ts` does, so a stopped task never leaves a timer behind.
 *
 * @example
 * ```ts
 * await delay(500, { signal: stop.signal });
 * ```
 */
export function delay(ms: number, options: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts first; never rejects.
 * For loops that pause between rounds and stop when told: the answer says
 * whether to go on.
 *
 * @returns true when the whole time passed, false when `signal` aborted (before or during it).
 *
 * @example
 * ```ts
 * while (await sleep(heartbeatMs, stop.signal)) await beat();
 * ```
 */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, { signal });
    return true;
  } catch {
    return false;
  }
}
