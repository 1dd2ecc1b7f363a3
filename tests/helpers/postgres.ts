/**
 * A throwaway PostgreSQL cluster for tests: `initdb` into a temporary folder
 * (as the `postgres` user when the tests run as root, since PostgreSQL
 * refuses to run as root), started on a free loopback port, stopped and
 * removed afterwards. Where PostgreSQL is not installed, {@link startTestPostgres}
 * returns the reason instead, for the test to skip with.
 */
import postgres from "postgres";

/** A running test cluster; disposing it stops it and removes its folder. */
export interface TestPostgres extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  url: string;
  port: number;
  /** The folder of its Unix socket (`.s.PGSQL.PORT`), for libpq's `?host=DIR`. */
  socketDir: string;
  /** Creates a new empty database and returns its URL: one per test keeps tests apart. */
  newDatabase(): Promise<string>;
  /** Stops the server (as a crash would: immediate), keeping its files; `start` brings it back. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Where initdb and pg_ctl are: on PATH, or in the newest /usr/lib/postgresql/N/bin. */
function findBinDir(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isFile(`${dir}/initdb`) && isFile(`${dir}/pg_ctl`)) return dir;
  }
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")].map((entry) => entry.name)
      .filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const dir = `/usr/lib/postgresql/${version}/bin`;
      if (isFile(`${dir}/initdb`)) return dir;
    }
  } catch {
    // No Debian PostgreSQL.
  }
  return null;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** A port nobody listens on now (bound and released: good enough for a test). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function run(argv: string[], asPostgres: boolean): Promise<Deno.CommandOutput> {
  const [program, ...args] = asPostgres ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  return await new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
}

const text = (output: Deno.CommandOutput) =>
  (new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr)).trim();

/**
 * Starts a throwaway cluster, or returns why none can be had (a message to
 * skip the test with).
 *
 * @example
 * ```ts
 * const pg = await startTestPostgres();
 * if (typeof pg === "string") return console.log(`skipped: ${pg}`);
 * await using cluster = pg;
 * const url = await cluster.newDatabase();
 * ```
 */
export async function startTestPostgres(): Promise<TestPostgres | string> {
  const bin = findBinDir();
  if (bin === null) {
    return "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql)";
  }
  const root = Deno.uid() === 0;
  let uid: number | null = null;
  let gid: number | null = null;
  if (root) {
    const id = await run(["id", "-u", "postgres"], false).catch(() => null);
    const group = await run(["id", "-g", "postgres"], false).catch(() => null);
    if (!id?.success || !group?.success) return "running as root and there is no postgres user";
    uid = Number(text(id));
    gid = Number(text(group));
  }
  const dir = await Deno.makeTempDir({ prefix: "shoal-pg-" });
  if (uid !== null && gid !== null) await Deno.chown(dir, uid, gid);
  const data = `${dir}/data`;
  const init = await run([
    `${bin}/initdb`,
    "-D",
    data,
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ], root);
  if (!init.success) {
    await Deno.remove(dir, { recursive: true });
    return `initdb failed: ${text(init).split("\n").at(-1)}`;
  }
  const port = freePort();
  const options = `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off ` +
    "-c max_connections=200 -c shared_buffers=32MB";
  const ctl = (...args: string[]) => run([`${bin}/pg_ctl`, "-D", data, ...args], root);
  const start = async () => {
    const started = await ctl("-o", options, "-l", `${dir}/log`, "-w", "-t", "60", "start");
    if (!started.success) throw new Error(`pg_ctl start failed: ${text(started)}`);
  };
  const stop = async () => {
    await ctl("-m", "immediate", "-w", "stop");
  };
  try {
    await start();
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    return (error as Error).message;
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let databases = 0;
  return {
    url,
    port,
    socketDir: dir,
    async newDatabase() {
      const name = `shoal_test_${++databases}`;
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await sql.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    async [Symbol.asyncDispose]() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
