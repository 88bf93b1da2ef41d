/**
 * How each process is launched: the `deno run` arguments in front of its main.ts and the
 * environment beside its configuration. Only the gateway has settings of its own: V8's
 * `--optimize-for-size`, so that its response cache (CACHE_MAX_BYTES) is most of what it holds
 * (issue 11: RSS under CACHE_MAX_BYTES + 64 MiB), `--single-threaded-gc`,
 * `--initial-old-space-size=24`, and glibc's malloc held to two arenas and a fixed mmap threshold
 * (`launchEnv`; each: below). Without the flag, V8 grows the young generation to ~50 MiB under
 * load and leaves the old generation a third empty.
 * bench/memory_probe.ts, 200,000 distinct URLs, all configs in one run (2 cores, load average 3-5
 * from other work), with gateway/cache.ts's slab-packed bodies:
 *
 * | config                                            | idle    | 200k URLs | µs/hit   | µs/miss |
 * | ------------------------------------------------- | ------- | --------- | -------- | ------- |
 * | none                                              | 90 MiB  | 274 MiB   | 112 / 73 | 482     |
 * | `--optimize-for-size`                             | 80 MiB  | 125 MiB   | 117 / 103| 1005    |
 * | `--max-semi-space-size=1,--memory-saver-mode`     | 80 MiB  | 125 MiB   | 119 / 120| 966     |
 * | same + MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 | 78 MiB | 120 MiB | 117 / 121 | 977 |
 *
 * (µs/hit before / after the 200k misses.) Every config that keeps RSS under 128 MiB about
 * doubles the CPU per miss (V8 collects the old generation, a full cache of live entries, far
 * more often); none is cheaper than `--optimize-for-size`, so it stays. The malloc variables
 * are set since 2026-12-01 night (`launchEnv`, below).
 *
 * Again on another machine, 2026-12-01 afternoon (two runs of four configs each): the flag
 * 120–128 MiB, 342–388 µs per miss; `--max-semi-space-size=2,--heap-growing-percent=10`
 * 131–133 MiB (128–130 with MALLOC_ARENA_MAX=2), 219–249 µs; `--max-semi-space-size=4` 174 MiB,
 * 193 µs; the flag with `--max-semi-space-size=2` 121–124 MiB but still 385 µs. The flag's 0.5–1
 * MiB young generation also sets the p99 of never-cached reads at ordinary load
 * (bench/FINDINGS.md: 20–45 ms against 12–15 ms with the second config, signed-in, 2,000 req/s).
 *
 * `--single-threaded-gc` (2026-12-01 evening, a slower machine): V8 collects on the gateway's own
 * thread instead of waking helper threads for parallel scavenges and concurrent marking. With
 * `--optimize-for-size` it collects so often (a scavenge every few milliseconds under load) that
 * the helpers' wake-ups and hand-offs cost more than they saved on two cores shared with four other
 * processes: the gateway's CPU per signed-in read fell in 8 of 8 alternating pairs (by 1-20 %, 12 %
 * on average; the first three with the services on the flag too, which did not change theirs),
 * CPU per miss 417 -> 315 µs, RSS after 200k URLs 126 -> 125 MiB (bench/memory_probe.ts, both side
 * by side), p99 at a fixed rate unchanged.
 *
 * What `--optimize-for-size` costs, side by side (2026-12-01 night, same machine kind): two
 * gateways on one system under alternating signed-in load, 237 µs of CPU per request with it
 * against 164 µs with V8's defaults (154 against 113 µs without the slow-client relay). It stays
 * for memory only: five other flag sets (semi-space, heap growth, compaction on every full GC, no
 * memory pool) held 134–152 MiB after 200k URLs against its 124–127 (bench/FINDINGS.md, "The
 * gateway's collector on this machine").
 *
 * `--initial-old-space-size=24` (2026-12-05): under `--optimize-for-size` the old generation
 * starts with a limit of a few MiB above what lives in it, so the ~40 kB that each scavenge
 * promotes under load (reads in flight) set off a memory-reducing mark-compact about every half
 * second (`--trace-gc`: 40 in ~20 s of signed-in load, 3.5–3.7 ms pauses each, beside ~14 ms of
 * incremental steps), and with them the tail of never-cached reads. A larger first limit lets the
 * old generation collect from there down to ~11 MiB, less often, with the same pauses; once the
 * cache holds more, V8 sizes the limit from what lives as before. `bench/cache.ts --only
 * signed-in`, three pairs alternating with 24 and without: p99 1.92–2.19× against 2.24–2.64× (the
 * split's p99 12.7–13.2 ms against 14.6–15.2); with 32, 1.76–2.25× against 2.09–2.59×. RSS after
 * 200k URLs (`--only memory`, each run): without 121, 122, 125, 125 MiB; 24: 122, 122, 125; 32: 121,
 * 121, 123, 127, 127, 129 (once over the 128 target); 64: 148. 24 keeps the memory and most of the
 * tail (bench/FINDINGS.md, "The gateway's old generation and the split's tail").
 *
 * The gateway's malloc settings (`launchEnv`), glibc's, read when the process starts: at most two
 * arenas (the gateway's threads each got one, each holding freed memory of its own) and a fixed
 * mmap threshold, so that the response cache's 256 kB body slabs are mapped and unmapped whole
 * (with glibc's sliding threshold, the first slab freed moved it above the slab size and later
 * slabs came from the heap, which does not shrink). Side by side (bench/memory_probe.ts,
 * 2026-12-01 22:35 UTC, 200k URLs, zod no longer in the gateway): 122.5 MiB without, 116.5 MiB
 * with; CPU per miss 499 against 503 µs, per hit 34 against 34 µs.
 *
 * deno.json (`start:gateway`) and compose.yaml repeat these flags and settings;
 * scripts/launch_test.ts keeps them the same.
 *
 * @example
 * ```ts
 * import { denoRunArgs } from "./launch.ts";
 * denoRunArgs("gateway/main.ts"); // ["run", "-A", "--no-prompt", GATEWAY_V8_FLAGS, "gateway/main.ts"]
 * ```
 */

/** The gateway's V8 flags, as one `--v8-flags=` argument. */
export const GATEWAY_V8_FLAGS =
  "--v8-flags=--optimize-for-size,--single-threaded-gc,--initial-old-space-size=24";

/** The gateway's malloc settings (glibc's environment variables; why: above). */
export const GATEWAY_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "131072",
};

/** The environment `script` is launched with, beside the configuration (the gateway's malloc). */
export function launchEnv(script: string): Record<string, string> {
  return script === "gateway/main.ts" ? { ...GATEWAY_MALLOC_ENV } : {};
}

/** Deno's arguments that run `script` (a path from the repository root). */
export function denoRunArgs(script: string): string[] {
  const flags = script === "gateway/main.ts" ? [GATEWAY_V8_FLAGS] : [];
  return ["run", "-A", "--no-prompt", ...flags, script];
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` for one process: the operator's own attributes (`existing`) and a
 * `service.instance.id` of its own, unless they name one. Without it every instance of a service
 * exported one identity (`service.name` alone), so over OTLP their counters were one series that
 * jumped back and forth between them (found by a review with two catalogs). Deno reads it once,
 * when the process starts: whoever launches a process sets it (`deno task start`, the tests, and
 * through scripts/instance_id.ts the `start:<name>` tasks and compose.yaml: `INSTANCE_ID_ENV`).
 *
 * @example
 * ```ts
 * import { withInstanceId } from "./launch.ts";
 * withInstanceId("deployment.environment=prod"); // "deployment.environment=prod,service.instance.id=…"
 * ```
 */
export function withInstanceId(existing: string | undefined): string {
  if (existing && /(^|,)\s*service\.instance\.id=/.test(existing)) return existing;
  const id = `service.instance.id=${crypto.randomUUID()}`;
  return existing?.trim() ? `${existing},${id}` : id;
}

/**
 * The assignment in front of each `start:<name>` task's `deno run` (deno.json): the process's
 * `OTEL_RESOURCE_ATTRIBUTES` with an instance id of its own (scripts/instance_id.ts; the helper
 * runs with OTEL_DENO=false so that it exports nothing under the service's name itself).
 * compose.yaml's scripts/with_instance_id.sh runs the same. scripts/launch_test.ts checks both.
 */
export const INSTANCE_ID_ENV = "OTEL_RESOURCE_ATTRIBUTES=$(OTEL_DENO=false deno run " +
  "--allow-env=OTEL_RESOURCE_ATTRIBUTES scripts/instance_id.ts)";
