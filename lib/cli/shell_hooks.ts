/**
 * What the interactive shell lends to the peer's commands, in a module of
 * its own so that the program and the commands it runs both depend on it
 * rather than on each other.
 */

/** What the shell lends to the commands it runs. */
export interface ShellHooks {
  /** Called after login so the shell starts serving. */
  onLogin(): Promise<void>;
  /** Called before logout and unregister so the shell stops serving. */
  onLogout(): Promise<void>;
  /** Where the shell serves, if it does. */
  servingAddress(): string | null;
  /** Aborts when the user presses Ctrl-C during the command. */
  signal: AbortSignal;
  /** Runs a download in the background; the shell announces how it ends. */
  startBackground(name: string, work: (signal: AbortSignal) => Promise<string>): void;
  /** Names of the downloads running in the background. */
  activeDownloads(): string[];
  /**
   * Stops a background download (its name in any case), keeping its partial
   * file, and waits a moment for it to stop; returns the one line that says
   * so (with what it kept), or undefined if none (or several) run by that name.
   */
  pauseDownload(name: string): Promise<string | undefined>;
}
