/**
 * Admin is a role on an existing account: an admin may use the tracker's
 * dashboard and /api/v1, by logging in there or with an API token. Tokens are
 * shown once and kept only as their SHA-256.
 */
import { ShoalError } from "../protocol/errors.ts";
import type { TrackerStore } from "./store.ts";
import { hashToken, newToken } from "./tokens.ts";

/** Every API token starts so, to be recognisable in a secret scanner or a config file. */
export const API_TOKEN_PREFIX = "shoal_api_";

async function accountNamed(store: TrackerStore, name: string): Promise<string> {
  const user = await store.getUser(name);
  if (!user) {
    throw new ShoalError("NOT_FOUND", `no account named "${name}"`, {
      hint:
        `check the spelling; or they register first (peer.ts register ${name}), then run this again`,
    });
  }
  return user.username;
}

/** Makes `name` an admin; returns the username as registered. */
export async function grantAdmin(store: TrackerStore, name: string): Promise<string> {
  const username = await accountNamed(store, name);
  await store.setAdmin(username, true);
  return username;
}

/** Takes admin from `name`, with its API tokens; returns the username as registered. */
export async function revokeAdmin(store: TrackerStore, name: string): Promise<string> {
  const username = await accountNamed(store, name);
  await store.setAdmin(username, false);
  return username;
}

/** Issues a new API token for an admin; returns the token (stored only as its hash). */
export async function issueApiToken(
  store: TrackerStore,
  name: string,
): Promise<{ username: string; token: string }> {
  const username = await accountNamed(store, name);
  if (!await store.isAdmin(username)) {
    throw new ShoalError("INVALID_INPUT", `${username} is not an admin`, {
      hint: `grant it first: tracker.ts admin grant ${username}`,
    });
  }
  const token = API_TOKEN_PREFIX + newToken();
  await store.createApiToken(hashToken(token), username);
  return { username, token };
}
