/**
 * The name a tracker announces on the local network: its own, unless another
 * tracker announces it already, then the first free NAME-2, NAME-3, ...
 */
import assert from "node:assert/strict";
import { freeTrackerName } from "../../lib/tracker/announce.ts";

const other = (name: string, fingerprint = "SHA256:AA") => ({
  name,
  address: "10.0.0.5:5050",
  fingerprint,
});

Deno.test("freeTrackerName - a name nobody else announces is kept", () => {
  assert.equal(freeTrackerName("lab", [], "SHA256:BB"), "lab");
  assert.equal(freeTrackerName("lab", [other("lab-1"), other("library")], "SHA256:BB"), "lab");
});

Deno.test("freeTrackerName - a name another tracker announces becomes the first free NAME-N", () => {
  assert.equal(freeTrackerName("lab", [other("lab")], "SHA256:BB"), "lab-2");
  assert.equal(
    freeTrackerName("lab", [other("lab"), other("lab-2"), other("LAB-3")], "SHA256:BB"),
    "lab-4",
  );
  // DNS-SD compares names without regard to case.
  assert.equal(freeTrackerName("Lab", [other("lab")], "SHA256:BB"), "Lab-2");
});

Deno.test("freeTrackerName - this tracker's own fingerprint (another of its processes) is no conflict", () => {
  assert.equal(freeTrackerName("lab", [other("lab", "SHA256:BB")], "SHA256:BB"), "lab");
  // In plaintext nothing tells two trackers apart: one of the same name is another.
  assert.equal(
    freeTrackerName("lab", [{ name: "lab", address: "10.0.0.5:5050" }], undefined),
    "lab-2",
  );
});

Deno.test("freeTrackerName - a numbered name still fits in one DNS label (63 bytes)", () => {
  const long = "x".repeat(63);
  const name = freeTrackerName(long, [other(long)], "SHA256:BB");
  assert.equal(name, `${"x".repeat(61)}-2`);
  assert.equal(new TextEncoder().encode(name).length, 63);
});
