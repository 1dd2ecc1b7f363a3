/** Small tmpfs mounts for full-disk tests (Linux, root). */

/** Why a size-limited tmpfs cannot be mounted here, or null when it can. */
export async function tmpfsUnavailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "tmpfs mounts need Linux";
  if (Deno.uid() !== 0) return "mounting a tmpfs needs root";
  const probe = await Deno.makeTempDir({ prefix: "shoal-tmpfs-probe-" });
  try {
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
      stderr: "piped",
    }).output();
    if (!mount.success) return `mount failed: ${new TextDecoder().decode(mount.stderr).trim()}`;
    await new Deno.Command("umount", { args: [probe] }).output();
    return null;
  } catch (error) {
    return `cannot run mount: ${(error as Error).message}`;
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

/**
 * Mounts a tmpfs of `size` (`mount -o size=`, say "4m") at `path`, made
 * here; disposing it unmounts it. Null, with nothing mounted, where that
 * cannot be done ({@link tmpfsUnavailable} says why).
 */
export async function mountTmpfs(path: string, size: string): Promise<AsyncDisposable | null> {
  await Deno.mkdir(path, { recursive: true });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path],
    stderr: "null",
  }).output().catch(() => null);
  if (!mount?.success) return null;
  return {
    [Symbol.asyncDispose]: async () => {
      await new Deno.Command("umount", { args: [path] }).output();
    },
  };
}
