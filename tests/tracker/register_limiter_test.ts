import assert from "node:assert/strict";
import { ShoalError } from "../../lib/protocol/errors.ts";
import { RegisterLimiter } from "../../lib/tracker/register_limiter.ts";

const T0 = 1_700_000_000_000;

function assertLimited(take: () => void, seconds: number, where: RegExp): void {
  assert.throws(take, (error: unknown) => {
    assert.ok(error instanceof ShoalError, String(error));
    assert.equal(error.code, "RATE_LIMITED");
    assert.match(error.message, where);
    assert.match(error.message, new RegExp(`try again in ${seconds} s$`));
    return true;
  });
}

Deno.test("RegisterLimiter - an address gets a burst of ten, then one account a minute", () => {
  const limiter = new RegisterLimiter();
  for (let i = 0; i < 10; i++) limiter.take("192.0.2.1", T0);
  assertLimited(() => limiter.take("192.0.2.1", T0), 60, /from your address/);
  assertLimited(() => limiter.take("192.0.2.1", T0 + 30_000), 30, /from your address/);
  limiter.take("192.0.2.1", T0 + 60_000);
  assertLimited(() => limiter.take("192.0.2.1", T0 + 60_000), 60, /from your address/);
});

Deno.test("RegisterLimiter - one address's flood leaves other addresses their share", () => {
  const limiter = new RegisterLimiter();
  for (let i = 0; i < 10; i++) limiter.take("192.0.2.1", T0);
  assert.throws(() => limiter.take("192.0.2.1", T0));
  limiter.take("192.0.2.2", T0);
});

Deno.test("RegisterLimiter - many addresses together are bounded in total", () => {
  const limiter = new RegisterLimiter({ burstTotal: 10, intervalTotalMs: 2_000 });
  for (let i = 0; i < 10; i++) limiter.take(`192.0.2.${i}`, T0);
  assertLimited(() => limiter.take("198.51.100.1", T0), 2, /on this tracker/);
  limiter.take("198.51.100.1", T0 + 2_000);
});

Deno.test("RegisterLimiter - a refused attempt takes nothing from either bucket", () => {
  const limiter = new RegisterLimiter({ burstPerAddress: 1, burstTotal: 2 });
  limiter.take("192.0.2.1", T0);
  for (let i = 0; i < 10; i++) assert.throws(() => limiter.take("192.0.2.1", T0));
  // The total still has its second account for someone else.
  limiter.take("192.0.2.2", T0);
});
