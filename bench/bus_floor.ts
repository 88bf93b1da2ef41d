/**
 * The floor under any gateway that forwards over our bus: `Deno.serve`, and for each signed-in
 * `GET /v1/events/{id}` the token's caller (verified once, then remembered, as the gateway does),
 * one `Bus.forward` to the catalog, and the reply's status and bytes as they come. No routing, no
 * media type, no metrics, no request id, no ETag, no relay, no completion with other services'
 * resources (`/health` answers 200 once it is up): what a signed-in read costs the split when its
 * gateway does nothing of its own beyond the one bus round trip it cannot skip. The cache
 * benchmark's signed-in part loads it against the gateway in alternating slices, to show how much
 * of issue 11's signed-in gap any work on the gateway could close (bench/FINDINGS.md).
 * `BUS_FLOOR_RAW=1` sends the request with nats.js alone (no deadline headers, no resend when
 * nobody listens, no metering): what our bus helper adds to nats.js. It runs on V8's defaults, not
 * the gateway's flags (`--optimize-for-size` for the memory target), which if anything favours it.
 *
 * Run as its own process: `PORT=8094 DATABASE_URL=... NATS_URL=... BUS_PREFIX=... JWT_SECRET=...
 * deno run -A bench/bus_floor.ts` (DATABASE_URL is required of every side, and not used here).
 */
import { Bus } from "@shared/bus.ts";
import { httpEndpoint } from "@shared/bus_endpoints.ts";
import { loadConfig } from "@shared/config.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { TokenVerifier } from "../gateway/middleware/auth.ts";
import { serveSide } from "./serve_side.ts";

const EVENT_PATH = /^\/v1\/events\/([^/?]+)$/;
const JSONAPI_HEADERS = { "Content-Type": "application/vnd.api+json" };

/**
 * The side: answers signed-in reads of one event through the catalog (401 without a token it can
 * verify), `/health`, and anything else (a query too) 404. `env` as the process's (NATS_URL,
 * BUS_PREFIX, JWT_SECRET; BUS_FLOOR_RAW).
 */
export async function openBusFloor(env: Record<string, string> = Deno.env.toObject()): Promise<{
  fetch: (request: Request) => Promise<Response>;
  close: () => Promise<void>;
}> {
  const config = loadConfig(env);
  if (!config.jwtSecret) throw new Error("Cannot start the bus floor: JWT_SECRET is not set");
  const bus = await Bus.connect({ url: config.natsUrl, prefix: config.busPrefix, name: "floor" });
  const verifier = new TokenVerifier(config.jwtSecret);
  const read = env.BUS_FLOOR_RAW === "1" ? rawRead(bus) : helperRead(bus);
  return {
    async fetch(request) {
      const url = new URL(request.url);
      const path = url.pathname;
      if (path === "/health") return new Response("ok");
      // A query (`include`...) would be dropped: never answer what the gateway would not.
      const id = url.search === "" ? EVENT_PATH.exec(path)?.[1] : undefined;
      const header = request.headers.get("authorization");
      if (id === undefined || header === null) return new Response(null, { status: 404 });
      const actor = await verifier.actorOf(header).catch(() => undefined);
      if (actor === undefined) return new Response(null, { status: 401 });
      const { status, body } = await read({ actor, params: { id }, path });
      return new Response(body as Uint8Array<ArrayBuffer>, { status, headers: JSONAPI_HEADERS });
    },
    close: () => bus.close(),
  };
}

type EventRead = (
  request: Pick<HttpRequest, "actor" | "params" | "path">,
) => Promise<{ status: number; body: Uint8Array }>;

/** The read as the gateway sends it: our bus helper's `forward`. */
function helperRead(bus: Bus): EventRead {
  const endpoint = httpEndpoint("catalog.events.get");
  let requests = 0;
  return async (request) => {
    const requestId = `floor-${requests++}`;
    const reply = await bus.forward(endpoint, { ...request, query: {}, requestId, method: "GET" });
    return { status: reply.status, body: reply.body };
  };
}

/** The read with nats.js alone: no deadline headers, no resend, no metering, no status. */
function rawRead(bus: Bus): EventRead {
  const subject = bus.subject("catalog.events.get");
  const encoder = new TextEncoder();
  return async (request) => {
    const payload = { ...request, query: {}, requestId: "floor", method: "GET" };
    const msg = await bus.nc.request(subject, encoder.encode(JSON.stringify(payload)), {
      timeout: 5_000,
    });
    return { status: 200, body: msg.data };
  };
}

if (import.meta.main) {
  await serveSide("bus floor", 8094, () => openBusFloor());
}
