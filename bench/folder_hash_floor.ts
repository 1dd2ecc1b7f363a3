/**
 * The runtime's own floor for publishing a folder of small files: the
 * plainest Deno program that does what a publish cannot skip and nothing
 * else. It walks the tree (a listing and an `lstat` a file), and on one
 * worker a core reads every file whole, checks it is as the walk saw it
 * (one `lstat` after the read) and hashes it: the SHA-256 of its bytes and
 * of its one-piece manifest (its content id), in batches of 128 files (on
 * this thread where the folder has under 1,024, as a publish does). No
 * home, no folder manifest, no tracker, no progress, no path checks. The
 * folder benchmark runs it as a separate process, the way it runs rsync, to
 * tell what Shoal costs from what the runtime costs.
 *
 *   deno run -A bench/folder_hash_floor.ts DIR
 *     prints {"files", "bytes", "seconds"}: seconds from the program's start (workers
 *     started, tree walked, every file hashed), Deno's own start-up not included
 */
const started = performance.now();
const BATCH = 128;

interface Batch {
  paths: string[];
  sizes: number[];
}

/** Files queued before workers start: below this, starting one costs more than it saves. */
const WORKERS_AT = 1024;
const cores = Math.max(1, navigator.hardwareConcurrency || 1);
let workers: Worker[] = [];
const queued: Batch[] = [];
let sent = 0;
let answered = 0;
let bytes = 0;
let files = 0;
const done = Promise.withResolvers<void>();
let walked = false;

function startWorkers(): void {
  workers = Array.from({ length: cores }, () => {
    const worker = new Worker(new URL("./folder_hash_floor_worker.ts", import.meta.url).href, {
      type: "module",
    });
    worker.onmessage = (event: MessageEvent<{ hashed: number }>) => {
      answered++;
      files += event.data.hashed;
      if (walked && answered === sent) done.resolve();
    };
    worker.onerror = (event) => done.reject(event.error ?? new Error(event.message));
    return worker;
  });
  for (const waiting of queued.splice(0)) post(waiting);
}

function post(ready: Batch): void {
  workers[sent++ % workers.length].postMessage(ready);
}

let batch: Batch = { paths: [], sizes: [] };
const send = () => {
  if (batch.paths.length === 0) return;
  if (workers.length > 0) post(batch);
  else {
    queued.push(batch);
    // As a publish does: workers only for a folder with enough files to pay for them.
    if (cores > 1 && queued.length * BATCH >= WORKERS_AT) startWorkers();
  }
  batch = { paths: [], sizes: [] };
};

/** Walks `dir` in name order, without following links; regular files go to the workers. */
function walk(dir: string): void {
  const names = [];
  for (const entry of Deno.readDirSync(dir)) names.push(entry.name);
  names.sort();
  for (const name of names) {
    const path = `${dir}/${name}`;
    const info = Deno.lstatSync(path);
    if (info.isDirectory) walk(path);
    else if (info.isFile) {
      batch.paths.push(path);
      batch.sizes.push(info.size);
      bytes += info.size;
      if (batch.paths.length === BATCH) send();
    }
  }
}

walk(Deno.args[0]);
send();
walked = true;
if (workers.length === 0) {
  // Too few files for workers: hashed here, as a publish does.
  const { hashBatch } = await import("./folder_hash_floor_worker.ts");
  for (const waiting of queued.splice(0)) files += hashBatch(waiting);
  done.resolve();
} else if (answered === sent) done.resolve();
await done.promise;
for (const worker of workers) worker.terminate();
console.log(JSON.stringify({ files, bytes, seconds: (performance.now() - started) / 1000 }));
