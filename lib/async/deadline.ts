import { abortable } from "./abortable.ts";

/**
 * What {@link deadline} rejects with when time runs out. The toolkit sits
 * below every layer, so it has no error codes of its own: `toShoalError`
 * reads this as `TIMEOUT`.
 */
export class DeadlineError extends Error {
  override name = "DeadlineError";
}

/** Options of {@link deadline}. */
export interface DeadlineOptions {
  /**
   * What is awaited, as the error message names it ("`what` took over `ms` ms").
   * @default {"the operation"}
   */
  what?: string;
  /** Stops waiting at once, rejecting with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Settles as `promise` does, or rejects with a {@link DeadlineError}
 * when it takes longer than `ms` milliseconds (modelled on denoland/std's
 * `async/deadline.ts`). The timer is cleared however the wait ends. The
 * promise itself is not cancelled: a caller that owns a resource it may still
 * yield (a connection, say) closes it when it comes late.
 *
 * @example
 * ```ts
 * const conn = await deadline(Deno.connect({ port }), 5_000, { what: "connecting" });
 * ```
 */
export async function deadline<T>(
  promise: Promise<T>,
  ms: number,
  options: DeadlineOptions = {},
): Promise<T> {
  const { what = "the operation", signal } = options;
  const expired = new AbortController();
  const timer = setTimeout(
    () => expired.abort(new DeadlineError(`${what} took over ${ms} ms`)),
    ms,
  );
  try {
    return await abortable(
      promise,
      signal ? AbortSignal.any([signal, expired.signal]) : expired.signal,
    );
  } finally {
    clearTimeout(timer);
  }
}
