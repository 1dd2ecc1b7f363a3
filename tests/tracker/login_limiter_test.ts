import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { LoginLimiter } from "../../lib/tracker/login_limiter.ts";

const ADDRESS = "192.0.2.7";
const T0 = 1_700_000_000_000;

/** Asserts that `check` refuses with RATE_LIMITED and a wait of exactly `seconds`. */
function assertLimited(
  limiter: LoginLimiter,
  username: string,
  address: string,
  now: number,
  seconds: number,
  what?: RegExp,
): void {
  assert.throws(
    () => limiter.check(username, address, now),
    (error: unknown) => {
      assert.ok(error instanceof ShoalError, `expected a ShoalError, got ${error}`);
      assert.equal(error.code, "RATE_LIMITED", error.message);
      assert.match(error.message, new RegExp(`try again in ${seconds} s$`));
      if (what) assert.match(error.message, what);
      return true;
    },
  );
}

/** Records `count` failed password checks for `username` at `now`, one after another. */
function fail(
  limiter: LoginLimiter,
  username: string,
  address: string,
  count: number,
  now: number,
): void {
  for (let i = 0; i < count; i++) limiter.begin(username, address, now).failed(now);
}

Deno.test("LoginLimiter - the first four failures for a user cost nothing", () => {
  const limiter = new LoginLimiter();
  limiter.check("alice", ADDRESS, T0);
  fail(limiter, "alice", ADDRESS, 4, T0);
  limiter.check("alice", ADDRESS, T0);
});

Deno.test("LoginLimiter - after five failures for a user from an address the check is RATE_LIMITED", () => {
  const limiter = new LoginLimiter();
  fail(limiter, "alice", ADDRESS, 5, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 1, new RegExp(`for alice from ${ADDRESS}`));
  // Letter case does not help.
  assertLimited(limiter, "ALICE", ADDRESS, T0, 1);
  // Another user from the same address is not affected.
  limiter.check("bob", ADDRESS, T0);
  // Once the wait is over, the next attempt may go ahead.
  limiter.check("alice", ADDRESS, T0 + 1000);
});

Deno.test("LoginLimiter - one address guessing does not lock the owner out from another", () => {
  const limiter = new LoginLimiter();
  // Thirty failures recorded without waiting, as from checks in parallel: 2^25 s, capped.
  for (let i = 0; i < 30; i++) limiter.failed("alice", ADDRESS, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 300);
  limiter.check("alice", "198.51.100.1", T0);
  limiter.begin("alice", "198.51.100.1", T0).succeeded();
  // Hours of slow guessing from the one address change nothing for the others.
  for (let minutes = 5; minutes <= 24 * 60; minutes += 5) {
    limiter.failed("alice", ADDRESS, T0 + minutes * 60_000);
  }
  limiter.check("alice", "198.51.100.1", T0 + 24 * 3600_000);
});

Deno.test("LoginLimiter - failures from ten addresses back a user off everywhere", () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < 9; i++) fail(limiter, "alice", `192.0.2.${i}`, 3, T0);
  limiter.check("alice", "198.51.100.1", T0);
  fail(limiter, "alice", "192.0.2.9", 1, T0);
  assertLimited(limiter, "alice", "198.51.100.1", T0, 1, /for alice from many addresses/);
  limiter.check("bob", "198.51.100.1", T0);
  // The limit on addresses can be set.
  const strict = new LoginLimiter({ freeAddressesPerUser: 2 });
  fail(strict, "alice", "192.0.2.1", 1, T0);
  fail(strict, "alice", "192.0.2.2", 1, T0);
  assertLimited(strict, "alice", "198.51.100.1", T0, 1, /many addresses/);
});

Deno.test("LoginLimiter - guessers on many addresses never lock the owner out of an address they logged in from", () => {
  const limiter = new LoginLimiter();
  const home = "198.51.100.1";
  limiter.begin("alice", home, T0).succeeded();
  for (let i = 0; i < 10; i++) fail(limiter, "Alice", `192.0.2.${i}`, 1, T0);
  assertLimited(limiter, "alice", "198.51.100.2", T0, 1, /for alice from many addresses/);
  limiter.check("alice", home, T0);
  limiter.check("ALICE", home, T0);
  // From there, alice's own mistakes still back off, as anyone's.
  fail(limiter, "alice", home, 5, T0);
  assertLimited(limiter, "alice", home, T0, 1, /for alice from 198\.51\.100\.1/);
});

Deno.test("LoginLimiter - only the last knownAddressesPerUser addresses of a user are remembered", () => {
  const limiter = new LoginLimiter({ knownAddressesPerUser: 2 });
  for (const address of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) {
    limiter.begin("alice", address, T0).succeeded();
  }
  for (let i = 0; i < 10; i++) fail(limiter, "alice", `192.0.2.${i}`, 1, T0);
  assertLimited(limiter, "alice", "198.51.100.1", T0, 1, /many addresses/);
  limiter.check("alice", "198.51.100.2", T0);
  limiter.check("alice", "198.51.100.3", T0);
});

Deno.test("LoginLimiter - the message counts the seconds still to wait, rounded up", () => {
  const limiter = new LoginLimiter({ baseDelayMs: 10_000 });
  fail(limiter, "alice", ADDRESS, 5, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 10);
  assertLimited(limiter, "alice", ADDRESS, T0 + 1, 10);
  assertLimited(limiter, "alice", ADDRESS, T0 + 1000, 9);
  assertLimited(limiter, "alice", ADDRESS, T0 + 9_999, 1);
  limiter.check("alice", ADDRESS, T0 + 10_000);
});

Deno.test("LoginLimiter - each further failure doubles the wait", () => {
  const limiter = new LoginLimiter();
  fail(limiter, "alice", ADDRESS, 5, T0);
  let now = T0;
  for (const seconds of [1, 2, 4, 8, 16, 32]) {
    assertLimited(limiter, "alice", ADDRESS, now, seconds);
    now += seconds * 1000;
    limiter.check("alice", ADDRESS, now);
    limiter.failed("alice", ADDRESS, now);
  }
  assertLimited(limiter, "alice", ADDRESS, now, 64);
});

Deno.test("LoginLimiter - a success resets the user's backoff", () => {
  const limiter = new LoginLimiter();
  // Seven failures recorded at once (say, checked in parallel): a wait of 2^2 s.
  for (let i = 0; i < 7; i++) limiter.failed("alice", ADDRESS, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 4);
  limiter.succeeded("alice", ADDRESS);
  limiter.check("alice", ADDRESS, T0);
  // The count starts again: four more failures are free, the fifth waits one second.
  fail(limiter, "alice", ADDRESS, 4, T0);
  limiter.check("alice", ADDRESS, T0);
  limiter.failed("alice", ADDRESS, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 1);
});

Deno.test("LoginLimiter - a success in another letter case resets the user too", () => {
  const limiter = new LoginLimiter();
  fail(limiter, "Alice", ADDRESS, 5, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 1);
  limiter.succeeded("ALICE", ADDRESS);
  limiter.check("alice", ADDRESS, T0);
});

Deno.test("LoginLimiter - twenty failures from one address back off across usernames", () => {
  const limiter = new LoginLimiter();
  // Four failures for each of five users: no user reaches its own limit.
  for (let user = 0; user < 5; user++) fail(limiter, `user${user}`, ADDRESS, 4, T0);
  for (let user = 0; user < 5; user++) limiter.check(`user${user}`, "198.51.100.1", T0);
  // Twenty failures from the address: a fresh name from it has to wait too.
  assertLimited(limiter, "newcomer", ADDRESS, T0, 1, new RegExp(`from ${ADDRESS}`));
  limiter.check("newcomer", "198.51.100.1", T0);
  limiter.check("newcomer", ADDRESS, T0 + 1000);
  limiter.failed("newcomer", ADDRESS, T0 + 1000);
  assertLimited(limiter, "someone", ADDRESS, T0 + 1000, 2);
});

Deno.test("LoginLimiter - the per-user and per-address limits can be set", () => {
  const limiter = new LoginLimiter({ freePerUser: 2, freePerAddress: 3 });
  fail(limiter, "alice", ADDRESS, 2, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 1, /for alice/);
  limiter.check("bob", ADDRESS, T0);
  limiter.failed("bob", ADDRESS, T0);
  assertLimited(limiter, "carol", ADDRESS, T0, 1, new RegExp(`from ${ADDRESS}`));
});

Deno.test("LoginLimiter - maxDelayMs caps the wait", () => {
  const limiter = new LoginLimiter({ maxDelayMs: 10_000 });
  fail(limiter, "alice", ADDRESS, 5, T0);
  let now = T0;
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    const error = (() => {
      try {
        limiter.check("alice", ADDRESS, now);
      } catch (caught) {
        return caught as ShoalError;
      }
      throw new Error("expected RATE_LIMITED");
    })();
    const seconds = Number(/try again in (\d+) s/.exec(error.message)![1]);
    waits.push(seconds);
    now += seconds * 1000;
    limiter.failed("alice", ADDRESS, now);
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 10, 10, 10, 10]);
});

Deno.test("LoginLimiter - the default cap is five minutes", () => {
  const limiter = new LoginLimiter();
  fail(limiter, "alice", ADDRESS, 5, T0);
  // Failures recorded without waiting, as a tracker would after its checks: 2^20 s uncapped.
  for (let i = 0; i < 20; i++) limiter.failed("alice", ADDRESS, T0);
  assertLimited(limiter, "alice", ADDRESS, T0, 300);
  limiter.check("alice", ADDRESS, T0 + 300_000);
});

Deno.test("LoginLimiter - a success does not wash away an address's failures", () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < 19; i++) {
    // Guess at someone else's account, then log into one's own, again and again.
    limiter.begin(`victim${i}`, ADDRESS, T0).failed(T0);
    limiter.begin("mallory", ADDRESS, T0).succeeded();
  }
  fail(limiter, "victim19", ADDRESS, 1, T0);
  assertLimited(limiter, "someone", ADDRESS, T0, 1, new RegExp(`from ${ADDRESS}`));
});

Deno.test("LoginLimiter - failures older than forgetAfterMs are forgotten", () => {
  const limiter = new LoginLimiter({ forgetAfterMs: 60_000 });
  fail(limiter, "alice", ADDRESS, 4, T0);
  // Long after: one more failure starts a fresh count instead of blocking.
  fail(limiter, "alice", ADDRESS, 1, T0 + 3_600_000);
  limiter.check("alice", ADDRESS, T0 + 3_600_000);
});

Deno.test("LoginLimiter - checks under way are not failures, so a burst of correct logins passes", () => {
  const limiter = new LoginLimiter();
  const attempts = Array.from({ length: 30 }, () => limiter.begin("alice", ADDRESS, T0));
  for (const attempt of attempts) attempt.succeeded();
  limiter.check("alice", ADDRESS, T0);
});

Deno.test("LoginLimiter - an attempt counts once however often it is settled", () => {
  const limiter = new LoginLimiter();
  const attempt = limiter.begin("alice", ADDRESS, T0);
  for (let i = 0; i < 10; i++) attempt.failed(T0);
  attempt.abandon();
  fail(limiter, "alice", ADDRESS, 3, T0);
  limiter.check("alice", ADDRESS, T0);
});

Deno.test("LoginLimiter - a parallel burst of guesses waits its turn, and stops at the fifth failure", async () => {
  const limiter = new LoginLimiter();
  const clock = () => T0;
  const attempts = Array.from({ length: 12 }, () => limiter.acquire("alice", ADDRESS, clock));
  // Five may be checked at once (the failures still free); the others wait, refused by nobody yet.
  const first = await Promise.all(attempts.slice(0, 5));
  assert.deepEqual(limiter.inFlight("alice", ADDRESS), { user: 5, address: 5 });
  for (const attempt of first) attempt.failed(T0);
  for (const waiting of attempts.slice(5)) {
    await assert.rejects(waiting, (error: unknown) => {
      assert.ok(error instanceof ShoalError && error.code === "RATE_LIMITED", String(error));
      return true;
    });
  }
  assert.deepEqual(limiter.inFlight("alice", ADDRESS), { user: 0, address: 0 });
});

Deno.test("LoginLimiter - thirty correct logins acquired at once all go through", async () => {
  const limiter = new LoginLimiter();
  let peak = 0;
  await Promise.all(Array.from({ length: 30 }, async () => {
    const attempt = await limiter.acquire("alice", ADDRESS, () => T0);
    peak = Math.max(peak, limiter.inFlight("alice", ADDRESS).user);
    await Promise.resolve();
    attempt.succeeded();
  }));
  assert.equal(peak, 5);
  limiter.check("alice", ADDRESS, T0);
});

Deno.test("LoginLimiter - another address is never held behind a burst from one", async () => {
  const limiter = new LoginLimiter();
  const clock = () => T0;
  const burst = await Promise.all(
    Array.from({ length: 5 }, () => limiter.acquire("alice", ADDRESS, clock)),
  );
  const owner = await limiter.acquire("alice", "198.51.100.1", clock);
  owner.succeeded();
  for (const attempt of burst) attempt.abandon();
});
