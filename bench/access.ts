/**
 * What the live role check costs a signed-in request (issue 11, item 6). Discounts, payments and
 * audit ask `catalog.internal.access` (who the caller is, their roles on the event) on every
 * signed-in request. This measures, on a system of its own, a signed-in
 * `GET /v1/discount-codes/{id}` through the gateway (which asks it once) against that bus request
 * alone, sequentially (latency) and with 32 in flight (throughput), so the share of the check in
 * the whole request is known before anything replaces it.
 *
 * Run: `deno run -A bench/access.ts [--requests N]`.
 */
import { parseArgs } from "node:util";
import { Bus } from "@shared/bus.ts";
import { ensureDatabase } from "@shared/db.ts";
import { catalogInternal } from "@shared/subjects.ts";
import { startSystem } from "../scripts/start.ts";
import { percentile } from "./load.ts";
import {
  adminSession,
  benchSettings,
  dropDatabase,
  dropFactStream,
  resourceBody,
} from "./setup.ts";

interface Timing {
  p50Ms: number;
  p99Ms: number;
  /** Requests per second with 32 in flight. */
  rps: number;
}

async function time(once: () => Promise<unknown>, requests: number): Promise<Timing> {
  const latencies = new Float64Array(requests);
  for (let i = 0; i < requests; i++) {
    const began = performance.now();
    await once();
    latencies[i] = performance.now() - began;
  }
  latencies.sort();
  let left = requests;
  const began = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (left-- > 0) await once();
  }));
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    p50Ms: round(percentile(latencies, 0.5)),
    p99Ms: round(percentile(latencies, 0.99)),
    rps: Math.round(requests / ((performance.now() - began) / 1000)),
  };
}

/** An event and a code on it, as the admin; returns the admin's token and ids. */
async function seed(url: string, admin: { email: string; password: string }) {
  const { token, create } = await adminSession(url, admin);
  const event = await create(
    "/v1/events",
    resourceBody("event", {
      name: "Access",
      "starts-at": "2030-03-01T09:00:00Z",
      "ends-at": "2030-03-02T09:00:00Z",
    }),
  );
  const ofEvent = { event: { data: { type: "event", id: event.id } } };
  const ticket = await create(
    "/v1/tickets",
    resourceBody("ticket", { name: "Standard", type: "paid", price: "25.00" }, {
      relationships: ofEvent,
    }),
  );
  const code = await create(
    "/v1/discount-codes",
    resourceBody("discount-code", {
      code: "ACCESS",
      value: "5",
      type: "amount",
      "used-for": "ticket",
    }, {
      relationships: { ...ofEvent, tickets: { data: [{ type: "ticket", id: ticket.id }] } },
    }),
  );
  const [, payload] = token.split(".");
  const sub = String(JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))).sub);
  return { token, eventId: event.id, codeId: code.id, userId: sub };
}

export async function runAccessBench(requests = 2000) {
  const settings = benchSettings("access_");
  await ensureDatabase(settings.databaseUrl);
  const system = await startSystem({ env: settings.env, output: false, timeoutMs: 120_000 });
  const bus = await Bus.connect({ url: settings.natsUrl, prefix: settings.prefix });
  try {
    const seeded = await seed(system.url, settings.admin);
    const headers = { Authorization: `JWT ${seeded.token}` };
    const viaGateway = () =>
      fetch(`${system.url}/v1/discount-codes/${seeded.codeId}`, { headers }).then((r) => {
        if (r.status !== 200) throw new Error(`Cannot measure: status ${r.status}`);
        return r.arrayBuffer();
      });
    const check = () =>
      bus.request(catalogInternal.access, {
        actor: { id: seeded.userId },
        event: seeded.eventId,
      });
    const request = await time(viaGateway, requests);
    const access = await time(check, requests);
    return {
      request,
      access,
      latencyShare: Math.round(access.p50Ms / request.p50Ms * 100) / 100,
    };
  } finally {
    await bus.close();
    await system.stop();
    await dropDatabase(settings.databaseUrl).catch(() => {});
    await dropFactStream(settings.natsUrl, settings.prefix).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { requests: { type: "string", default: "2000" } },
  });
  console.log(JSON.stringify(await runAccessBench(Number(values.requests)), null, 2));
}
