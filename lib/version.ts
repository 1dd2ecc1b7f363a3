/** The release of both programs, printed by `--version` and sent in `hello`. */
export const SHOAL_VERSION = "0.1.0";
