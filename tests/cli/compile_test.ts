/**
 * `deno task compile` builds single binaries. deno compile downloads its
 * runtime (denort) from the internet, which our machines cannot reach, so
 * this builds for the host only where DENORT_BIN names a local denort.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PEER_TS, tempDir, TRACKER_TS } from "../helpers/processes.ts";

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.log(
    "skipped tests/cli/compile_test.ts: deno compile needs its runtime (denort) from the " +
      "internet, unreachable here; set DENORT_BIN to a local denort to run it",
  );
}

/** The permissions the compile tasks grant, read from deno.json so the test checks those. */
async function taskFlags(program: "shoal-tracker" | "shoal-peer"): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const task: string = config.tasks["compile:linux-x64"];
  const part = task.split("&&").find((command) => command.includes(`/${program} `))!;
  return part.split(/\s+/).filter((word) => word.startsWith("--allow-"));
}

Deno.test({
  name: "compile - both programs build into binaries that run with the tasks' permissions",
  ignore: !denort,
  async fn() {
    await using dir = await tempDir("shoal-compile-");
    for (
      const [program, source] of [["shoal-tracker", TRACKER_TS], ["shoal-peer", PEER_TS]] as const
    ) {
      const flags = await taskFlags(program);
      assert.ok(!flags.includes("--allow-all"), `${program} must not get -A`);
      const output = join(dir.path, program);
      const compiled = await new Deno.Command(Deno.execPath(), {
        args: ["compile", ...flags, "--output", output, source],
        env: { DENORT_BIN: denort! },
      }).output();
      assert.equal(compiled.code, 0, new TextDecoder().decode(compiled.stderr));
      const version = await new Deno.Command(output, { args: ["--version"] }).output();
      assert.match(new TextDecoder().decode(version.stdout), new RegExp(`^${program} \\d`));
    }
  },
});

Deno.test("compile - every task that runs a program grants narrow permissions, never -A", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  for (const [name, task] of Object.entries(config.tasks)) {
    if (typeof task !== "string" || !/(tracker|peer)\.ts/.test(task) || name === "test") continue;
    assert.doesNotMatch(task, /(^|\s)(-A|--allow-all)(\s|$)/, `task ${name}`);
    if (/tracker\.ts/.test(task)) assert.match(task, /--allow-run=ping/, `task ${name}`);
  }
});
