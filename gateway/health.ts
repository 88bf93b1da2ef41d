/**
 * `GET /health`: asks NATS service discovery how many instances of each expected service answer,
 * all at once, and says 503 naming the missing ones.
 */
import type { Handler } from "hono";
import type { Bus } from "@shared/bus.ts";
import type { GatewayEnv } from "./env.ts";

export interface HealthReport {
  status: "ok" | "unavailable";
  services: Record<string, { instances: number }>;
  missing?: string[];
}

/** Counts the running instances of each service on this bus prefix. */
export async function checkHealth(bus: Bus, services: readonly string[]): Promise<HealthReport> {
  const counts = await Promise.all(
    services.map(async (name) => (await bus.discover(name).catch(() => [])).length),
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
