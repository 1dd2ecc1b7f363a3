import assert from "node:assert/strict";
import { WarningLimiter } from "../../lib/protocol/warning_limiter.ts";

/** A limiter writing into `lines`, on a clock the test moves by hand. */
function limiter(burst: number, intervalMs: number) {
  const lines: string[] = [];
  const clock = { now: 0 };
  const warnings = new WarningLimiter((line) => lines.push(line), {
    burst,
    intervalMs,
    now: () => clock.now,
  });
  return { warnings, lines, clock };
}

Deno.test("WarningLimiter - writes the first burst of one kind per interval and holds back the rest", () => {
  const { warnings, lines } = limiter(3, 1000);
  for (let i = 0; i < 50; i++) warnings.warn("refused", `refused ${i}`);
  assert.deepEqual(lines, ["refused 0", "refused 1", "refused 2"]);
});

Deno.test("WarningLimiter - the next interval's first line says how many were held back", () => {
  const { warnings, lines, clock } = limiter(2, 1000);
  for (let i = 0; i < 10; i++) warnings.warn("idle", `idle ${i}`);
  clock.now = 1000;
  warnings.warn("idle", "idle again");
  warnings.warn("idle", "and again");
  assert.deepEqual(lines, [
    "idle 0",
    "idle 1",
    "idle again (and 8 more like it, not shown)",
    "and again",
  ]);
});

Deno.test("WarningLimiter - each kind has a budget of its own", () => {
  const { warnings, lines } = limiter(1, 1000);
  for (let i = 0; i < 5; i++) {
    warnings.warn("refused", `refused ${i}`);
    warnings.warn("accept", `accept ${i}`);
  }
  assert.deepEqual(lines, ["refused 0", "accept 0"]);
});
