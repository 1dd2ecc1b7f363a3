import { Command } from "commander";
import type { TrackerStore } from "../tracker/store.ts";
import type { EventFeed } from "../tracker/events.ts";
import { runShell } from "./shell.ts";
import { setInvocation } from "../invocation.ts";
import { addAdminCommands } from "./admin_commands.ts";
import { hasOsPing, OS_PING_MISSING } from "../tracker/admin.ts";

/** The running tracker's admin shell: ping, discover, peers, files, help, quit. */
export async function runAdminShell(
  store: TrackerStore,
  historyFile?: string,
  events?: EventFeed,
): Promise<void> {
  console.log('admin shell: type "help" for commands; "quit", "exit" or Ctrl-D stops the tracker');
  if (!await hasOsPing()) console.log(`note: ${OS_PING_MISSING}`);
  // Inside the shell a command is typed bare: hints say `ping`, not `tracker.ts ping`.
  setInvocation("tracker", [], "");
  await runShell({
    prompt: () => "tracker> ",
    commands: ["ping", "discover", "peers", "files", "help", "quit"],
    historyFile,
    run: async (words, signal) => {
      // The operator's commands go to the log and the dashboard's feed, as admin actions.
      if (words.length > 0 && words[0] !== "help") {
        events?.emit("admin", null, {
          action: words[0],
          target: words[1] ?? null,
          detail: "shell",
        });
      }
      const program = addAdminCommands(
        new Command("tracker>").usage("<command> [options]").exitOverride()
          .addHelpText("after", "\nquit, exit, Ctrl-D    stop the tracker"),
        async (_, use) => await use(store, signal),
      );
      await program.parseAsync(words, { from: "user" });
    },
  });
}
