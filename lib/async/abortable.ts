/**
 * Settles as `promise` does, or rejects with `signal`'s reason as soon as it
 * aborts (modelled on denoland/std's `async/abortable.ts`). The listener is
 * removed however the wait ends. A rejection of `promise` after the abort is
 * caught, never left unhandled.
 *
 * @example
 * ```ts
 * const reply = await abortable(client.call("ping", {}), signal);
 * ```
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const abort = () => {
    promise.catch(() => {});
    reject(signal.reason);
  };
  signal.addEventListener("abort", abort, { once: true });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener("abort", abort));
}
