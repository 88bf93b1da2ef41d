/**
 * What a write costs the whole system, for capacity planning: `POST /v1/event-topics` through
 * the gateway at a fixed concurrency, then the wait until audit has recorded every fact, with
 * the CPU each process used meanwhile (gateway, catalog and its relay, audit, NATS, Postgres)
 * divided by the writes made. There is no single-process baseline here: this is the price of a
 * write, fact and activity included, not a comparison.
 *
 * Run: `deno task bench --only writes --cpu` (or `deno run -A bench/writes.ts`).
 */
import postgres from "postgres";
import { startSystem } from "../scripts/start.ts";
import { addCpu, type CpuSnapshot, cpuSnapshot, findProcesses, perRequest } from "./cpu.ts";
import { adminSession, benchSettings, dropDatabase, dropFactStream } from "./setup.ts";

export interface WritesBenchResult {
  writes: number;
  errors: number;
  rps: number;
  /** Milliseconds from the end of the load until audit had every activity. */
  drainMs: number;
  cpuMsPerRequest?: Record<string, number>;
}

/** Keeps `concurrency` writes in flight for `durationMs`; counts answers that were not 201. */
async function writeLoad(url: string, token: string, concurrency: number, durationMs: number) {
  const stopAt = performance.now() + durationMs;
  // Names unique across runs: a topic whose slug exists already is a 409.
  const run = crypto.randomUUID().slice(0, 8);
  let writes = 0;
  let errors = 0;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < stopAt; i++) {
      const response = await fetch(`${url}/v1/event-topics`, {
        method: "POST",
        headers: { "Content-Type": "application/vnd.api+json", Authorization: `JWT ${token}` },
        body: JSON.stringify({
          data: { type: "event-topic", attributes: { name: `Write ${run} ${w}-${i}` } },
        }),
      });
      await response.arrayBuffer();
      if (response.status === 201) writes++;
      else errors++;
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { writes, errors, elapsedMs: performance.now() - began };
}

/** Waits until audit has one activity per fact published (every topic made, plus the admin). */
async function drained(databaseUrl: string, atLeast: number): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    for (const giveUpAt = Date.now() + 120_000; Date.now() < giveUpAt;) {
      const [{ n }] = await sql`select count(*)::int as n from audit.activities`;
      if (n >= atLeast) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("Cannot measure writes: audit did not record every fact within 120 s");
  } finally {
    await sql.end();
  }
}

export async function runWritesBench(
  options: { concurrency?: number; durationMs?: number; cpu?: boolean; log?: boolean } = {},
): Promise<WritesBenchResult> {
  const { databaseUrl, natsUrl, prefix, admin, env } = benchSettings("writes_");
  const system = await startSystem({ env, output: options.log ?? false, timeoutMs: 120_000 });
  try {
    const { token } = await adminSession(system.url, admin);
    // Warm-up: connections, JIT, the audit consumer's first batches.
    const warm = await writeLoad(system.url, token, 4, 1_000);
    const processes = options.cpu ? await findProcesses({ prefix, databaseUrl }) : new Map();
    await drained(databaseUrl, warm.writes);
    const used: CpuSnapshot = new Map();
    const before = cpuSnapshot(processes);
    const run = await writeLoad(
      system.url,
      token,
      options.concurrency ?? 8,
      options.durationMs ?? 5000,
    );
    const loadEnd = performance.now();
    await drained(databaseUrl, warm.writes + run.writes);
    const drainMs = Math.round(performance.now() - loadEnd);
    addCpu(used, before, cpuSnapshot(processes));
    return {
      writes: run.writes,
      errors: run.errors,
      rps: Math.round(run.writes / (run.elapsedMs / 1000)),
      drainMs,
      cpuMsPerRequest: options.cpu ? perRequest(used, run.writes) : undefined,
    };
  } finally {
    await system.stop();
    await dropDatabase(databaseUrl).catch(() => {});
    await dropFactStream(natsUrl, prefix).catch(() => {});
  }
}

/** The result as text. */
export function formatWrites(result: WritesBenchResult): string {
  const lines = [
    "POST /v1/event-topics (fact published, recorded by audit)",
    `  ${result.writes} writes, ${result.rps} req/s, ${result.errors} errors; ` +
    `audit caught up ${result.drainMs} ms after the load`,
  ];
  if (result.cpuMsPerRequest) {
    const used = result.cpuMsPerRequest;
    const total = Object.values(used).reduce((a, b) => a + b, 0);
    const parts = Object.entries(used).map(([role, ms]) => `${role} ${ms.toFixed(3)}`);
    lines.push(`  CPU ms per write: ${total.toFixed(3)} = ${parts.join(" + ")}`);
  }
  return lines.join("\n");
}
