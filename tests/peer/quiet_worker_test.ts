/**
 * A worker whose module fails to load says so in a message, and Deno prints
 * nothing about it; one that loads gets every message, those sent while it
 * loaded too, in order.
 */
import assert from "node:assert/strict";
import { isLoadFailure, startWorker } from "../../lib/peer/quiet_worker.ts";

const FAILING = "data:text/javascript,throw new Error('this worker cannot start')";

/** The first `count` messages of `worker`. */
function messages(worker: Worker, count: number): Promise<unknown[]> {
  const seen: unknown[] = [];
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      seen.push(event.data);
      if (seen.length === count) resolve(seen);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(event.message));
    };
  });
}

Deno.test("startWorker - a module that fails to load is said in a message", async () => {
  const worker = startWorker(FAILING);
  try {
    const [first] = await messages(worker, 1);
    assert.ok(isLoadFailure(first), JSON.stringify(first));
    assert.match(first.workerLoadFailed, /this worker cannot start/);
  } finally {
    worker.terminate();
  }
});

Deno.test("startWorker - a module that loads gets every message, those sent while it loaded too, in order", async () => {
  const echo = "data:text/javascript," +
    encodeURIComponent("self.onmessage = (event) => self.postMessage(event.data * 2);");
  const worker = startWorker(echo);
  try {
    const answered = messages(worker, 3);
    for (const n of [1, 2, 3]) worker.postMessage(n);
    assert.deepEqual(await answered, [2, 4, 6]);
  } finally {
    worker.terminate();
  }
});

Deno.test('startWorker - Deno prints nothing when the module fails to load (no "Uncaught (in worker)")', async () => {
  const module = new URL("../../lib/peer/quiet_worker.ts", import.meta.url).href;
  const script = `
    import { isLoadFailure, startWorker } from ${JSON.stringify(module)};
    const worker = startWorker(${JSON.stringify(FAILING)});
    worker.onmessage = (event) => {
      console.log(isLoadFailure(event.data) ? "said so" : "answered");
      worker.terminate();
    };
  `;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  assert.equal(code, 0, text.decode(stderr));
  assert.equal(text.decode(stdout), "said so\n");
  assert.equal(text.decode(stderr), "");
});
