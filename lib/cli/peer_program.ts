/**
 * The peer's command line: every command, its options, and how its results
 * are shown. The same program serves `peer.ts <command>` and each line typed
 * into the interactive shell.
 */
import { Command, Option } from "commander";
import { formatAddress } from "../protocol/address.ts";
import { parseTrackerAddresses } from "../peer/tracker_addresses.ts";
import { ShoalError } from "../protocol/errors.ts";
import { addPlaintextOptions } from "./plaintext.ts";
import type { PeerConfig } from "../peer/config.ts";
import { addConfigCommand } from "./config_command.ts";
import {
  listSessions,
  login,
  logout,
  register,
  revokeSession,
  unregister,
} from "../peer/account.ts";
import { defaultHome, type PeerHome } from "../peer/home.ts";
import { DEFAULT_SERVE_HOST, DEFAULT_TRACKER, DEFAULT_TRACKER_PORT } from "../defaults.ts";
import { startServing } from "../peer/serve.ts";
import { UploadLog } from "../peer/upload_log.ts";
import { LOG_FORMATS, type LogFormat } from "../log_line.ts";
import { DEFAULT_UPLOAD_SLOTS } from "../peer/upload_slots.ts";
import { search } from "../peer/search.ts";
import { checkName, publish, unpublish, view } from "../peer/shares.ts";
import { linkOf, runLs, runPublishFolder, untilCtrlC } from "./folder_commands.ts";
import { connectSession, reachTracker, type TrackerEndpoint } from "../peer/tracker_link.ts";
import { SHOAL_VERSION } from "../version.ts";
import { asTyped, commandName, isInstalled, quoteWord } from "../invocation.ts";
import { Password, PROTOCOL_VERSION, SessionId, Username } from "../protocol/messages.ts";
import { check } from "../protocol/validate.ts";
import { basename } from "node:path";
import { HashProgress } from "./progress.ts";
import {
  escapeForTerminal,
  formatSize,
  plural,
  printJson,
  renderTable,
  replacedNote,
} from "./output.ts";
import { canAsk, readPassword } from "./prompt.ts";
import {
  addTrackersCommand,
  discoveryEnabled,
  withDiscoveredTracker,
} from "./tracker_discovery.ts";
import type { ShellHooks } from "./shell_hooks.ts";
import {
  cancel,
  type FetchFlags,
  listDownloads,
  ownersTable,
  runFetch,
  truncationNote,
} from "./fetch_command.ts";
import {
  type GlobalOptions,
  openContext,
  parsePort,
  parseRateFlag,
  parseSlotsFlag,
  type PeerContext,
  type ServeFlags,
} from "./peer_context.ts";

/** Commands that never talk to a tracker: they need none found on the network. */
const LOCAL_COMMANDS = new Set([
  "view",
  "downloads",
  "cancel",
  "pause",
  "forget-tracker",
  "trackers",
]);

/** The options of `serve` (and of `shell`, which serves too). */

export function serveOptions(command: Command, config: PeerConfig = {}): Command {
  return command
    .option(
      "--host <host>",
      "address to listen on",
      String(config["serve.host"] ?? DEFAULT_SERVE_HOST),
    )
    .option(
      "--port <port>",
      "port to listen on (0 picks a free one)",
      String(config["serve.port"] ?? "0"),
    )
    .option(
      "--advertise <host>",
      "address other peers should dial (default: as the tracker sees you)",
      config["serve.advertise"] === undefined ? undefined : String(config["serve.advertise"]),
    )
    .addOption(
      new Option("--log-format <format>", "how upload and refusal lines on stderr are written")
        .choices(LOG_FORMATS).default("text"),
    )
    .option(
      "--max-upload-rate <rate>",
      "upload budget of this process, e.g. 20MB/s, 500KiB/s, 100Mbit/s (default: no limit)",
      config["serve.upload-rate"] === undefined ? undefined : String(config["serve.upload-rate"]),
    )
    .option(
      "--upload-slots <n>",
      "downloaders sent pieces at once; the others queue",
      String(config["serve.upload-slots"] ?? DEFAULT_UPLOAD_SLOTS),
    );
}

/**
 * Builds the peer program. `withContext` runs a command with its context and
 * closes the home afterwards; the shell passes hooks to serve while open.
 */
export function buildPeerProgram(hooks?: ShellHooks, config: PeerConfig = {}): Command {
  const program = new Command(commandName("peer"))
    .description("Shoal peer: share files with other peers on your network")
    .version(
      `${
        isInstalled() ? commandName("peer") : "shoal-peer"
      } ${SHOAL_VERSION} (protocol ${PROTOCOL_VERSION})`,
    )
    .addOption(
      new Option(
        "--tracker <host:port>",
        "the tracker to use; one tracker's several processes as HOST:PORT,HOST:PORT " +
          "(the next is tried when one is down)",
      ).env("SHOAL_TRACKER")
        // Unset anywhere, a command looks on the local network first (README: Finding the tracker).
        .default(
          String(config.tracker ?? DEFAULT_TRACKER),
          config.tracker === undefined && discoveryEnabled()
            ? `one announced on the local network, else ${DEFAULT_TRACKER}`
            : undefined,
        ),
    )
    .addOption(
      new Option("--home <dir>", "this peer's state folder").env("SHOAL_HOME")
        .default(defaultHome(), "$XDG_DATA_HOME/shoal"),
    )
    .showSuggestionAfterError(true)
    .exitOverride();

  addPlaintextOptions(program, config["insecure-plaintext"] === true);

  const run = <A extends unknown[]>(
    action: (context: PeerContext, ...args: A) => Promise<void> | void,
  ) =>
  async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const context = openContext(
      command.optsWithGlobals<GlobalOptions>(),
      program.getOptionValueSource("tracker") === "env" ? "SHOAL_TRACKER" : "--tracker",
    );
    // With no tracker named anywhere, a command that talks to one looks for one on the LAN.
    const configured = LOCAL_COMMANDS.has(command.name()) || config.tracker !== undefined ||
      program.getOptionValueSource("tracker") !== "default";
    try {
      await withDiscoveredTracker(context, configured, async () => {
        await action(context, ...args as A);
      });
    } finally {
      context.home.close();
    }
  };

  program.command("register <username>")
    .description("create an account (asks for the password twice)")
    .option("--password-stdin", "read the password from the first line of stdin")
    .action(
      run(async ({ tracker, home }, username: string, options: { passwordStdin?: boolean }) => {
        check(Username, username);
        if (!options.passwordStdin) await reachTracker(home, tracker);
        const password = check(
          Password,
          await readPassword({ fromStdin: !!options.passwordStdin }, true, (text) => {
            const rule = Password.safeParse(text);
            return rule.success || rule.error.issues[0].message;
          }),
        );
        await register(home, tracker, username, password);
        console.log(asTyped(`registered ${username}; now run: peer.ts login ${username}`));
      }),
    );

  program.command("login <username>")
    .description("log in and keep the session in the home")
    .option("--password-stdin", "read the password from the first line of stdin")
    .action(
      run(async ({ tracker, home }, username: string, options: { passwordStdin?: boolean }) => {
        if (!options.passwordStdin) await reachTracker(home, tracker);
        const password = await readPassword({ fromStdin: !!options.passwordStdin });
        // The shell stops serving before the session it serves under is revoked.
        const as = await login(home, tracker, username, password, {
          beforeRevoke: hooks?.onLogout,
        });
        console.log(`logged in as ${as}`);
        await hooks?.onLogin();
      }),
    );

  program.command("logout")
    .description("end the session here and on the tracker")
    .action(run(async ({ tracker, home }) => {
      // Logged out already (a second logout): what was asked holds; not an error to log in for.
      if (!home.session()) return console.log("not logged in: nothing to log out");
      await hooks?.onLogout();
      console.log(`logged out ${await logout(home, tracker)}`);
    }));

  const sessions = program.command("sessions")
    .description("list your login sessions (end one with: sessions revoke <id>)")
    .option("--json", "print JSON for scripts")
    .action(run(async ({ tracker, home }, options: { json?: boolean }) => {
      const list = await listSessions(home, tracker);
      if (options.json) return printJson(list);
      console.log(renderTable(
        ["id", "created", "last used", "address", "this one"],
        list.map((s) => [s.id, s.created, s.lastSeen, s.address ?? "-", s.current ? "yes" : ""]),
      ));
    }));

  sessions.command("revoke <id>")
    .description(
      asTyped("end one of your sessions, say on a lost machine (ids from: peer.ts sessions)"),
    )
    .option("--json", "print JSON for scripts")
    .action(run(async ({ tracker, home }, id: string, _: unknown, command: Command) => {
      // `--json` after `revoke` is parsed as the parent's option, so read it from either.
      const options = command.optsWithGlobals<{ json?: boolean }>();
      if (!SessionId.safeParse(id).success) {
        throw new ShoalError("INVALID_INPUT", `"${id}" is no session id: one is 16 hex digits`, {
          hint: "`peer.ts sessions` lists yours, with their ids",
        });
      }
      const current = await revokeSession(home, tracker, id);
      if (current) await hooks?.onLogout();
      if (options.json) return printJson({ id, current });
      console.log(
        current
          ? `revoked the session ${id}, the one used here: you are logged out`
          : `revoked the session ${id}`,
      );
    }));

  program.command("unregister")
    .description("delete your account and its publications (asks for the password)")
    .option("--password-stdin", "read the password from the first line of stdin")
    .action(run(async ({ tracker, home }, options: { passwordStdin?: boolean }) => {
      if (!home.session()) await connectSession(home, tracker);
      const password = await readPassword({ fromStdin: !!options.passwordStdin });
      await hooks?.onLogout();
      console.log(`deleted the account ${await unregister(home, tracker, password)}`);
    }));

  program.command("forget-tracker <host:port>")
    .description(
      "unpin a tracker's certificate, after its operator confirms it really changed " +
        "(HOST:PORT,HOST:PORT for each of its addresses)",
    )
    .action(run(({ home }, text: string) => {
      const keys = parseTrackerAddresses(text, DEFAULT_TRACKER_PORT).map(formatAddress);
      const forgotten = keys.filter((key) => home.forgetTracker(key));
      if (forgotten.length === 0) {
        throw new ShoalError("NOT_FOUND", `no certificate is pinned for ${keys.join(", ")}`);
      }
      console.log(
        `forgot the certificate pinned for ${
          forgotten.join(", ")
        }; the next contact pins a new one`,
      );
    }));

  program.command("publish <name-or-path> [path]")
    .description(
      "share a local file or folder under a name (default: its own name); it stays put, " +
        "and a folder is shared whole (its symlinks and special files skipped)",
    )
    .action(run(async (context, first: string, second: string | undefined) => {
      const { tracker, home } = context;
      const [name, path] = second === undefined ? [undefined, first] : [first, second];
      const there = await Deno.lstat(path).catch(() => null);
      // A share's name typed where its path goes (to publish it again, from another folder).
      const shared = there === null && second === undefined ? home.share(first) : null;
      if (shared) {
        throw new ShoalError("IO", `no such file or folder here: ${path}`, {
          hint: `you share "${shared.name}" from ${shared.path}: \`peer.ts publish ` +
            `${quoteWord(shared.name)} ${quoteWord(shared.path)}\` publishes it again`,
        });
      }
      // The path typed first and the name second (`publish notes.pdf notes`): said so.
      if (there === null && second !== undefined && await Deno.lstat(first).catch(() => null)) {
        throw new ShoalError("IO", `no such file or folder: ${path}`, {
          hint: `the name comes first, then the path: \`peer.ts publish ${quoteWord(second)} ` +
            `${quoteWord(first)}\``,
        });
      }
      if (there?.isDirectory) {
        if (name !== undefined) checkName(name);
        return await runPublishFolder(context, path, name, hooks);
      }
      const before = home.share(name ?? basename(path));
      // A big file hashes for seconds: a bar says how far (and Ctrl-C says what it stopped).
      const progress = new HashProgress(
        escapeForTerminal(name ?? basename(path)),
        Deno.stderr.isTerminal(),
        true,
      );
      const { share, replaced } = await untilCtrlC(
        (signal) =>
          publish(
            home,
            tracker,
            path,
            name,
            signal,
            (bytes, size) => progress.update({ files: 0, totalFiles: 1, bytes, totalBytes: size }),
          ).catch(
            (error) => {
              if (!signal.aborted) throw error;
              throw new ShoalError("CANCELLED", "stopped hashing; nothing was published");
            },
          ),
        hooks?.signal,
      ).finally(() => progress.stop());
      console.log(
        `${replaced ? "republished" : "published"} "${share.name}" (${formatSize(share.size)}, ` +
          `content ${share.contentId.slice(0, 12)}): ${linkOf(share.contentId)}` +
          escapeForTerminal(replacedNote(before, share)),
      );
    }));

  program.command("unpublish <name>")
    .description("stop sharing a file (it stays on disk)")
    .action(run(async ({ tracker, home }, name: string) => {
      console.log(`unpublished "${escapeForTerminal(await unpublish(home, tracker, name))}"`);
    }));

  program.command("view")
    .description("list your own shares")
    .option("--json", "print JSON for scripts")
    .action(run(({ home }, options: { json?: boolean }) => {
      const shares = view(home);
      if (options.json) {
        // Named one by one: the home's bookkeeping (modification time, inode) is no script's business.
        return printJson(shares.map((share) => ({
          name: share.name,
          path: share.path,
          type: share.type,
          size: share.size,
          contentId: share.contentId,
          publishedAt: share.publishedAt,
          files: share.files ?? 1,
          folder: share.kind === "folder",
          link: linkOf(share.contentId),
        })));
      }
      if (shares.length === 0) {
        return console.log(asTyped("no shares yet; add one with: peer.ts publish <path>"));
      }
      console.log(renderTable(
        ["no.", "name", "location", "type", "size"],
        shares.map((s, i) => [
          i + 1,
          s.name,
          s.path,
          s.type || "-",
          s.kind === "folder"
            ? `${formatSize(s.size)} (${plural(s.files ?? 0, "file")})`
            : formatSize(s.size),
        ]),
      ));
    }));

  program.command("search <text>")
    .description("find files and folders across the network by name")
    .option("--json", "print JSON for scripts")
    .action(run(async ({ tracker, home }, text: string, options: { json?: boolean }) => {
      const { files, total } = await search(home, tracker, text);
      const note = truncationNote(files.length, total, "narrow the search");
      if (options.json) {
        // stdout stays the JSON array scripts read; the note goes beside it.
        if (note) console.error(note);
        // Each with the link that fetches that very content, as `view --json` gives one's own.
        return printJson(files.map((file) => ({ ...file, link: linkOf(file.contentId) })));
      }
      if (files.length === 0) return console.log(`nothing matches "${text}"`);
      console.log(ownersTable(files));
      if (note) console.log(note);
    }));

  program.command("ls <name>")
    .description("list the files of a shared folder (path, size) without fetching them")
    .option("--from <username>", "the folder of this owner")
    .option("--json", "print JSON for scripts")
    .action(
      run((context, name: string, options: { json?: boolean; from?: string }) =>
        runLs(context, name, options)
      ),
    );

  program.command("fetch <name>")
    .description(
      "download a file or folder by name (or shoal:<content id> link) from every peer that " +
        "shares it (or one, with --from)",
    )
    .option("--from <username>", "take it only from this owner, without asking")
    .option(
      "--only <glob>",
      "fetch only the paths of a folder that match (repeatable; *, **, ?; a folder's name " +
        "takes all it holds)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      "--output <path>",
      "where to save it: a file's path (or a folder to put it in), or the folder a folder " +
        "becomes (default: its name, in this folder)",
    )
    .option(
      "--force",
      "overwrite an existing file at the output path; of a folder, write into the folder " +
        "there (files of the same paths are replaced; those already holding the same content " +
        "are kept, not fetched again)",
    )
    .option("--json", "print the owners and the download summary as one JSON object")
    .option(
      "--max-download-rate <rate>",
      "download budget of this process, e.g. 5MB/s (default: no limit)",
      config["fetch.download-rate"] === undefined
        ? undefined
        : String(config["fetch.download-rate"]),
    )
    .action(
      run((context, name: string, options: FetchFlags) => runFetch(context, name, options, hooks)),
    );

  program.command("downloads")
    .description("list unfinished downloads (run the same fetch again to resume one)")
    .option("--json", "print JSON for scripts")
    .action(
      run((context, options: { json?: boolean }) =>
        listDownloads(context, options, hooks?.activeDownloads() ?? [])
      ),
    );

  program.command("cancel <name>")
    .description("cancel an unfinished download and delete its partial file")
    .action(run(async (context, name: string) => {
      // A background download paused here lets go of it within moments: cancel waits for that.
      const paused = await hooks?.pauseDownload(name);
      return cancel(context, name, paused ? 5_000 : 0);
    }));

  if (hooks) {
    program.command("pause <name>")
      .description(
        "stop a background download, keeping its partial file (fetch it again to resume)",
      )
      .action(async (name: string) => {
        const paused = await hooks.pauseDownload(name);
        if (paused === undefined) {
          throw new ShoalError("NOT_FOUND", `no download named "${name}" is running`, {
            hint: "`downloads` lists them, running ones marked",
          });
        }
        console.log(asTyped(paused));
      });
  }

  addConfigCommand(program);
  addTrackersCommand(program, run);

  serveOptions(program.command("serve"), config)
    .description("serve your shares to other peers and stay online until Ctrl-C")
    .action(run(async ({ tracker, home }, options: ServeFlags) => {
      if (hooks) {
        const address = hooks.servingAddress();
        console.log(address ? `this shell already serves on ${address}` : "log in to serve");
        return;
      }
      await serveUntilSignal(home, tracker, options);
    }));

  return program;
}

/**
 * `peer.ts` with no command (global options aside) opens the shell on a
 * terminal; elsewhere the program shows its help.
 */
export function defaultToShell(args: string[]): string[] {
  const rest = args.filter((arg, i) =>
    !/^--(tracker|home)(=|$)/.test(arg) && !/^--(tracker|home)$/.test(args[i - 1] ?? "")
  );
  return rest.length === 0 && canAsk() ? [...args, "shell"] : args;
}

/**
 * What `serve` says when Ctrl-C stops it. One that never came online (say,
 * while another serve of the account was) took nothing offline: the files
 * are as they were, and saying "offline" would send the user to serve again.
 */
export function stoppedServingLine(wasOnline: boolean): string {
  return wasOnline
    ? "stopped serving; your files are offline until you serve again"
    : "stopped; this serve never came online, so nothing changed for your files";
}

async function serveUntilSignal(home: PeerHome, tracker: TrackerEndpoint, flags: ServeFlags) {
  const { promise: ended, resolve: end, reject: fail } = Promise.withResolvers<void>();
  const serving = await startServing(home, {
    tracker,
    listen: { host: flags.host, port: parsePort(flags.port) },
    advertise: flags.advertise,
    maxUploadRate: parseRateFlag("max-upload-rate", flags.maxUploadRate),
    uploadSlots: parseSlotsFlag(flags.uploadSlots),
    // Lines about the tracker quote its error messages.
    log: (line) => console.log(escapeForTerminal(line)),
    warn: (line) => console.error(escapeForTerminal(line)),
    onLoggedOut: (error) => fail(error),
    uploads: new UploadLog({ format: (flags.logFormat ?? "text") as LogFormat }),
  });
  console.log(`serving on ${formatAddress(serving.address)}`);
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, end);
  // The listeners stay until it has said so: under `deno task` one Ctrl-C arrives twice (from
  // the terminal and forwarded by the task), and a copy with no listener would kill the process
  // before it has gone offline and said so.
  try {
    try {
      await ended;
    } finally {
      await serving.stop();
    }
    // Ctrl-C otherwise ends in silence: say that the files are no longer offered.
    console.log(stoppedServingLine(serving.wasOnline()));
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, end);
  }
}
