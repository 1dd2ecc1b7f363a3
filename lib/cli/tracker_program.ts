/** The tracker's command line: `serve` (tracker_serve.ts), the admin commands and `identity`. */
import { Command } from "commander";
import { PROTOCOL_VERSION } from "../protocol/messages.ts";
import type { TrackerStore } from "../tracker/store.ts";
import { createTrackerIdentity } from "../identity/tracker_identity.ts";
import { SHOAL_VERSION } from "../version.ts";
import { addAdminCommands } from "./admin_commands.ts";
import { addAdminRoleCommands } from "./admin_role_commands.ts";
import { addCompletionsCommand } from "./completions.ts";
import { withTrackerExamples } from "./help.ts";
import { fingerprintOf } from "../identity/certificate.ts";
import { asTyped, commandName, completionNames, isInstalled, quoteWords } from "../invocation.ts";
import { DB_OPTION, openTrackerStore } from "./tracker_database.ts";
import { addServeCommand } from "./tracker_serve.ts";
import { UsageError } from "./errors.ts";
import { isPostgresUrl } from "../tracker/postgres_connection.ts";
import { PostgresTrackerStore } from "../tracker/postgres_store.ts";

/** Builds the tracker program. */
export function buildTrackerProgram(): Command {
  const program = new Command(commandName("tracker"))
    .description("Shoal tracker: accounts and the index of who shares what")
    .version(
      `${
        isInstalled() ? commandName("tracker") : "shoal-tracker"
      } ${SHOAL_VERSION} (protocol ${PROTOCOL_VERSION})`,
    )
    .showSuggestionAfterError(true)
    .exitOverride();

  addServeCommand(program);

  const withDatabase = async (
    command: Command,
    use: (store: TrackerStore) => void | Promise<void>,
  ) => {
    const { db } = command.opts<{ db: string }>();
    await using store = await openTrackerStore(db, { mustExist: true });
    await use(store);
  };
  addAdminCommands(program, withDatabase, () => [DB_OPTION()]);
  addAdminRoleCommands(program, withDatabase, () => [DB_OPTION()]);

  const identity = program.command("identity")
    .description("the keys every process of one tracker shares");
  identity.command("init")
    .description("make a TLS certificate and key and a ticket-signing key in a new folder")
    .requiredOption("--out <dir>", "the folder to make them in (created; must not hold one yet)")
    .action(async (options: { out: string }) => {
      const made = await createTrackerIdentity(options.out);
      console.log(`tracker identity made in ${options.out}`);
      console.log(`TLS certificate fingerprint: ${fingerprintOf(made.tls.certificate)}`);
      console.log(
        asTyped(
          `copy the folder to every tracker machine and start each with: tracker.ts serve --identity ${
            quoteWords([options.out])
          }`,
        ),
      );
    });
  identity.command("forget")
    .description(
      "with PostgreSQL: forget the identity the tracker's processes serve with, so that the next " +
        "process to serve records its own (a deliberate change of identity: stop them all first)",
    )
    .addOption(DB_OPTION())
    .action(async (options: { db: string }) => {
      if (!isPostgresUrl(options.db)) {
        throw new UsageError(
          "identity forget is for a PostgreSQL --db: a SQLite tracker's identity is its key files",
        );
      }
      await using store = await PostgresTrackerStore.open(options.db, { mustExist: true });
      console.log(
        await store.forgetIdentity()
          ? "identity forgotten: the next tracker process to serve records its own"
          : "no identity was recorded",
      );
    });
  return withTrackerExamples(addCompletionsCommand(program, completionNames("tracker")));
}
