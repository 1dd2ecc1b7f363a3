/**
 * The tracker's command line: `serve`, and the admin commands (`ping`,
 * `discover`, `peers`, `files`) that work one-shot on a database file and
 * inside the interactive admin shell of a running tracker.
 */
import { Command, Option } from "commander";
import { formatAddress } from "../protocol/address.ts";
import { PROTOCOL_VERSION } from "../protocol/messages.ts";
import { discover, pingPeer, type PingReport } from "../tracker/admin.ts";
import { SqliteTrackerStore, type TrackerStore } from "../tracker/store.ts";
import { Tracker } from "../tracker/tracker.ts";
import { SHOAL_VERSION } from "../version.ts";
import { formatSize, printJson, renderTable } from "./output.ts";
import { parsePort } from "./peer_program.ts";
import { runAdminShell } from "./admin_shell.ts";

const DB_OPTION = () =>
  new Option("--db <file>", "the tracker's SQLite database").env("SHOAL_TRACKER_DB")
    .default("tracker.db");

function pingLines(report: PingReport): string[] {
  const { peer, os, probe } = report;
  const state = peer.online ? "online" : `offline since ${peer.lastSeen}`;
  const osLine = !os.available
    ? `unavailable (${os.detail})`
    : os.reachable
    ? `reply from ${peer.host}${os.rttMs === null ? "" : ` in ${os.rttMs} ms`}`
    : `no reply (${os.detail})`;
  const probeLine = probe.answered
    ? `peer process answered as ${probe.username ?? "?"} in ${probe.rttMs!.toFixed(2)} ms`
    : `no answer (${probe.detail})`;
  return [
    `peer ${peer.username} at ${report.address} (${state})`,
    `  os ping:  ${osLine}`,
    `  app ping: ${probeLine}`,
  ];
}

/**
 * Adds the admin commands to `program`. `withStore` lends them a store: the
 * one-shot program opens `--db`, the admin shell lends the live one.
 */
export function addAdminCommands(
  program: Command,
  withStore: (command: Command, use: (store: TrackerStore) => Promise<void>) => Promise<void>,
  extraOptions: () => Option[] = () => [],
): Command {
  const json = () => new Option("--json", "print JSON for scripts");
  const admin = (name: string) => {
    const command = program.command(name);
    for (const option of extraOptions()) command.addOption(option);
    return command;
  };

  admin("ping <peer>")
    .description("ping a peer (username, host or host:port): OS ping and a protocol probe")
    .addOption(json())
    .action((name: string, options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const report = await pingPeer(store, name);
        if (options.json) return printJson(report);
        for (const line of pingLines(report)) console.log(line);
      })
    );

  admin("discover <peer>")
    .description("list what a peer has published")
    .addOption(json())
    .action((name: string, options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const { peer, files } = discover(store, name);
        if (options.json) return printJson({ peer, files });
        const owner = files[0]?.owner ?? peer?.username ?? name;
        if (files.length === 0) return console.log(`${owner} has published nothing`);
        console.log(renderTable(
          ["no.", "name", "type", "size", "published at"],
          files.map((f, i) => [i + 1, f.name, f.type || "-", formatSize(f.size), f.publishedAt]),
        ));
        await Promise.resolve();
      })
    );

  admin("peers")
    .description("list known peers and whether they are online")
    .addOption(json())
    .action((options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const peers = store.listPeers();
        if (options.json) return printJson(peers);
        if (peers.length === 0) return console.log("no peer has served yet");
        console.log(renderTable(
          ["username", "address", "status", "last seen"],
          peers.map((
            p,
          ) => [p.username, formatAddress(p), p.online ? "online" : "offline", p.lastSeen]),
        ));
        await Promise.resolve();
      })
    );

  admin("files")
    .description("list every published file")
    .addOption(json())
    .action((options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const files = store.allFiles();
        if (options.json) return printJson(files);
        if (files.length === 0) return console.log("nothing is published yet");
        console.log(renderTable(
          ["owner", "name", "type", "size", "status"],
          files.map((
            f,
          ) => [
            f.owner,
            f.name,
            f.type || "-",
            formatSize(f.size),
            f.online ? "online" : "offline",
          ]),
        ));
        await Promise.resolve();
      })
    );
  return program;
}

/** Builds the tracker program. */
export function buildTrackerProgram(): Command {
  const program = new Command("tracker.ts")
    .description("Shoal tracker: accounts and the index of who shares what")
    .version(`shoal-tracker ${SHOAL_VERSION} (protocol ${PROTOCOL_VERSION})`)
    .showSuggestionAfterError(true)
    .exitOverride();

  program.command("serve")
    .description("run the tracker (with an admin shell when stdin is a terminal)")
    .option("--host <host>", "address to listen on", "0.0.0.0")
    .option("--port <port>", "port to listen on (0 picks a free one)", "5050")
    .addOption(DB_OPTION())
    .action(async (options: { host: string; port: string; db: string }) => {
      const port = parsePort(options.port);
      using store = SqliteTrackerStore.open(options.db);
      const tracker = new Tracker(store);
      const bound = tracker.listen({ host: options.host, port });
      console.log(
        `shoal tracker ${SHOAL_VERSION} listening on ${
          formatAddress(bound)
        } (database ${options.db})`,
      );
      try {
        await untilStopped(store);
      } finally {
        await tracker.close();
      }
    });

  return addAdminCommands(program, async (command, use) => {
    const { db } = command.opts<{ db: string }>();
    using store = SqliteTrackerStore.open(db);
    await use(store);
  }, () => [DB_OPTION()]);
}

/** Runs until SIGINT/SIGTERM, or until the admin shell quits when stdin is a terminal. */
async function untilStopped(store: TrackerStore): Promise<void> {
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    if (Deno.stdin.isTerminal()) {
      await Promise.race([runAdminShell(store), stopped]);
    } else {
      await stopped;
    }
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
}
