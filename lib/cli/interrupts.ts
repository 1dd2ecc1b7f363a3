/**
 * Ctrl-C (SIGINT) and SIGTERM for the length of one operation (a fetch, a
 * folder's publish): listened for while it runs, and no longer once it has
 * ended and said so, so that a process that runs many of them (the tests'
 * in-process CLI, anything that embeds the commands) does not gather
 * listeners, nor keep one that would act on an operation long over.
 */

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Removers of the listeners left by interrupted operations until the interruption is reported. */
const lingering = new Set<() => void>();

/** The listeners of one operation; see {@link listenForInterrupts}. */
export interface InterruptListeners {
  /**
   * Stops listening for the operation. After an interruption the listeners
   * stay, doing nothing, until {@link releaseInterrupts}: under `deno task`
   * one Ctrl-C arrives twice (from the terminal and forwarded by the task),
   * and a copy arriving with no listener would kill the process before it
   * says what it kept.
   */
  stop(interrupted: boolean): void;
}

/**
 * Calls `handler` on each Ctrl-C or SIGTERM until stopped.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * const listeners = listenForInterrupts(() => stop.abort());
 * try {
 *   await work(stop.signal);
 * } finally {
 *   listeners.stop(stop.signal.aborted);
 * }
 * ```
 */
export function listenForInterrupts(handler: () => void): InterruptListeners {
  let current = handler;
  const listener = () => current();
  for (const signal of SIGNALS) Deno.addSignalListener(signal, listener);
  const remove = () => {
    lingering.delete(remove);
    for (const signal of SIGNALS) Deno.removeSignalListener(signal, listener);
  };
  let stopped = false;
  return {
    stop(interrupted) {
      if (stopped) return;
      stopped = true;
      if (!interrupted) return remove();
      current = () => {};
      lingering.add(remove);
    },
  };
}

/** Removes the listeners interrupted operations left: called once the interruption is reported. */
export function releaseInterrupts(): void {
  for (const remove of [...lingering]) remove();
}
