import { Option } from "commander";

/** `--insecure-plaintext`, the same on both programs. */
export const PLAINTEXT_OPTION = () =>
  new Option(
    "--insecure-plaintext",
    "turn TLS off (for debugging and benchmarks only: passwords and files cross the network in clear)",
  ).env("SHOAL_INSECURE_PLAINTEXT");

/** Said on every start without TLS, so nobody runs that way by accident. */
export const PLAINTEXT_WARNING =
  "WARNING: TLS is off (--insecure-plaintext): passwords and file bytes cross the network in clear";
