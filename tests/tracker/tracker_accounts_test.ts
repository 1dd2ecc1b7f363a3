/** Accounts and sessions through a real tracker in this process: limits, expiry, revocation. */
import assert from "node:assert/strict";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { CHEAP_COST, startTestTracker } from "../helpers/tracker.ts";
import { shoalError } from "../helpers/errors.ts";

const PASSWORD = "correct horse battery";
const DAY = 86_400_000;

Deno.test("Tracker - thirty simultaneous correct logins from one address all succeed", async () => {
  await using server = await startTestTracker({
    passwords: new PasswordHasher({ cost: CHEAP_COST, maxRunning: 2 }),
  });
  const first = await server.connect();
  await first.call("register", { username: "alice", password: PASSWORD });
  const clients = await Promise.all(Array.from({ length: 30 }, () => server.connect()));
  const logins = await Promise.all(
    clients.map((client) => client.call("login", { username: "alice", password: PASSWORD })),
  );
  assert.equal(logins.length, 30);
  assert.ok(logins.every((login) => login.username === "alice"));
  assert.equal(new Set(logins.map((login) => login.token)).size, 30);
  // scrypt never ran more than its bound at once, however many logins came together.
  assert.equal(server.passwords.peakRunning, 2);
});

Deno.test("Tracker - five wrong passwords from one address leave the owner free to log in from another", async () => {
  // Dual stack: 127.0.0.1 and ::1 are two hosts to the tracker.
  await using server = await startTestTracker({ host: "::" });
  const owner = await server.connect("::1");
  await owner.call("register", { username: "alice", password: PASSWORD });
  const attacker = await server.connect("127.0.0.1");
  for (let i = 0; i < 5; i++) {
    await assert.rejects(
      attacker.call("login", { username: "alice", password: `wrong guess ${i}` }),
      shoalError("AUTH_FAILED"),
    );
  }
  await assert.rejects(
    attacker.call("login", { username: "alice", password: PASSWORD }),
    shoalError("RATE_LIMITED", /for alice from 127\.0\.0\.1; try again in \d+ s/),
  );
  const { username } = await owner.call("login", { username: "alice", password: PASSWORD });
  assert.equal(username, "alice");
});

Deno.test("Tracker - a register flood from one address is RATE_LIMITED; other addresses still register", async () => {
  await using server = await startTestTracker({ host: "::" });
  const flooder = await server.connect("127.0.0.1");
  for (let i = 0; i < 10; i++) {
    await flooder.call("register", { username: `bot${i}`, password: PASSWORD });
  }
  await assert.rejects(
    flooder.call("register", { username: "bot10", password: PASSWORD }),
    shoalError("RATE_LIMITED", /too many new accounts from your address; try again in \d+ s/),
  );
  assert.equal(await server.store.getUser("bot10"), null);
  const other = await server.connect("::1");
  await other.call("register", { username: "carol", password: PASSWORD });
  assert.equal((await server.store.getUser("carol"))?.username, "carol");
});

Deno.test("Tracker - a session unused past the idle limit is refused on resume", async () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  await using server = await startTestTracker({ sessionIdleMs: 30 * DAY, now: () => now });
  const client = await server.connect();
  await client.call("register", { username: "alice", password: PASSWORD });
  const { token } = await client.call("login", { username: "alice", password: PASSWORD });
  // Used within the limit, the session lives on, and each use starts the count again.
  now += 29 * DAY;
  assert.deepEqual(await (await server.connect()).call("resume", { token }), { username: "alice" });
  now += 29 * DAY;
  assert.deepEqual(await (await server.connect()).call("resume", { token }), { username: "alice" });
  now += 30 * DAY + 1;
  await assert.rejects(
    (await server.connect()).call("resume", { token }),
    shoalError("AUTH_REQUIRED", /expired after 30 days unused/),
  );
  // It is gone for good, not just refused once.
  assert.equal((await server.store.sessionsOf("alice")).length, 0);
});

Deno.test("Tracker - sessions are listed for their owner and a revoked one cannot resume", async () => {
  await using server = await startTestTracker();
  const laptop = await server.connect();
  await laptop.call("register", { username: "alice", password: PASSWORD });
  await laptop.call("login", { username: "alice", password: PASSWORD });
  const desktop = await server.connect();
  const { token: desktopToken } = await desktop.call("login", {
    username: "alice",
    password: PASSWORD,
  });
  const bob = await server.connect();
  await bob.call("register", { username: "bob", password: PASSWORD });
  await bob.call("login", { username: "bob", password: PASSWORD });

  const { sessions } = await laptop.call("sessions", {});
  assert.equal(sessions.length, 2, "only alice's own sessions");
  assert.deepEqual(sessions.map((session) => session.address), ["127.0.0.1", "127.0.0.1"]);
  const current = sessions.filter((session) => session.current);
  assert.equal(current.length, 1);
  const other = sessions.find((session) => !session.current)!;
  assert.match(other.id, /^[0-9a-f]{16}$/);
  assert.ok(Date.parse(other.created) <= Date.parse(other.lastSeen));

  // Bob cannot revoke alice's session: to him it does not exist.
  await assert.rejects(bob.call("revoke", { id: other.id }), shoalError("NOT_FOUND"));

  assert.deepEqual(await laptop.call("revoke", { id: other.id }), { current: false });
  await assert.rejects(desktop.call("heartbeat", {}), shoalError("AUTH_REQUIRED"));
  await assert.rejects(
    (await server.connect()).call("resume", { token: desktopToken }),
    shoalError("AUTH_REQUIRED"),
  );
  assert.equal((await laptop.call("sessions", {})).sessions.length, 1);

  // Revoking the session in use logs this connection out.
  assert.deepEqual(await laptop.call("revoke", { id: current[0].id }), { current: true });
  await assert.rejects(laptop.call("sessions", {}), shoalError("AUTH_REQUIRED"));
});

Deno.test("Tracker - sessions and revoke need a login", async () => {
  await using server = await startTestTracker();
  const client = await server.connect();
  await assert.rejects(client.call("sessions", {}), shoalError("AUTH_REQUIRED"));
  await assert.rejects(
    client.call("revoke", { id: "0123456789abcdef" }),
    shoalError("AUTH_REQUIRED"),
  );
});

Deno.test("Tracker - revoking the session a serving process uses takes it offline at once", async () => {
  await using server = await startTestTracker();
  const phone = await server.connect();
  await phone.call("register", { username: "alice", password: PASSWORD });
  await phone.call("login", { username: "alice", password: PASSWORD });
  const serving = await server.connect();
  await serving.call("login", { username: "alice", password: PASSWORD });
  await serving.call("announce", { port: 7000 });
  assert.equal((await server.store.getPeer("alice"))?.online, true);

  const { sessions } = await phone.call("sessions", {});
  const servingSession = sessions.find((session) => !session.current)!;
  await phone.call("revoke", { id: servingSession.id });
  assert.equal((await server.store.getPeer("alice"))?.online, false);
  await assert.rejects(serving.call("heartbeat", {}), shoalError("UNREACHABLE"));
  // The phone's own session is untouched.
  assert.equal((await phone.call("sessions", {})).sessions.length, 1);
});
