/**
 * How each process is launched: the `deno run` arguments in front of its main.ts. Only the
 * gateway has flags of its own: V8's `--optimize-for-size`, so that its response cache
 * (CACHE_MAX_BYTES) is most of what it holds (issue 11: RSS under CACHE_MAX_BYTES + 64 MiB).
 * Without it V8 grows the young generation to ~50 MiB under load and leaves the old generation
 * a third empty: after 40,000 distinct URLs (a full 64 MiB cache) a gateway held 198 MiB, with it
 * 131 MiB (136 MiB after 200,000), for ~25 % more CPU per cache hit and ~55 % more per miss
 * (bench/memory_probe.ts, all flag sets measured in one run).
 *
 * deno.json (`start:gateway`) and compose.yaml repeat these flags; scripts/launch_test.ts keeps
 * them the same.
 *
 * @example
 * ```ts
 * import { denoRunArgs } from "./launch.ts";
 * denoRunArgs("gateway/main.ts"); // ["run", "-A", "--no-prompt", "--v8-flags=--optimize-for-size", "gateway/main.ts"]
 * ```
 */

/** The gateway's V8 flags, as one `--v8-flags=` argument. */
export const GATEWAY_V8_FLAGS = "--v8-flags=--optimize-for-size";

/** Deno's arguments that run `script` (a path from the repository root). */
export function denoRunArgs(script: string): string[] {
  const flags = script === "gateway/main.ts" ? [GATEWAY_V8_FLAGS] : [];
  return ["run", "-A", "--no-prompt", ...flags, script];
}
