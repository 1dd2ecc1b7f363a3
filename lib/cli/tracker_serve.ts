/**
 * `tracker.ts serve`: the tracker's protocol port, its HTTP side (dashboard,
 * /metrics, /api/v1), its announcement on the local network and, on a
 * terminal, the admin shell, until SIGINT/SIGTERM or `quit`.
 */
import { Command, Option } from "commander";
import { DEFAULT_HTTP_PORT, DEFAULT_TRACKER_PORT } from "../defaults.ts";
import { type Address, formatAddress } from "../protocol/address.ts";
import {
  type Announcement,
  announceTracker,
  defaultTrackerName,
  freeTrackerName,
  reachableFromNetwork,
} from "../tracker/announce.ts";
import { browseTrackers } from "../peer/discover.ts";
import { PROTOCOL_VERSION } from "../protocol/messages.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { RegisterLimiter } from "../tracker/register_limiter.ts";
import { DEFAULT_SESSION_IDLE_MS } from "../tracker/accounts.ts";
import { Tracker, type TrackerOptions } from "../tracker/tracker.ts";
import { isPostgresUrl } from "../tracker/postgres_connection.ts";
import { loadTrackerIdentity } from "../identity/tracker_identity.ts";
import { EventFeed } from "../tracker/events.ts";
import {
  EventLog,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "../tracker/event_log.ts";
import { TrackerMetrics } from "../tracker/metrics.ts";
import { startHttpServer } from "../tracker/http/server.ts";
import type { TlsIdentity } from "../protocol/tls.ts";
import { UsageError } from "./errors.ts";
import { toShoalError } from "../protocol/errors.ts";
import { DatabaseLock } from "../tracker/database_lock.ts";
import { SHOAL_VERSION } from "../version.ts";
import { runAdminShell } from "./admin_shell.ts";
import type { ShellHandle } from "./shell.ts";
import process from "node:process";
import { parsePort } from "./peer_context.ts";
import { addPlaintextOptions, PLAINTEXT_WARNING } from "./plaintext.ts";
import { escapeForTerminal } from "./output.ts";
import { fingerprintOf } from "../identity/certificate.ts";
import { loadOrCreateIdentity, loadOrCreateTicketKey } from "../identity/key_files.ts";
import { basename, dirname, resolve } from "node:path";
import { PostgresTrackerStore } from "../tracker/postgres_store.ts";
import { asTyped, quoteWord, quoteWords } from "../invocation.ts";
import { DB_OPTION, openTrackerStore } from "./tracker_database.ts";
import { readTlsFiles } from "./tls_files.ts";

/** Adds `serve` to the tracker program. */
export function addServeCommand(program: Command): void {
  addPlaintextOptions(program.command("serve"))
    .description("run the tracker (with an admin shell when stdin is a terminal)")
    .option("--host <host>", "address to listen on", "0.0.0.0")
    .option("--port <port>", "port to listen on (0 picks a free one)", String(DEFAULT_TRACKER_PORT))
    .option(
      "--allow-advertise",
      "hand out the host a peer names (its serve --advertise), not only the address it connects from",
    )
    .addOption(DB_OPTION())
    .option(
      "--identity <dir>",
      "serve with the identity in DIR (made by `identity init`), as every process of one tracker must",
    )
    .option(
      "--dead-after <seconds>",
      "with PostgreSQL: a tracker process silent this long counts as dead, and the others take " +
        "its peers offline (each process says it is alive four times as often)",
      "20",
    )
    .option(
      "--session-idle-days <days>",
      "end a login session unused this many days",
      String(DEFAULT_SESSION_IDLE_MS / 86_400_000),
    )
    .option(
      "--registrations-per-address <count>",
      "new accounts one address may create at once (then one a minute)",
      "10",
    )
    .option(
      "--name <name>",
      "the name peers see when they find it on the local network (default: the host name)",
    )
    .option("--no-announce", "do not announce the tracker on the local network (DNS-SD, mDNS)")
    .addOption(
      new Option(
        "--http-port <port>",
        "port of the HTTP side: dashboard, /metrics, /healthz, /api/v1 (0 picks a free one, off turns it off)",
      ).env("SHOAL_TRACKER_HTTP_PORT").default(String(DEFAULT_HTTP_PORT)),
    )
    .option("--http-host <host>", "address the HTTP side listens on (default: --host)")
    .option(
      "--tls-cert <file>",
      "serve both ports with this certificate (PEM) instead of the tracker's own",
    )
    .option("--tls-key <file>", "the private key (PEM) of --tls-cert")
    .addOption(
      new Option("--log-format <format>", "how the log on stderr is written").choices(LOG_FORMATS)
        .default("text"),
    )
    .addOption(
      new Option("--log-level <level>", "the least severe log lines written").choices(LOG_LEVELS)
        .default("info"),
    )
    // `deno task tracker` always means serve: `deno task tracker ping alice` lands here.
    .allowExcessArguments(true)
    .action(async (options: ServeOptions, command: Command) => {
      if (command.args.length > 0) throw strayServeArguments(command.args, program);
      if (options.name !== undefined) checkTrackerName(options.name);
      const port = parsePort(options.port);
      const sessionIdleMs = positive("--session-idle-days", options.sessionIdleDays) * 86_400_000;
      const registerLimiter = new RegisterLimiter({
        burstPerAddress: Math.floor(
          positive("--registrations-per-address", options.registrationsPerAddress),
        ),
      });
      const httpPort = options.httpPort === "off" ? null : httpPortOf(options.httpPort);
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
        throw new UsageError("--tls-cert and --tls-key go together: pass both, or neither");
      }
      if (options.insecurePlaintext && options.tlsCert !== undefined) {
        throw new UsageError("--tls-cert makes no sense with --insecure-plaintext; drop one");
      }
      const postgres = isPostgresUrl(options.db);
      // Before anything touches a SQLite database: a second tracker on it stops here. Several
      // processes on one PostgreSQL are the point, so there is no lock there.
      using lock = postgres ? null : DatabaseLock.acquire(options.db);
      const events = new EventFeed();
      // Log lines go to stderr; above the admin shell's prompt while it shows one.
      let writeLog = (line: string) => console.error(line);
      using log = new EventLog(events, {
        format: options.logFormat as LogFormat,
        level: options.logLevel as LogLevel,
        write: (line) => writeLog(line),
      });
      // Warnings quote what clients sent (a request type, say): escaped.
      const warn = (line: string) => log.warn(escapeForTerminal(line));
      const deadAfterMs = positive("--dead-after", options.deadAfter) * 1000;
      await using store = await openTrackerStore(options.db, { warn, deadAfterMs: deadAfterMs });
      const identity = await serveIdentity(options, postgres);
      const tls = options.insecurePlaintext || options.tlsCert === undefined
        ? identity.tls
        : await readTlsFiles(options.tlsCert, options.tlsKey!);
      const { ticketKey } = identity;
      // Several processes on one PostgreSQL are one tracker only with one identity: the first to
      // serve records its own, and one with another is refused here, before it binds a port.
      if (store instanceof PostgresTrackerStore) {
        await store.claimIdentity({
          certificateFingerprint: tls ? fingerprintOf(tls.certificate) : null,
          ticketKey: ticketKey.publicKeyBase64,
        });
      }
      let connections = () => 0;
      using metrics = new TrackerMetrics(store, events, () => connections());
      const tracker = new Tracker(store, {
        tls,
        ticketKey,
        sessionIdleMs,
        registerLimiter,
        warn,
        events,
        onQuery: metrics.observeQuery,
        allowAdvertisedHosts: options.allowAdvertise ?? false,
        presenceEveryMs: deadAfterMs / 4,
      });
      connections = () => tracker.connectionCount;
      // The HTTP port first: bound, or refused (say, in use), before the protocol port is, so the
      // log's "start" line comes only once the tracker really starts.
      let http;
      try {
        http = httpPort === null ? null : await startHttpServer({
          store,
          events,
          metrics,
          checkPassword: (username, password, address) =>
            tracker.checkPassword(username, password, address),
          address: { host: options.httpHost ?? options.host, port: httpPort },
          tls,
          warn,
        });
      } catch (error) {
        await tracker.close();
        throw error;
      }
      let bound;
      try {
        bound = await tracker.listen({ host: options.host, port });
      } catch (error) {
        await http?.close();
        await tracker.close();
        throw error;
      }
      lock?.record(bound);
      let announcement: { stop(): Promise<void> } | undefined;
      // Lines said once the admin shell may be open (the announcement's, a second after start):
      // drawn above its prompt, as the log's are.
      let say = (line: string) => console.log(line);
      // Whatever fails from here on (a closed stdout, the announcement), the ports are closed.
      try {
        console.log(
          `shoal tracker ${SHOAL_VERSION} listening on ${
            formatAddress(bound)
          } (${store.description})`,
        );
        if (http) console.log(`dashboard on ${http.url}`);
        if (tls) {
          console.log(`TLS certificate fingerprint: ${fingerprintOf(tls.certificate)}`);
          console.log("peers print this fingerprint on first contact: tell them to compare");
        } else {
          console.log(PLAINTEXT_WARNING);
        }
        announcement = startAnnouncing(options, bound, tls?.certificate, (line) => say(line), warn);
        await untilStopped(
          store,
          postgres ? ".shoal-tracker.history" : `${options.db}.history`,
          events,
          // What a one-shot admin command needs to reach this database (a URL may hold a password).
          postgres ? "--db URL" : `--db ${quoteWord(resolve(options.db))}`,
          (shell) => {
            writeLog = (line) => shell.notify(line, process.stderr);
            say = (line) => shell.notify(line, process.stdout);
          },
        );
      } finally {
        writeLog = (line) => console.error(line);
        say = (line) => console.log(line);
        await announcement?.stop();
        await http?.close();
        await tracker.close();
        console.log("tracker stopped");
      }
    });
}

interface ServeOptions {
  host: string;
  port: string;
  db: string;
  identity?: string;
  deadAfter: string;
  sessionIdleDays: string;
  registrationsPerAddress: string;
  allowAdvertise?: boolean;
  insecurePlaintext?: boolean;
  name?: string;
  announce: boolean;
  httpPort: string;
  httpHost?: string;
  tlsCert?: string;
  tlsKey?: string;
  logFormat: string;
  logLevel: string;
}

/** `--http-port`'s value: a port, 0 for a free one (`off` is handled before). */
function httpPortOf(text: string): number {
  if (/^\d+$/.test(text) && Number(text) <= 65535) return Number(text);
  throw new UsageError(
    `--http-port: invalid port "${text}"; give a number up to 65535, 0 for a free one, or off`,
  );
}

/** How long the tracker listens for others' announcements before choosing its name. */
const NAME_PROBE_MS = 1_000;

/**
 * Announces the tracker on the local network (unless `--no-announce`, or it
 * listens on loopback, where nobody else could reach it) and says so. First
 * it listens a moment for other trackers: one announcing the same name
 * would hide one of the two from peers, so this one then takes the first
 * free `NAME-2`, `NAME-3`, ... and says so. The tracker serves meanwhile.
 */
function startAnnouncing(
  options: ServeOptions,
  bound: Address,
  certificate: string | undefined,
  say: (line: string) => void,
  warn: (line: string) => void,
): { stop(): Promise<void> } | undefined {
  if (!options.announce || !reachableFromNetwork(options.host)) return undefined;
  const fingerprint = certificate === undefined ? undefined : fingerprintOf(certificate);
  const wanted = options.name ?? defaultTrackerName();
  const stopping = new AbortController();
  let announcement: Announcement | undefined;
  const started = (async () => {
    // Nothing seen (no multicast, no permission): announceTracker says why, if it fails too.
    const seen = await browseTrackers({ waitMs: NAME_PROBE_MS, signal: stopping.signal })
      .catch(() => []);
    if (stopping.signal.aborted) return;
    const name = freeTrackerName(wanted, seen, fingerprint);
    if (name !== wanted) {
      warn(
        `warning: another tracker announces "${wanted}" on the local network; announcing this ` +
          `one as "${name}" (give each tracker its own name: serve --name NAME)`,
      );
    }
    announcement = announceTracker({
      name,
      port: bound.port,
      host: options.host,
      fingerprint,
      version: PROTOCOL_VERSION,
      warn,
    });
    if (!announcement) return;
    say(
      `announced on the local network as "${announcement.name}" (DNS-SD _shoal._tcp; ` +
        "--no-announce turns it off)",
    );
  })().catch((error) =>
    // Not a rejection nobody handles (which would end the process): the tracker serves on.
    warn(`warning: announcing the tracker failed: ${toShoalError(error).message}`)
  );
  return {
    stop: async () => {
      stopping.abort();
      await started;
      await announcement?.stop();
    },
  };
}

/** A DNS-SD instance name is one DNS label: 1 to 63 bytes. */
function checkTrackerName(name: string): void {
  const bytes = new TextEncoder().encode(name).length;
  // Nothing a terminal would hide or act on: peers print the name.
  if (bytes === 0 || bytes > 63 || escapeForTerminal(name) !== name) {
    throw new UsageError(
      `--name: expected 1 to 63 bytes without control or invisible characters, got ${
        JSON.stringify(name)
      }`,
    );
  }
}

/**
 * The identity a serving process uses: the one in `--identity DIR`; else,
 * for SQLite, the one beside the database file (made on first start); for
 * PostgreSQL, one in the current folder, with a note that several processes
 * must share one.
 */
async function serveIdentity(
  options: ServeOptions,
  postgres: boolean,
): Promise<{ tls: TlsIdentity | undefined; ticketKey: TrackerOptions["ticketKey"] }> {
  if (options.identity !== undefined) {
    const { tls, ticketKey } = await loadTrackerIdentity(options.identity);
    return { tls: options.insecurePlaintext ? undefined : tls, ticketKey };
  }
  const dir = postgres ? "." : dirname(options.db);
  const base = postgres ? "shoal-tracker." : `${basename(options.db)}.`;
  if (postgres) {
    console.error(asTyped(
      "note: without --identity, this process keeps its keys in the current folder; several " +
        "processes of one tracker must share one identity: tracker.ts identity init --out DIR",
    ));
  }
  const tls = options.insecurePlaintext
    ? undefined
    : await loadOrCreateIdentity(dir, `${base}tls-`);
  const ticketKey = await loadOrCreateTicketKey(dir, `${base}ticket-key.pem`);
  return { tls, ticketKey };
}

/** Parses a number option that must be above zero. */
function positive(option: string, text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value > 0)) {
    throw new UsageError(`${option}: expected a number above 0, got "${text}"`);
  }
  return value;
}

/** Runs until SIGINT/SIGTERM, or until the admin shell quits when stdin is a terminal. */
async function untilStopped(
  store: TrackerStore,
  historyFile: string,
  events: EventFeed,
  dbOption: string,
  shellStarted?: (handle: ShellHandle) => void,
): Promise<void> {
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  const shell = Deno.stdin.isTerminal();
  // With the admin shell, Ctrl-C cancels the running command (the shell's own
  // listener) or the line being typed; the tracker stops with quit or Ctrl-D.
  const ignore = () => {};
  const handlers: [Deno.Signal, () => void][] = [["SIGTERM", stop], [
    "SIGINT",
    shell ? ignore : stop,
  ]];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  try {
    if (shell) {
      await Promise.race([
        runAdminShell(store, historyFile, events, dbOption, shellStarted),
        stopped,
      ]);
    } else {
      await stopped;
    }
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

/**
 * Words after `serve`, likely another of the program's commands typed as
 * `deno task tracker ping alice` (or `admin grant alice`, `identity init`).
 */
function strayServeArguments(args: string[], program: Command): UsageError {
  const admin = program.commands.some((command) =>
    command.name() !== "serve" && command.name() === args[0]
  );
  return new UsageError(
    admin
      ? `serve takes no arguments; run the admin command on its own: \`tracker.ts ${
        quoteWords(args)
      }\``
      : `serve takes no arguments (got ${quoteWords(args)})`,
  );
}
