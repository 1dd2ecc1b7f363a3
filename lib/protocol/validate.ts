import type { z } from "zod";
import { ShoalError } from "./errors.ts";

/**
 * Checks user input against a protocol schema before anything is asked or
 * sent, failing with the schema's own rule ("a password needs at least 8
 * characters") as the message.
 */
export function check<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ShoalError("INVALID_INPUT", parsed.error.issues[0].message);
  return parsed.data;
}

/**
 * Characters that do not show as themselves: controls (C0, DEL, C1), format
 * characters (Unicode category Cf: zero-width spaces and joiners, bidi marks
 * and overrides, U+061C, the BOM, soft hyphen, ...), lone surrogates, line
 * and paragraph separators, the Hangul fillers, which render blank, and
 * every other default-ignorable code point (the combining grapheme joiner
 * U+034F, variation selectors, Khmer's invisible vowels, ...), which
 * terminals draw as nothing. `report\u200b.pdf` would look like `report.pdf`,
 * and U+202E turns `exe.pdf` around on screen.
 */
export const HIDDEN_CHARACTER =
  /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u115f\u1160\u3164\uffa0]/u;

const HIDDEN_CHARACTERS = new RegExp(HIDDEN_CHARACTER.source, "gu");

/**
 * `text` with every {@link HIDDEN_CHARACTER} shown as a `\u{..}` escape, so
 * a name from the network can neither drive a terminal nor disguise itself.
 * The CLI's `escapeForTerminal` is this; it lives here so that messages
 * built below the CLI (a refused path in lib/peer) can quote such names too.
 *
 * @example
 * ```ts
 * escapeHidden("bad\x1b[2Jpiece"); // "bad\\u{1b}[2Jpiece"
 * ```
 */
export function escapeHidden(text: string): string {
  return text.replace(HIDDEN_CHARACTERS, (char) => `\\u{${char.codePointAt(0)!.toString(16)}}`);
}

/**
 * The most UTF-8 bytes a name may have: most disks hold 255 bytes per file
 * name, and a download in progress adds `.shoal-part` (11 bytes) to it.
 */
export const MAX_NAME_BYTES = 244;

/** What Windows forbids in a file name, besides controls. */
const WINDOWS_FORBIDDEN = /[<>:"/\\|?*]/;
/** Device names Windows reserves, with any extension (`CON.txt`, `com1.tar.gz`). */
const WINDOWS_RESERVED = /^(CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³])(\.|$)/i;

/** `U+200B`: how a message names a character that may not show. */
function codePointOf(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * The rule a published name breaks, or null if it keeps them all. A name may
 * become a file name on any fetcher's disk and is shown in tables, so it holds
 * no path separator or character Windows forbids, nothing that does not show
 * as itself ({@link HIDDEN_CHARACTER}), does not end with a dot or any
 * space (Windows drops them, terminals hide them), fits a disk with
 * `.shoal-part` added ({@link MAX_NAME_BYTES}), and is not a reserved device name such as `CON` or
 * `LPT1.txt`. Names are refused rather than changed: a fetched file keeps
 * the name its owner published, the same on every system.
 */
export function fileNameProblem(name: string): string | null {
  if (name === "." || name === "..") return "a name cannot be '.' or '..'";
  const hidden = HIDDEN_CHARACTER.exec(name);
  if (hidden) {
    return `a name cannot contain ${
      codePointOf(hidden[0])
    } (control, invisible and text-direction characters can disguise a name)`;
  }
  const forbidden = WINDOWS_FORBIDDEN.exec(name);
  if (forbidden) {
    return `a name cannot contain '${forbidden[0]}' (nor any of / \\ < > : " | ? *)`;
  }
  // Any space at the end hides it (`report.pdf\u00a0` shows as `report.pdf`); Windows drops dots.
  if (/[.\s]$/u.test(name)) return "a name cannot end with '.' or a space";
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) {
    return `a name may have at most ${MAX_NAME_BYTES} bytes of UTF-8 (a disk holds 255 per name, ` +
      "and a download adds .shoal-part)";
  }
  const reserved = WINDOWS_RESERVED.exec(name);
  if (reserved) {
    return `a name cannot be ${reserved[1].toUpperCase()}, with or without an extension ` +
      "(Windows reserves CON, PRN, AUX, NUL, COM1-9 and LPT1-9)";
  }
  return null;
}
