/**
 * A small disk of a test's own (a tmpfs of a few MiB mounted on a temp folder), to fill on purpose:
 * what a server does when its disk runs out. Mounting needs root (`canMountSmallDisk`); disposing
 * unmounts it and removes the folder.
 *
 * @example
 * ```ts ignore
 * await using disk = await mountSmallDisk(8 * MiB);
 * await disk.fill(16 * 1024); // all but 16 kB taken by a filler file
 * await disk.unfill();
 * ```
 */

/**
 * Whether a tmpfs can be mounted here: it needs CAP_SYS_ADMIN (root on a machine, not root in a
 * container by default), so it is tried once; tests that need one are ignored elsewhere.
 */
export const canMountSmallDisk = Deno.build.os === "linux" && Deno.uid() === 0 &&
  await mountSmallDisk(1024 * 1024).then(async (disk) => {
    await disk[Symbol.asyncDispose]();
    return true;
  }, () => false);

export interface SmallDisk extends AsyncDisposable {
  /** The folder it is mounted on. */
  path: string;
  /** Fills it with a filler file until only about `leaveBytes` are free. */
  fill(leaveBytes: number): Promise<void>;
  /** Removes the filler file again. */
  unfill(): Promise<void>;
}

async function run(command: string, args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command(command, { args }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  if (!success) throw new Error(`${command} ${args.join(" ")}: ${text(stderr)}`);
  return text(stdout);
}

/** Bytes free on the filesystem mounted at `path` (as `df` counts them). */
async function freeBytes(path: string): Promise<number> {
  const out = await run("df", ["--output=avail", "-B1", path]);
  return Number(out.split("\n").at(-1));
}

/** Mounts a tmpfs of `bytes` on a new temp folder. */
export async function mountSmallDisk(bytes: number): Promise<SmallDisk> {
  const path = await Deno.makeTempDir({ prefix: "oe-disk-" });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", path]);
  } catch (error) {
    await Deno.remove(path);
    throw error;
  }
  const filler = `${path}/filler`;
  return {
    path,
    fill: async (leaveBytes) => {
      const taken = Math.max(0, await freeBytes(path) - leaveBytes);
      await Deno.writeFile(filler, new Uint8Array(taken));
    },
    unfill: () => Deno.remove(filler).catch(() => {}),
    [Symbol.asyncDispose]: async () => {
      await run("umount", ["-l", path]).catch(() => {});
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}
