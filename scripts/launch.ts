/**
 * How each process is launched: the `deno run` arguments in front of its main.ts. Only the
 * gateway has flags of its own: V8's `--optimize-for-size`, so that its response cache
 * (CACHE_MAX_BYTES) is most of what it holds (issue 11: RSS under CACHE_MAX_BYTES + 64 MiB).
 * Without it V8 grows the young generation to ~50 MiB under load and leaves the old generation
 * half empty; with it a gateway holds ~65 MiB less after 200,000 distinct URLs, for ~25 % more
 * CPU per cache hit (bench/memory_probe.ts; figures in the README, Capacity).
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
