/**
 * The gateway, plus a memory report on SIGUSR2 (for bench/memory_probe.ts): Deno.memoryUsage(),
 * V8's heap statistics and each heap space, written as one JSON line to MEMORY_PROBE_FILE.
 */
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";
import "../gateway/main.ts";

const file = Deno.env.get("MEMORY_PROBE_FILE");
if (file) {
  Deno.addSignalListener("SIGUSR2", () => {
    const spaces = Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [s.space_name, {
        size: s.space_size,
        used: s.space_used_size,
        physical: s.physical_space_size,
      }]),
    );
    const report = { usage: Deno.memoryUsage(), heap: getHeapStatistics(), spaces };
    Deno.writeTextFileSync(file, JSON.stringify(report) + "\n");
  });
}
