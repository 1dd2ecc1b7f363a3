/** Questions to the person at the terminal: hidden passwords and numbered choices. */
import process from "node:process";
import { ShoalError } from "../protocol/errors.ts";
import { UsageError } from "./errors.ts";

/**
 * The prompt library, loaded on first use: most commands never ask, and
 * loading it costs every command's start a few tens of milliseconds.
 */
function prompts(): Promise<typeof import("@inquirer/prompts")> {
  return import("@inquirer/prompts");
}

/** Whether a person can be asked: stdin and stdout are a terminal. */
export function canAsk(): boolean {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
}

/**
 * Runs one prompt so that Ctrl-D cancels it like Ctrl-C (the prompt library
 * otherwise ignores end-of-input and waits forever).
 */
async function ask<V>(prompt: (context: { signal: AbortSignal }) => Promise<V>): Promise<V> {
  const controller = new AbortController();
  const onData = (data: Uint8Array) => {
    if (data.includes(0x04)) controller.abort();
  };
  process.stdin.on("data", onData);
  try {
    return await prompt({ signal: controller.signal });
  } finally {
    process.stdin.off("data", onData);
  }
}

/** Reads the first line of stdin, for `--password-stdin`. */
export async function readStdinLine(): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  const reader = Deno.stdin.readable.getReader();
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return text.split(/\r?\n/)[0];
}

/** Where a password comes from: stdin (`--password-stdin`) or a hidden prompt. */
export interface PasswordSource {
  fromStdin: boolean;
}

/**
 * Reads a password without echo, or from stdin; `confirm` asks twice, as
 * registering does, and `validate` (a new password's rules: true, or what
 * is wrong) is checked at the first prompt.
 */
export async function readPassword(
  source: PasswordSource,
  confirm = false,
  validate?: (text: string) => true | string,
): Promise<string> {
  if (source.fromStdin) return await readStdinLine();
  if (!canAsk()) {
    throw new UsageError("no terminal to ask for the password on: pass --password-stdin");
  }
  const { password } = await prompts();
  const askOnce = () =>
    ask((context) => password({ message: "Password:", toggleMask: false }, context));
  let first = await askOnce();
  // A new password's rules (`validate`) are checked at once, and it is asked for again (at
  // most twice more), rather than after it was typed twice. Not the prompt's own `validate`:
  // that keeps the refused text in the hidden line, and what is typed next is added to it.
  for (let retries = 2; validate; retries--) {
    const verdict = validate(first);
    if (verdict === true) break;
    if (retries === 0) throw new ShoalError("INVALID_INPUT", verdict);
    console.error(`${verdict}; type another`);
    first = await askOnce();
  }
  if (confirm) {
    const again = await ask((context) =>
      password({ message: "Password again:", toggleMask: false }, context)
    );
    if (again !== first) {
      throw new ShoalError("INVALID_INPUT", "the two passwords do not match", {
        hint: "nothing was sent; run the same command again and type one password twice",
      });
    }
  }
  return first;
}

/** Asks for a whole number from `min` to `max`; Enter takes `preset`. */
export async function chooseNumber(
  message: string,
  min: number,
  max: number,
  preset: number,
): Promise<number> {
  const { input } = await prompts();
  const answer = await ask((context) =>
    input({
      message: `${message} [${min}-${max}]`,
      default: String(preset),
      validate: (text) => {
        const n = Number(text);
        return Number.isInteger(n) && n >= min && n <= max
          ? true
          : `enter a number from ${min} to ${max}`;
      },
    }, context)
  );
  return Number(answer);
}
