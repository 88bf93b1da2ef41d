/**
 * `GET /health`: asks NATS service discovery how many instances of each expected service answer,
 * all at once, and says 503 naming the missing ones.
 *
 * Under load instances answer a ping late: waiting 50 ms of silence (as discovery did) missed
 * running instances. Each check now waits until every instance seen in the last RECENT_MS has
 * answered (plus a short tail for new ones), bounded by MAX_WAIT_MS: a healthy system answers
 * as fast as its slowest instance, and a lost instance makes checks slow for RECENT_MS only.
 */
import type { Handler } from "hono";
import { createInbox, type Msg } from "@nats-io/nats-core";
import type { Bus, ServiceIdentity } from "@shared/bus.ts";
import type { GatewayEnv } from "./env.ts";

/** Longest wait for instances' answers. */
const MAX_WAIT_MS = 1_000;
/** After the expected count answered, how long more answers may take to still count. */
const TAIL_MS = 50;

/** How long an instance that answered once is waited for by later checks. */
const RECENT_MS = 10_000;

/** When each instance last answered, per bus prefix and service: what checks wait for. */
const seen = new Map<string, Map<string, number>>();

function recentlySeen(key: string): Map<string, number> {
  const instances = seen.get(key) ?? new Map<string, number>();
  seen.set(key, instances);
  const now = Date.now();
  for (const [id, at] of instances) if (now - at > RECENT_MS) instances.delete(id);
  return instances;
}

function identityOf(msg: Msg): ServiceIdentity | undefined {
  try {
    return msg.data.length ? JSON.parse(new TextDecoder().decode(msg.data)) : undefined;
  } catch {
    return undefined;
  }
}

/** Pings `$SRV.PING.<name>` and counts the distinct instances on this prefix that answer. */
export function countInstances(bus: Bus, name: string): Promise<number> {
  const known = recentlySeen(`${bus.prefix}/${name}`);
  const expected = Math.max(known.size, 1);
  const ids = new Set<string>();
  const inbox = createInbox();
  return new Promise((resolve) => {
    let tail: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      clearTimeout(cap);
      clearTimeout(tail);
      sub.unsubscribe();
      for (const id of ids) known.set(id, Date.now());
      resolve(ids.size);
    };
    const cap = setTimeout(finish, MAX_WAIT_MS);
    const sub = bus.nc.subscribe(inbox, {
      callback: (_error, msg) => {
        // 503: nobody listens on the subject at all.
        if (msg.headers?.code === 503) return finish();
        const identity = identityOf(msg);
        if (identity?.metadata?.prefix === bus.prefix) ids.add(identity.id);
        if (ids.size >= expected) {
          clearTimeout(tail);
          tail = setTimeout(finish, TAIL_MS);
        }
      },
    });
    bus.nc.publish(`$SRV.PING.${name}`, undefined, { reply: inbox });
  });
}

export interface HealthReport {
  status: "ok" | "unavailable";
  services: Record<string, { instances: number }>;
  missing?: string[];
}

/** Counts the running instances of each service on this bus prefix. */
export async function checkHealth(bus: Bus, services: readonly string[]): Promise<HealthReport> {
  const counts = await Promise.all(
    services.map((name) => countInstances(bus, name).catch(() => 0)),
  );
  const report: HealthReport = { status: "ok", services: {} };
  const missing: string[] = [];
  services.forEach((name, index) => {
    report.services[name] = { instances: counts[index] };
    if (counts[index] === 0) missing.push(name);
  });
  if (missing.length) {
    report.status = "unavailable";
    report.missing = missing;
  }
  return report;
}

/**
 * The `/health` handler.
 *
 * @example
 * ```ts ignore
 * app.get("/health", health({ bus, services: ["catalog"] }));
 * ```
 */
export function health(options: { bus: Bus; services: readonly string[] }): Handler<GatewayEnv> {
  const { bus, services } = options;
  return async function healthHandler(c) {
    const report = await checkHealth(bus, services);
    return c.json(report, report.status === "ok" ? 200 : 503);
  };
}
