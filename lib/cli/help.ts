/** Examples under every command's help, kept in one place so they read as a set. */
import type { Command } from "commander";
import { asTyped } from "../invocation.ts";

const PEER_EXAMPLES: Record<string, string[]> = {
  "": ["peer.ts --tracker 192.168.1.10:5050 login alice", "peer.ts fetch notes"],
  register: [
    "peer.ts register alice",
    "echo 'secret words' | peer.ts register alice --password-stdin",
  ],
  login: ["peer.ts login alice"],
  logout: ["peer.ts logout"],
  unregister: ["peer.ts unregister"],
  sessions: ["peer.ts sessions", "peer.ts sessions --json"],
  "sessions revoke": ["peer.ts sessions revoke 3f9a0c1b2d4e5f60"],
  "forget-tracker": ["peer.ts forget-tracker 192.168.1.10:5050"],
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
  "config set": ["peer.ts config set serve.port 6000"],
  "config unset": ["peer.ts config unset serve.port"],
  completions: ["peer.ts completions bash > ~/.local/share/bash-completion/completions/peer.ts"],
};

const TRACKER_EXAMPLES: Record<string, string[]> = {
  "": ["tracker.ts serve", "tracker.ts ping alice"],
  serve: ["tracker.ts serve", "tracker.ts serve --port 0 --db /var/lib/shoal/tracker.db"],
  ping: ["tracker.ts ping alice", "tracker.ts ping 192.168.1.21:6000 --json"],
  discover: ["tracker.ts discover alice", "tracker.ts discover alice --json"],
  peers: ["tracker.ts peers"],
  files: ["tracker.ts files --json"],
  completions: [
    "tracker.ts completions bash > ~/.local/share/bash-completion/completions/tracker.ts",
  ],
};

function withExamples(program: Command, examples: Record<string, string[]>): Command {
  // Examples are written with `peer.ts`: shown the way the user runs the program, they paste.
  const text = (lines: string[]) =>
    `\nExample${lines.length > 1 ? "s" : ""}:\n${
      lines.map((line) => `  $ ${asTyped(line)}`).join("\n")
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

/** Adds an example to the help of the peer program and each of its commands. */
export const withPeerExamples = (program: Command) => withExamples(program, PEER_EXAMPLES);

/** Adds an example to the help of the tracker program and each of its commands. */
export const withTrackerExamples = (program: Command) => withExamples(program, TRACKER_EXAMPLES);
