import { formatAddress } from "../protocol/address.ts";
import { type Serving, startServing } from "../peer/serve.ts";
import type { Command } from "commander";
import { buildPeerProgram, serveOptions } from "./peer_program.ts";
import { withUsageHints } from "./help.ts";
import type { ShellHooks } from "./shell_hooks.ts";
import { join } from "node:path";
import { toShoalError } from "../protocol/errors.ts";
import { escapeForTerminal } from "./output.ts";
import {
  type GlobalOptions,
  openContext,
  parsePort,
  parseRateFlag,
  parseSlotsFlag,
  type ServeFlags,
} from "./peer_context.ts";
import { runShell } from "./shell.ts";
import type { PeerConfig } from "../peer/config.ts";
import { asTyped, setInvocation } from "../invocation.ts";
import { BackgroundDownloads } from "./background_downloads.ts";
import { discoverTracker, useFound } from "./tracker_discovery.ts";
import { reachTracker } from "../peer/tracker_link.ts";

/**
 * The interactive peer: every command of the CLI, one per line, while the
 * peer serves its files for as long as the shell is open and logged in.
 */
export async function runPeerShell(
  globals: GlobalOptions,
  flags: ServeFlags,
  config: PeerConfig = {},
  trackerConfigured = true,
): Promise<void> {
  // Checked before the shell starts: serving starts only at a login, and a typo should not wait.
  const maxUploadRate = parseRateFlag("max-upload-rate", flags.maxUploadRate);
  const uploadSlots = parseSlotsFlag(flags.uploadSlots);
  const { tracker, home } = openContext(globals);
  const found = trackerConfigured
    ? undefined
    : await discoverTracker(home, tracker.plaintext, tracker.notice);
  if (found) {
    useFound(tracker, found);
    // Every line names it with --tracker from now on, so its announced fingerprint is
    // checked (and the certificate pinned) now, by a first contact, or the shell stops.
    globals = { ...globals, tracker: found.address };
    if (!tracker.plaintext && home.pinnedTracker(found.address) === null) {
      try {
        await reachTracker(home, tracker);
      } catch (error) {
        home.close();
        throw error;
      }
    }
  }
  // Inside the shell a command is typed bare: hints say `login`, not `peer.ts login`.
  setInvocation("peer", [], "");
  let serving: Serving | null = null;
  // Notices carry text from the tracker and from sources (error messages): escaped.
  let notify = (line: string) => console.log(asTyped(escapeForTerminal(line)));
  /** Downloads running in the background, by name. */
  const downloads = new BackgroundDownloads((line) => notify(line));
  const hooksFor = (signal: AbortSignal): ShellHooks => ({
    // A login (perhaps as someone else) restarts serving under the new session.
    onLogin: async () => {
      await stop();
      await startIfLoggedIn();
    },
    onLogout: stop,
    servingAddress: () => serving && formatAddress(serving.address),
    signal,
    startBackground: (name, work) => downloads.start(name, work),
    activeDownloads: () => downloads.active(),
    pauseDownload: (name) => downloads.pause(name),
  });

  const startIfLoggedIn = async () => {
    if (serving || !home.session()) return;
    serving = await startServing(home, {
      tracker,
      listen: { host: flags.host, port: parsePort(flags.port) },
      advertise: flags.advertise,
      maxUploadRate,
      uploadSlots,
      log: (line) => notify(line),
      warn: (line) => console.error(escapeForTerminal(line)),
      onLoggedOut: (error) => {
        notify(`stopped serving: ${error.message}`);
        // Not awaited: presence calls this from its own loop, which stop() waits for.
        serving?.stop().catch((failure) =>
          notify(
            `could not close the piece server: ${escapeForTerminal(toShoalError(failure).message)}`,
          )
        );
        serving = null;
      },
    });
    console.log(`serving your files on ${formatAddress(serving.address)}`);
  };
  const stop = async () => {
    await serving?.stop();
    serving = null;
  };

  console.log('Shoal peer shell: type "help" for commands, "quit" (or Ctrl-D) to leave.');
  if (!home.session()) {
    console.log("You are not logged in: register <username>, then login <username>.");
  }
  await startIfLoggedIn();
  try {
    await runShell({
      prompt: () => {
        const session = home.session();
        return session ? `shoal (${session.username})> ` : "shoal (not logged in)> ";
      },
      commands: [
        ...buildPeerProgram(hooksFor(new AbortController().signal)).commands.map((c) => c.name()),
        "help",
        "quit",
      ],
      historyFile: join(home.dir, "shell_history"),
      leaveHint:
        '(Ctrl-C cancels a command or the line; "quit", "exit" or Ctrl-D leaves the shell)',
      run: async (words, signal) => {
        const program = withUsageHints(buildPeerProgram(hooksFor(signal), config), "peer.ts")
          .addHelpText(
            "after",
            "\nclear, Ctrl-L         clear the screen\nquit, exit, Ctrl-D    leave the shell",
          );
        const plaintext = globals.insecurePlaintext ? ["--insecure-plaintext"] : [];
        await program.parseAsync(
          ["--tracker", globals.tracker, "--home", globals.home, ...plaintext, ...words],
          { from: "user" },
        );
      },
    }, (handle) => notify = (line) => handle.notify(asTyped(escapeForTerminal(line))));
  } finally {
    downloads.stopAll();
    await stop();
    home.close();
  }
}

/** Adds `shell` to the peer program (kept here so the program does not import its own shell). */
export function addShellCommand(program: Command, config: PeerConfig = {}): Command {
  serveOptions(program.command("shell"), config)
    .description("an interactive session with every command, serving files while open")
    .action((flags: ServeFlags, command: Command) =>
      runPeerShell(
        command.optsWithGlobals<GlobalOptions>(),
        flags,
        config,
        config.tracker !== undefined || program.getOptionValueSource("tracker") !== "default",
      )
    );
  return program;
}
