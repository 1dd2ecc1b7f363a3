import { Command } from "commander";
import type { TrackerStore } from "../tracker/store.ts";
import type { EventFeed } from "../tracker/events.ts";
import { runShell, type ShellHandle } from "./shell.ts";
import { commandPrefix, quoteWords, setInvocation } from "../invocation.ts";
import { addAdminCommands } from "./admin_commands.ts";
import { withUsageHints } from "./help.ts";
import { hasOsPing, OS_PING_MISSING } from "../tracker/admin.ts";

/** The shell's commands that act on the tracker, logged and fed to the dashboard as admin actions. */
const ADMIN_ACTIONS = new Set(["ping", "discover", "peers", "files"]);

/** The tracker's commands that run one-shot only, from another terminal. */
const ONE_SHOT_ONLY = new Set(["admin", "identity", "serve", "completions"]);

/** The running tracker's admin shell: ping, discover, peers, files, help, quit. */
export async function runAdminShell(
  store: TrackerStore,
  historyFile?: string,
  events?: EventFeed,
  dbOption = "--db FILE",
  started?: (handle: ShellHandle) => void,
): Promise<void> {
  console.log('admin shell: type "help" for commands; "quit", "exit" or Ctrl-D stops the tracker');
  if (!await hasOsPing()) console.log(`note: ${OS_PING_MISSING}`);
  // The one-shot commands that are not the shell's, named as the operator runs them outside it.
  const outside = commandPrefix("tracker");
  // Inside the shell a command is typed bare: hints say `ping`, not `tracker.ts ping`.
  setInvocation("tracker", [], "");
  await runShell({
    prompt: () => "tracker> ",
    leaveHint: '(Ctrl-C cancels a command or the line; "quit", "exit" or Ctrl-D stops the tracker)',
    commands: ["ping", "discover", "peers", "files", "help", "quit"],
    historyFile,
    run: async (words, signal) => {
      if (ONE_SHOT_ONLY.has(words[0])) {
        // Said here, not thrown: the hint is already as typed (`deno run -A tracker.ts admin ...`),
        // and the shell's error report would rewrite its `tracker.ts` once more.
        const db = words[0] === "admin" ? ` ${dbOption}` : "";
        console.error(`error: \`${words[0]}\` is not a command of this shell`);
        console.error(
          `hint: run it in another terminal: ${outside} ${quoteWords(words)}${db} ` +
            "(`help` lists this shell's commands)",
        );
        return;
      }
      // The operator's commands go to the log and the dashboard's feed, as admin actions (not a
      // typo, which is no action: "admin pign" in the feed is noise).
      if (ADMIN_ACTIONS.has(words[0])) {
        events?.emit("admin", null, {
          action: words[0],
          target: words[1] ?? null,
          detail: "shell",
        });
      }
      // A usage error ends with a hint, as in the peer's shell: `help`, or the command's --help.
      const program = withUsageHints(
        addAdminCommands(
          new Command("tracker>").usage("<command> [options]").exitOverride()
            .addHelpText(
              "after",
              "\nclear, Ctrl-L         clear the screen\nquit, exit, Ctrl-D    stop the tracker",
            ),
          async (_, use) => await use(store, signal),
        ),
        "tracker.ts",
      );
      await program.parseAsync(words, { from: "user" });
    },
  }, started);
}
