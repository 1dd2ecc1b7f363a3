/**
 * `deno task bench`: runs the benchmarks, prints a table, and writes
 * `bench/results/latest.json` and `bench/results/latest.svg`.
 *
 *   deno task bench [--quick] [--only NAME[,NAME]]
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { renderChart } from "./chart.ts";
import { folderBenchmark } from "./folder.ts";
import { hashingBenchmark } from "./hashing.ts";
import {
  type Benchmark,
  describeMachine,
  type Entry,
  loadAverage,
  renderTable,
  writeResults,
} from "./results.ts";
import { runCleanups } from "./resources.ts";
import { singleSourceBenchmark } from "./single_source.ts";
import { swarmBenchmark } from "./swarm.ts";
import { flashCrowdBenchmark } from "./flash_crowd.ts";
import { rateLimitBenchmark } from "./rate_limit.ts";
import { trackerLoadBenchmark } from "./tracker_load.ts";
import { trackerPostgresBenchmark } from "./tracker_postgres.ts";

const BENCHMARKS: Benchmark[] = [
  singleSourceBenchmark,
  swarmBenchmark,
  flashCrowdBenchmark,
  rateLimitBenchmark,
  trackerLoadBenchmark,
  trackerPostgresBenchmark,
  hashingBenchmark,
  folderBenchmark,
];

const USAGE = `Usage: deno task bench [--quick] [--only NAME[,NAME]]

Runs Shoal's benchmarks against baselines taken in the same run, prints a table, and writes
bench/results/latest.json and bench/results/latest.svg.

Options:
  --quick             small sizes, for a smoke run (the full sizes take several minutes)
  --only NAME[,NAME]  run only these benchmarks
  -h, --help          show this help

Benchmarks:
${BENCHMARKS.map((b) => `  ${b.name.padEnd(14)} ${b.description}`).join("\n")}

Example:
  deno task bench --quick --only single-source,hashing
`;

function parseFlags(args: string[]): { quick: boolean; only: Benchmark[] } | null {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const names = values.only?.split(",").map((name) => name.trim()).filter(Boolean);
  const unknown = names?.filter((name) => !BENCHMARKS.some((b) => b.name === name)) ?? [];
  if (unknown.length) {
    throw new Error(
      `unknown benchmark ${unknown.join(", ")}; choose from ${
        BENCHMARKS.map((b) => b.name).join(", ")
      }`,
    );
  }
  return {
    quick: values.quick,
    only: names ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS,
  };
}

async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (flags === null) {
    console.log(USAGE);
    return 0;
  }
  const machine = describeMachine(flags.quick);
  console.log(
    `${machine.cpu}, ${machine.cores} cores, ${
      (machine.memoryBytes / 2 ** 30).toFixed(1)
    } GiB, ${machine.kernel}, Deno ${machine.deno}${flags.quick ? " (quick)" : ""}; ` +
      `load average ${machine.loadAverageStart.join(", ")}`,
  );
  // Ctrl-C still removes the namespaces and temporary files made so far; the run stops there.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let cleaning: Promise<void> | null = null;
  const interrupted = () => {
    console.error("\ninterrupted: cleaning up");
    cleaning ??= runCleanups().then(() => Deno.exit(130));
  };
  for (const signal of signals) Deno.addSignalListener(signal, interrupted);
  const entries: Entry[] = [];
  let failed = 0;
  for (const benchmark of flags.only) {
    if (cleaning) break;
    console.log(`\n== ${benchmark.name}: ${benchmark.description}`);
    const started = performance.now();
    try {
      const found = await benchmark.run({
        quick: flags.quick,
        log: (line) => console.log(line),
      });
      entries.push(...found);
    } catch (error) {
      failed++;
      console.error(`${benchmark.name} failed: ${(error as Error).stack ?? error}`);
    }
    console.log(`   (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }

  // Interrupted: the clean-up exits once it is done; nothing else may exit first.
  if (cleaning) return await new Promise<never>(() => {});
  machine.loadAverageEnd = loadAverage();
  console.log(`\n${renderTable(entries)}`);
  console.log(
    `\nload average (1, 5, 15 min): ${machine.loadAverageStart.join(", ")} at the start, ` +
      `${machine.loadAverageEnd.join(", ")} at the end, on ${machine.cores} cores`,
  );
  const folder = fileURLToPath(new URL("./results/", import.meta.url));
  await Deno.mkdir(folder, { recursive: true });
  await writeResults(`${folder}latest.json`, { machine, entries });
  await Deno.writeTextFile(`${folder}latest.svg`, renderChart(entries, machine));
  console.log(`\nwrote ${folder}latest.json and latest.svg`);
  const missed = entries.filter((e) => e.met === false).map((e) => e.name);
  if (missed.length) console.log(`targets missed: ${missed.join("; ")}`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
