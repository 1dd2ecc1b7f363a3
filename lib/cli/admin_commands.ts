/**
 * The tracker's admin commands (`ping`, `discover`, `peers`, `files`): one-shot
 * on a database file, and inside the admin shell of a running tracker.
 */
import { type Command, Option } from "commander";
import { formatAddress } from "../protocol/address.ts";
import { discover, pingPeer, type PingReport } from "../tracker/admin.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { ReportedFailure } from "./errors.ts";
import { formatSize, plural, printJson, renderTable } from "./output.ts";

function pingLines(report: PingReport): string[] {
  const { peer, os, probe } = report;
  const state = peer.online ? "online" : `offline since ${peer.since}`;
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
  withStore: (
    command: Command,
    use: (store: TrackerStore, signal?: AbortSignal) => void | Promise<void>,
  ) => Promise<void>,
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
      withStore(command, async (store, signal) => {
        const report = await pingPeer(store, name, signal);
        // Cancelled with Ctrl-C in the admin shell: the prompt has moved on, print nothing.
        signal?.throwIfAborted();
        if (options.json) printJson(report);
        else for (const line of pingLines(report)) console.log(line);
        // The report said it: exit 1 for scripts, without a second message.
        if (!report.probe.answered) throw new ReportedFailure();
      })
    );

  admin("discover <peer>")
    .description("list what a peer has published")
    .addOption(json())
    .action((name: string, options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const { peer, files } = await discover(store, name);
        if (options.json) return printJson({ peer, files });
        const owner = files[0]?.owner ?? peer?.username ?? name;
        if (files.length === 0) return console.log(`${owner} has published nothing`);
        console.log(renderTable(
          ["no.", "name", "type", "size", "published at"],
          files.map((f, i) => [i + 1, f.name, f.type || "-", sizeOf(f), f.publishedAt]),
        ));
      })
    );

  admin("peers")
    .description("list known peers and whether they are online")
    .addOption(json())
    .action((options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const peers = await store.listPeers();
        if (options.json) return printJson(peers);
        if (peers.length === 0) return console.log("no peer has served yet");
        console.log(renderTable(
          ["username", "address", "status", "since"],
          peers.map((
            p,
          ) => [p.username, formatAddress(p), p.online ? "online" : "offline", p.since]),
        ));
      })
    );

  admin("files")
    .description("list every published file and folder (a folder with its file count)")
    .addOption(json())
    .action((options: { json?: boolean }, command: Command) =>
      withStore(command, async (store) => {
        const files = await store.allFiles();
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
            sizeOf(f),
            f.online ? "online" : "offline",
          ]),
        ));
      })
    );
  return program;
}

/** A listing's size, and a folder's file count beside it. */
function sizeOf(file: { size: number; type: string; files?: number }): string {
  return file.type === "folder"
    ? `${formatSize(file.size)} (${plural(file.files ?? 0, "file")})`
    : formatSize(file.size);
}
