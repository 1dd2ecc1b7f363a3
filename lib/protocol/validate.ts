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
