import { formatAddress } from "../protocol/address.ts";
import { type Serving, startServing } from "../peer/serve.ts";
import type { Command } from "commander";
import { buildPeerProgram, serveOptions } from "./peer_program.ts";
import { type GlobalOptions, openContext, parsePort, type ServeFlags } from "./peer_context.ts";
import { runShell } from "./shell.ts";
import type { PeerConfig } from "../peer/config.ts";

/**
 * The interactive peer: every command of the CLI, one per line, while the
 * peer serves its files for as long as the shell is open and logged in.
 */
export async function runPeerShell(
  globals: GlobalOptions,
  flags: ServeFlags,
  config: PeerConfig = {},
): Promise<void> {
  const { tracker, home } = openContext(globals);
  let serving: Serving | null = null;

  const startIfLoggedIn = async () => {
    if (serving || !home.session()) return;
    serving = await startServing(home, {
      tracker,
      listen: { host: flags.host, port: parsePort(flags.port) },
      advertise: flags.advertise,
      log: (line) => console.log(`\n${line}`),
      onLoggedOut: (error) => {
        console.log(`\nstopped serving: ${error.message}`);
        serving?.stop();
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
      run: async (words) => {
        const program = buildPeerProgram({
          // A login (perhaps as someone else) restarts serving under the new session.
          onLogin: async () => {
            await stop();
            await startIfLoggedIn();
          },
          onLogout: stop,
          servingAddress: () => serving && formatAddress(serving.address),
        }, config);
        const plaintext = globals.insecurePlaintext ? ["--insecure-plaintext"] : [];
        await program.parseAsync(
          ["--tracker", globals.tracker, "--home", globals.home, ...plaintext, ...words],
          { from: "user" },
        );
      },
    });
  } finally {
    await stop();
    home.close();
  }
}

/** Adds `shell` to the peer program (kept here so the program does not import its own shell). */
export function addShellCommand(program: Command, config: PeerConfig = {}): Command {
  serveOptions(program.command("shell"), config)
    .description("an interactive session with every command, serving files while open")
    .action((flags: ServeFlags, command: Command) =>
      runPeerShell(command.optsWithGlobals<GlobalOptions>(), flags, config)
    );
  return program;
}
