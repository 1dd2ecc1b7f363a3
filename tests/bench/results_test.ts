import assert from "node:assert/strict";
import { floorProgress, progress, renderChart } from "../../bench/chart.ts";
import { describeMachine, entry, formatTarget } from "../../bench/results.ts";

Deno.test("bench entry - a ratio target is judged on the figure over its same-run baseline", () => {
  const fetch = entry("single-source plaintext", 600, "MB/s", {
    baseline: 1000,
    target: { on: "ratio", min: 0.8 },
  });
  assert.equal(fetch.ratio, 0.6);
  assert.equal(fetch.met, false);
  assert.equal(entry("hashing", 900, "MB/s", { baseline: 1000, target: fetch.target }).met, true);
});

Deno.test("bench entry - a value target is judged on the figure itself, a maximum strictly", () => {
  const target = { on: "value" as const, max: 20 };
  assert.equal(entry("p99", 19.9, "ms", { target }).met, true);
  assert.equal(entry("p99", 20, "ms", { target }).met, false);
  assert.equal(formatTarget(target, "ms"), "< 20 ms");
});

Deno.test("bench entry - a figure that could not be measured never meets its target", () => {
  const target = { on: "value" as const, max: 10 };
  assert.equal(entry("tracker RSS per peer", NaN, "KiB", { target }).met, false);
  assert.equal(entry("no baseline", 5, "MB/s", { target: { on: "ratio", min: 0.5 } }).met, false);
  assert.equal(entry("untargeted", 5, "MB/s").met, null);
});

Deno.test("bench chart - shows every targeted figure as its progress towards the target", () => {
  const entries = [
    entry("swarm 8 sources", 69, "MB/s", { baseline: 100, target: { on: "ratio", min: 0.9 } }),
    entry("tracker lookup p99", 10, "ms", { target: { on: "value", max: 20 } }),
    entry("plainest Deno copy", 900, "MB/s", { baseline: 1000 }),
  ];
  assert.ok(Math.abs(progress(entries[0])! - 0.69 / 0.9) < 1e-9);
  assert.equal(progress(entries[1]), 2);
  assert.equal(progress(entries[2]), null);
  const svg = renderChart(entries, describeMachine(true));
  assert.match(svg, /^<svg /);
  assert.match(svg, /swarm 8 sources/);
  assert.match(svg, /tracker lookup p99/);
  assert.doesNotMatch(svg, /plainest Deno copy/, "figures without a target are not charted");
});

Deno.test("bench chart - marks where the runtime's own floor for the same work lies", () => {
  const fetch = entry("single-source TLS", 300, "MB/s", {
    baseline: 1000,
    target: { on: "ratio", min: 0.5 },
    floor: 350,
  });
  const memory = entry("tracker RSS per peer (TLS)", 19, "KiB", {
    target: { on: "value", max: 10 },
    floor: 15,
  });
  assert.ok(Math.abs(floorProgress(fetch)! - 0.7) < 1e-9, "0.35 of the baseline, of 0.5 wanted");
  assert.ok(Math.abs(floorProgress(memory)! - 10 / 15) < 1e-9);
  assert.equal(entry("unmeasured floor", 1, "KiB", { floor: NaN }).floor, undefined);
  const svg = renderChart([fetch, memory], describeMachine(true));
  assert.equal(svg.match(/stroke="black"/g)?.length, 2, "one tick per entry with a floor");
  assert.match(svg, /Deno 0\.350×/);
  assert.match(svg, /Deno 15\.0 KiB/);
});
