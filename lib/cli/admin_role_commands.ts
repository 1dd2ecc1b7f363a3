/**
 * `tracker.ts admin grant|revoke|token <user>`: who may use the tracker's
 * dashboard and /api/v1, on the tracker's database.
 */
import { type Command, Option } from "commander";
import { grantAdmin, issueApiToken, revokeAdmin } from "../tracker/admins.ts";
import type { TrackerStore } from "../tracker/store.ts";

/** Adds the `admin` command and its subcommands to `program`. */
export function addAdminRoleCommands(
  program: Command,
  withStore: (command: Command, use: (store: TrackerStore) => Promise<void>) => Promise<void>,
  extraOptions: () => Option[] = () => [],
): Command {
  const admin = program.command("admin")
    .description("who may use the dashboard and /api/v1: grant, revoke, token");
  const sub = (name: string) => {
    const command = admin.command(name);
    for (const option of extraOptions()) command.addOption(option);
    return command;
  };
  sub("grant <user>")
    .description("make an account an admin of the dashboard and /api/v1")
    .action((name: string, _: unknown, command: Command) =>
      withStore(command, async (store) => {
        const username = await grantAdmin(store, name);
        console.log(`${username} is an admin: they log in on the dashboard with their password`);
      })
    );
  sub("revoke <user>")
    .description("take admin from an account, with its API tokens")
    .action((name: string, _: unknown, command: Command) =>
      withStore(command, async (store) => {
        const username = await revokeAdmin(store, name);
        console.log(`${username} is no admin now; their API tokens are revoked`);
      })
    );
  sub("token <user>")
    .description("issue an API token for an admin (shown once; send it as Authorization: Bearer)")
    .action((name: string, _: unknown, command: Command) =>
      withStore(command, async (store) => {
        const { username, token } = await issueApiToken(store, name);
        console.log(token);
        console.error(
          `API token for ${username}: shown this once, kept only as its hash; ` +
            "send it as the header Authorization: Bearer TOKEN",
        );
      })
    );
  return program;
}
