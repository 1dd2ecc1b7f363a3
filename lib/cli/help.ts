/** Examples under every command's help, kept in one place so they read as a set. */
import type { Command } from "commander";
import { asTyped, commandName, commandPrefix } from "../invocation.ts";

const PEER_EXAMPLES: Record<string, string[]> = {
  // A first session, in order: what a newcomer types after installing.
  "": [
    "peer.ts config set tracker 192.168.1.10:5050   # only where no tracker announces itself",
    "peer.ts register alice",
    "peer.ts login alice",
    "peer.ts publish notes ~/lectures/week3.pdf",
    "peer.ts serve",
    "peer.ts search note",
    "peer.ts fetch notes",
  ],
  register: [
    "peer.ts register alice",
    "echo 'secret words' | peer.ts register alice --password-stdin",
  ],
  login: ["peer.ts login alice"],
  logout: ["peer.ts logout"],
  unregister: ["peer.ts unregister"],
  sessions: ["peer.ts sessions", "peer.ts sessions --json"],
  "sessions revoke": ["peer.ts sessions revoke 3f9a0c1b2d4e5f60"],
  "forget-tracker": [
    "peer.ts forget-tracker 192.168.1.10:5050",
    "peer.ts forget-tracker 192.168.1.10:5050,192.168.1.11:5050",
  ],
  trackers: ["peer.ts trackers", "peer.ts trackers --json"],
  publish: [
    "peer.ts publish ~/lectures/week3.pdf",
    "peer.ts publish notes ~/lectures/week3.pdf",
    "peer.ts publish ~/lectures",
  ],
  ls: ["peer.ts ls lectures", "peer.ts ls lectures --json"],
  unpublish: ["peer.ts unpublish notes"],
  view: ["peer.ts view", "peer.ts view --json"],
  search: ["peer.ts search lecture"],
  fetch: [
    "peer.ts fetch notes",
    "peer.ts fetch notes --from alice --output ~/Downloads/",
    "peer.ts fetch notes --json",
    "peer.ts fetch lectures --only 'week3/**' --only '*.pdf'",
    "peer.ts fetch shoal:<content id from publish or view --json>",
  ],
  downloads: ["peer.ts downloads"],
  cancel: ["peer.ts cancel notes"],
  serve: ["peer.ts serve", "peer.ts serve --port 6000 --advertise 192.168.1.21"],
  shell: ["peer.ts shell"],
  config: ["peer.ts config set tracker 192.168.1.10:5050", "peer.ts config list"],
  "config list": ["peer.ts config list"],
  "config get": ["peer.ts config get tracker"],
  "config set": [
    "peer.ts config set serve.port 6000",
    "peer.ts config set tracker 192.168.1.10:5050,192.168.1.11:5050",
  ],
  "config unset": ["peer.ts config unset serve.port"],
  completions: [
    "mkdir -p ~/.local/share/bash-completion/completions && peer.ts completions bash > ~/.local/share/bash-completion/completions/COMMAND_NAME",
  ],
};

const TRACKER_EXAMPLES: Record<string, string[]> = {
  "": [
    "tracker.ts serve",
    "tracker.ts peers",
    "tracker.ts ping alice",
    "tracker.ts admin grant alice   # alice may now log in on the dashboard",
  ],
  serve: [
    "tracker.ts serve",
    "tracker.ts serve --port 0 --db /var/lib/shoal/tracker.db",
    "tracker.ts serve --db postgres://shoal@db.example:5432/shoal --identity /etc/shoal/tracker-identity",
    "tracker.ts serve --name lab-1",
    "tracker.ts serve --http-port 8443 --log-format json",
  ],
  ping: ["tracker.ts ping alice", "tracker.ts ping 192.168.1.21:6000 --json"],
  discover: ["tracker.ts discover alice", "tracker.ts discover alice --json"],
  peers: ["tracker.ts peers"],
  files: ["tracker.ts files --json", "tracker.ts files --db postgres://shoal@db.example/shoal"],
  identity: ["tracker.ts identity init --out /etc/shoal/tracker-identity"],
  "identity init": ["tracker.ts identity init --out /etc/shoal/tracker-identity"],
  admin: ["tracker.ts admin grant alice", "tracker.ts admin token alice"],
  "admin grant": ["tracker.ts admin grant alice"],
  "admin revoke": ["tracker.ts admin revoke alice"],
  "admin token": ["tracker.ts admin token alice > alice.token"],
  completions: [
    "mkdir -p ~/.local/share/bash-completion/completions && tracker.ts completions bash > ~/.local/share/bash-completion/completions/COMMAND_NAME",
  ],
};

function withExamples(
  program: Command,
  examples: Record<string, string[]>,
  name: string,
): Command {
  // Examples are written with `peer.ts`: shown the way the user runs the program, they paste.
  // A completion script is saved under the name the command is typed as.
  const text = (lines: string[]) =>
    `\nExample${lines.length > 1 ? "s" : ""}:\n${
      lines.map((line) => `  $ ${asTyped(line.replace("COMMAND_NAME", name))}`).join("\n")
    }`;
  if (examples[""]) program.addHelpText("after", text(examples[""]));
  for (const command of program.commands) {
    const lines = examples[command.name()];
    if (lines) command.addHelpText("after", text(lines));
    for (const sub of command.commands) {
      const subLines = examples[`${command.name()} ${sub.name()}`];
      if (subLines) sub.addHelpText("after", text(subLines));
    }
  }
  return program;
}

/**
 * After a usage error (an unknown command or option, a missing argument),
 * names the `--help` that lists what the command takes, as the user runs it:
 * commander's own message says only what was wrong.
 */
export function withUsageHints(program: Command, script: "peer.ts" | "tracker.ts"): Command {
  const hint = (path: string, what: string) =>
    asTyped(`hint: \`${script} ${path}--help\` lists ${what}`);
  // Inside a shell, commands are typed bare and `help` lists them.
  program.showHelpAfterError(
    commandPrefix(script === "peer.ts" ? "peer" : "tracker") === ""
      ? "hint: `help` lists the commands"
      : hint("", "the commands and the global options"),
  );
  for (const command of program.commands) {
    command.showHelpAfterError(hint(`${command.name()} `, "its options and examples"));
    for (const sub of command.commands) {
      sub.showHelpAfterError(
        hint(`${command.name()} ${sub.name()} `, "its options and examples"),
      );
    }
  }
  return program;
}

/** Adds an example (and a usage hint) to the help of the peer program and each of its commands. */
export const withPeerExamples = (program: Command) =>
  withUsageHints(withExamples(program, PEER_EXAMPLES, commandName("peer")), "peer.ts");

/** Adds an example (and a usage hint) to the help of the tracker program and each of its commands. */
export const withTrackerExamples = (program: Command) =>
  withUsageHints(withExamples(program, TRACKER_EXAMPLES, commandName("tracker")), "tracker.ts");
