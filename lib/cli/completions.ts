/**
 * Shell completion scripts, generated from the commander program itself so
 * they never drift from the real commands. They are static: a TAB costs no
 * process start, which matters for a program run through `deno run`. (The
 * npm completion libraries call the program back on every TAB, by a name on
 * PATH, which a Deno script is not.)
 */
import { singleQuote } from "../invocation.ts";
import type { Command, Option } from "commander";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = typeof SHELLS[number];

interface Spec {
  /**
   * `words` are what a command completes: its options, or fixed arguments;
   * `subcommands` (`config get`, `sessions revoke`) only right after it.
   */
  commands: { name: string; summary: string; subcommands: string[]; words: string[] }[];
  globalFlags: string[];
  /** Global flags that take a value: the word after them is not a command. */
  valueFlags: string[];
}

function longFlags(options: readonly Option[]): string[] {
  return options.map((option) => option.long).filter((flag): flag is string => !!flag);
}

function specOf(program: Command): Spec {
  const global = program.options;
  return {
    commands: program.commands.map((command) => ({
      name: command.name(),
      summary: command.summary() || command.description().split("\n")[0],
      subcommands: command.commands.map((sub) => sub.name()),
      words: [
        ...(command.name() === "completions" ? SHELLS : []),
        ...longFlags(command.options),
        "--help",
      ],
    })),
    globalFlags: [...new Set([...longFlags(global), "--help", "--version"])],
    valueFlags: longFlags(global.filter((option) => option.required || option.optional)),
  };
}

/** Where bash-completion and fish look for a user's completion scripts. */
const BASH_DIR = "~/.local/share/bash-completion/completions";
const FISH_DIR = "~/.config/fish/completions";

function bash(spec: Spec, names: string[], fn: string): string {
  const reply = (words: string[]) =>
    `COMPREPLY=($(compgen -W ${singleQuote(words.join(" "))} -- "$cur"))`;
  // A command's subcommands right after it only: `config get <TAB>` offers no `set`.
  const cases = spec.commands.map((command) =>
    command.subcommands.length === 0
      ? `    ${command.name}) ${reply(command.words)} ;;`
      : `    ${command.name}) if ((COMP_CWORD == at + 1)); then ${
        reply([...command.subcommands, ...command.words])
      }; else ${reply(command.words)}; fi ;;`
  );
  const top = [...spec.commands.map((command) => command.name), ...spec.globalFlags].join(" ");
  const skip = spec.valueFlags.join("|") || "--";
  return [
    // The folder is missing on a fresh account, and a shell's `>` does not create it.
    `# ${names[0]} completion for bash. Install: mkdir -p ${BASH_DIR} && ${
      names[0]
    } completions bash > ${BASH_DIR}/${names[0]}`,
    `${fn}() {`,
    `  local cur="\${COMP_WORDS[COMP_CWORD]}" command="" i at=0`,
    `  for ((i = 1; i < COMP_CWORD; i++)); do`,
    `    case "\${COMP_WORDS[i]}" in`,
    // bash splits 'host:port' at ':' (COMP_WORDBREAKS): a ':' and the word after it are a value.
    `      ${skip}|:|=) ((i++)) ;;`,
    `      -*) ;;`,
    `      *) command="\${COMP_WORDS[i]}"; at=$i; break ;;`,
    `    esac`,
    `  done`,
    `  case "$command" in`,
    `    "") COMPREPLY=($(compgen -W ${singleQuote(top)} -- "$cur")) ;;`,
    ...cases,
    `  esac`,
    `}`,
    `complete -o default -F ${fn} ${names.join(" ")}`,
    "",
  ].join("\n");
}

function fish(spec: Spec, names: string[]): string {
  const lines = [
    `# ${names[0]} completion for fish. Install: mkdir -p ${FISH_DIR} && ${
      names[0]
    } completions fish > ${FISH_DIR}/${names[0]}.fish`,
  ];
  const all = spec.commands.map((command) => command.name).join(" ");
  for (const name of names) {
    lines.push(`complete -c ${name} -f`);
    for (const command of spec.commands) {
      lines.push(
        `complete -c ${name} -n "not __fish_seen_subcommand_from ${all}" -a ${command.name} -d ${
          singleQuote(command.summary)
        }`,
      );
      if (command.subcommands.length > 0) {
        const subs = command.subcommands.join(" ");
        lines.push(
          `complete -c ${name} -n "__fish_seen_subcommand_from ${command.name}; and not ` +
            `__fish_seen_subcommand_from ${subs}" -a ${singleQuote(subs)}`,
        );
      }
      for (const word of command.words) {
        const what = word.startsWith("--") ? `-l ${word.slice(2)}` : `-a ${word}`;
        lines.push(`complete -c ${name} -n "__fish_seen_subcommand_from ${command.name}" ${what}`);
      }
    }
    for (const flag of spec.globalFlags) lines.push(`complete -c ${name} -l ${flag.slice(2)}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * The completion script for `shell`, completing subcommands and their
 * options for every name the program goes by (e.g. `peer.ts`, `shoal-peer`).
 *
 * @example
 * ```ts
 * console.log(completionScript(program, "bash", ["peer.ts", "shoal-peer"]));
 * ```
 */
export function completionScript(program: Command, shell: Shell, names: string[]): string {
  const spec = specOf(program);
  const fn = `_${names[names.length - 1].replace(/[^A-Za-z0-9]/g, "_")}`;
  switch (shell) {
    case "bash":
      return bash(spec, names, fn);
    case "zsh":
      // zsh runs bash completion functions through bashcompinit.
      return [
        `# ${names[0]} completion for zsh. Install: add 'source <(${
          names[0]
        } completions zsh)' to ~/.zshrc`,
        "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }",
        "autoload -U +X bashcompinit && bashcompinit",
        bash(spec, names, fn).split("\n").slice(1).join("\n"),
      ].join("\n");
    case "fish":
      return fish(spec, names);
  }
}

/** Adds `completions <shell>` to a program. */
export function addCompletionsCommand(program: Command, names: string[]): Command {
  program.command("completions <shell>")
    .description(`print a completion script for ${SHELLS.join(", ")}`)
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        program.error(`error: unknown shell "${shell}"; choose one of ${SHELLS.join(", ")}`, {
          exitCode: 2,
          code: "shoal.unknownShell",
        });
      }
      console.log(completionScript(program, shell as Shell, names));
    });
  return program;
}
