/**
 * CPU time per request, per process, read from Linux's /proc: where a request's cost goes on
 * each hop (load generator, gateway, NATS, catalog, Postgres). On a machine whose cores are all
 * busy this explains the throughput ratio better than the ratio itself, and it is steadier when
 * other work shares the machine. Elsewhere than Linux it reports nothing.
 */
import { databaseOf, withDatabase } from "@shared/postgres_url.ts";
import postgres from "postgres";

/** Role name -> CPU seconds used so far. */
export type CpuSnapshot = Map<string, number>;

const TICKS_PER_SECOND = 100;

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

export function cpuSeconds(pid: string): number {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return 0;
  // Fields after "(comm)": state is field 3, utime 14 and stime 15 (1-based).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The processes of a run, by the script they run, and the role each plays. */
const scripts = [
  ["gateway/main.ts", "gateway"],
  ["services/catalog/main.ts", "catalog"],
  ["services/discounts/main.ts", "discounts"],
  ["services/payments/main.ts", "payments"],
  ["services/audit/main.ts", "audit"],
  ["bench/baseline.ts", "baseline"],
  ["bench/cache_baseline.ts", "baseline"],
  ["bench/discounts_baseline.ts", "baseline"],
  ["bench/bare.ts", "bare"],
  ["bench/hono_floor.ts", "floor"],
  ["bench/bus_floor.ts", "bus floor"],
] as const;

/** Finds this run's processes: the children by their bus prefix, NATS, Postgres backends. */
export async function findProcesses(
  options: { prefix: string; databaseUrl: string },
): Promise<Map<string, string[]>> {
  const roles = new Map<string, string[]>([["load generator", [String(Deno.pid)]]]);
  const add = (role: string, pid: string) => roles.set(role, [...roles.get(role) ?? [], pid]);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/proc")];
  } catch {
    return new Map();
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = readText(`/proc/${entry.name}/cmdline`)?.replaceAll("\0", " ") ?? "";
    if (cmdline.includes("nats-server")) add("nats-server", entry.name);
    const environ = readText(`/proc/${entry.name}/environ`) ?? "";
    if (!environ.includes(`\0BUS_PREFIX=${options.prefix}\0`)) continue;
    for (const [script, role] of scripts) {
      if (cmdline.includes(script)) add(role, entry.name);
    }
  }
  const name = databaseOf(options.databaseUrl);
  const sql = postgres(withDatabase(options.databaseUrl, "postgres"), {
    max: 1,
    onnotice: () => {},
  });
  try {
    const rows = await sql`select pid from pg_stat_activity where datname = ${name}`;
    for (const row of rows) add("postgres", String(row.pid));
  } finally {
    await sql.end();
  }
  return roles;
}

/** CPU seconds used so far by each role's processes. */
export function cpuSnapshot(processes: Map<string, string[]>): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const [role, pids] of processes) {
    snapshot.set(role, pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0));
  }
  return snapshot;
}

/** Adds what each role used between `before` and `after` to `into`. */
export function addCpu(into: CpuSnapshot, before: CpuSnapshot, after: CpuSnapshot): void {
  for (const [role, seconds] of after) {
    into.set(role, (into.get(role) ?? 0) + seconds - (before.get(role) ?? 0));
  }
}

/** Milliseconds of CPU per request for each role that used any, largest first. */
export function perRequest(used: CpuSnapshot, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  const sorted = [...used].filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]);
  for (const [role, seconds] of sorted) {
    out[role] = Math.round((seconds * 1000 / requests) * 1000) / 1000;
  }
  return out;
}
