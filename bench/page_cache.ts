/**
 * The memory state a timed write starts from. On this benchmark's virtual
 * machine (a balloon with free page reporting: `page_reporting` on the
 * kernel's command line), memory the kernel has left free for a while is
 * handed back to the host, and the first write into such a page has the host
 * find and zero it again. Writing 1 GiB through the page cache
 * (`dd bs=1M count=1024 conv=fsync`) then took 1.4 to 3.1 s, 0.7 to 2.5 s of
 * it system time; once free memory is down to the kernel's watermarks, the
 * page cache recycles its own clean pages instead and the same write took
 * 0.7 to 0.8 s (0.3 to 0.4 s system), and with `oflag=direct`, no page cache
 * at all, 0.55 s: the disk itself is not what bounds it. So a 1 GiB fetch
 * that lands while there is free memory took 4 to 5.2 s (its process 2.6 to
 * 3.2 s of system time) and the same fetch a minute later 1.6 to 2.5 s (0.7
 * to 1.1 s), whatever code wrote it. Timed runs start instead from the state
 * a machine in use is in, its page cache filling what programs do not use:
 * {@link fillFreeMemory}.
 */
import { freeBytes } from "../lib/peer/disk_space.ts";

const MIB = 1024 * 1024;
/** Left free: above the kernel's watermarks (about 100 MiB here), below what a timed write needs. */
const LEAVE_FREE = 384 * MIB;
/** Free memory under this is left alone. */
const FILL_OVER = 512 * MIB;
/** Disk space the filler always leaves, beyond what its caller still means to write. */
const DISK_MARGIN = 4 * 1024 * MIB;
/** At most this at a time: a machine with far more free memory is not filled (a benchmark must end). */
const MAX_FILL = 32 * 1024 * MIB;
const CHUNK = 4 * MIB;

/** `MemFree` of /proc/meminfo in bytes; null where there is none. */
function memFree(): number | null {
  try {
    const match = /^MemFree:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/meminfo"));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Writes a new file in `dir` (kept: the benchmark's temporary folder goes at
 * its end) as large as the free memory less a few hundred MiB, and flushes it,
 * so that what is timed next writes into recycled page cache, as on a
 * machine in use, not into memory the host took back. A no-op where free
 * memory is low already, or cannot be read (not Linux); never more than 32
 * GiB at a time, nor into the last 4 GiB of the disk beyond `reserveBytes`,
 * what the benchmark still writes after it (its copies stay to the end:
 * without the reserve, one full run filled the disk and its next 1 GiB
 * fetch was refused for want of space). Returns the bytes
 * written. It takes no memory from other programs (clean page cache is
 * given up at once to whoever needs memory), but pushes older file pages out
 * of the cache.
 */
export async function fillFreeMemory(dir: string, reserveBytes = 0): Promise<number> {
  const free = memFree();
  if (free === null || free < FILL_OVER) return 0;
  const disk = await freeBytes(dir);
  const bytes = Math.min(free - LEAVE_FREE, (disk ?? 0) - DISK_MARGIN - reserveBytes, MAX_FILL);
  if (bytes < CHUNK) return 0;
  const chunk = new Uint8Array(CHUNK);
  const path = await Deno.makeTempFile({ dir, prefix: "page-cache-" });
  using file = await Deno.open(path, { write: true });
  const chunks = Math.floor(bytes / CHUNK);
  for (let i = 0; i < chunks; i++) {
    let at = 0;
    while (at < CHUNK) at += await file.write(chunk.subarray(at));
  }
  await file.syncData();
  return chunks * CHUNK;
}
