/**
 * The gateway's CPU per cache hit, measured apart from the rest of a system: a gateway (cache
 * on) and a stand-in catalog share this process, the catalog answers the first read only, and
 * `wrk` (or, with `--client fetch`, 32 Deno `fetch` loops in a child process, as bench/load.ts
 * drives the gateway) reads the cached URL; this process's utime + stime from /proc over the
 * requests counted. Steadier than a throughput ratio when other work shares the machine.
 *
 * `deno run -A bench/hit_cpu.ts [--header-timeout MS] [--seconds S] [--connections N]
 * [--full-path] [--client wrk|fetch]` (HEADER_TIMEOUT_MS 0 serves Deno.serve directly, as main.ts does;
 * `--full-path` serves the Hono app alone, without gateway/hit_path.ts and without the relay's own
 * answers). Needs `wrk` and Linux.
 */
import { parseArgs } from "node:util";
import { route } from "@shared/bus_endpoints.ts";
import { loadConfig } from "@shared/config.ts";
import { createLogger } from "@shared/log.ts";
import { catalog } from "@shared/subjects.ts";
import { testBus } from "@shared/testing.ts";
import { JSONAPI, SECRET } from "../gateway/_test_utils.ts";
import { createGateway } from "../gateway/app.ts";
import { serveGuarded } from "../gateway/slow_clients.ts";
import { cpuSeconds } from "./cpu.ts";

/** Ten topics, about the size of the benchmark's topic list. */
function topics() {
  return Array.from({ length: 10 }, (_, i) => ({
    type: "event-topic",
    id: String(i + 1),
    attributes: { name: `Topic ${i + 1}`, slug: `topic-${i + 1}`, "system-image-url": null },
    links: { self: `/v1/event-topics/${i + 1}` },
  }));
}

/** Deno `fetch` loops, reading every body, as bench/load.ts does; prints the requests made. */
const FETCH_LOOPS = `
  const [url, seconds, connections] = [Deno.args[0], Number(Deno.args[1]), Number(Deno.args[2])];
  const deadline = performance.now() + seconds * 1000;
  let requests = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < deadline) {
      await (await fetch(url, { headers: { Accept: "${JSONAPI}" } })).arrayBuffer();
      requests++;
    }
  }));
  console.log(requests + " requests in");
`;

async function load(url: string, seconds: number, connections: number): Promise<number> {
  if (flags.client === "wrk") return await wrk(url, seconds, connections);
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", FETCH_LOOPS, url, String(seconds), String(connections)],
    stdout: "piped",
  }).output();
  return Number(/(\d+) requests in/.exec(new TextDecoder().decode(stdout))?.[1]);
}

async function wrk(url: string, seconds: number, connections: number): Promise<number> {
  const { stdout } = await new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${seconds}s`, "-H", `Accept: ${JSONAPI}`, url],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  if (!requests) throw new Error(`Cannot read wrk's output: ${text}`);
  return requests;
}

const flags = parseArgs({
  options: {
    "header-timeout": { type: "string", default: "10000" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "32" },
    rounds: { type: "string", default: "3" },
    "full-path": { type: "boolean", default: false },
    client: { type: "string", default: "wrk" },
  },
}).values;
const headerTimeoutMs = Number(flags["header-timeout"]);
await using gatewayBus = await testBus();
await using serviceBus = await testBus(gatewayBus.prefix);
const config = loadConfig({ JWT_SECRET: SECRET, BUS_PREFIX: gatewayBus.prefix });
const logger = createLogger("gateway", "error");
const gateway = createGateway({ bus: gatewayBus.bus, config, logger });
const handler = flags["full-path"] ? gateway.app.fetch : gateway.fetch;
const service = serviceBus.bus.serve({ name: "catalog", version: "0.0.1" }, [
  route(catalog.eventTopics.list, () => ({ status: 200, body: { data: topics() } })),
]);
await serviceBus.bus.nc.flush();
const listen = { hostname: "127.0.0.1", port: 0 };
const server = headerTimeoutMs > 0
  ? await serveGuarded({
    ...listen,
    headerTimeoutMs,
    answer: flags["full-path"] ? undefined : gateway.answer,
  }, handler)
  : Deno.serve({ ...listen, onListen: () => {} }, handler);
const port = "port" in server ? server.port : (server as Deno.HttpServer<Deno.NetAddr>).addr.port;
const url = `http://127.0.0.1:${port}/v1/event-topics`;
for (let i = 0; i < 2; i++) {
  await (await fetch(url, { headers: { Accept: JSONAPI } })).body?.cancel();
}
const probe = await fetch(url, { headers: { Accept: JSONAPI } });
await probe.body?.cancel();
if (probe.headers.get("X-Cache") !== "HIT") throw new Error("Cannot measure: the read is no hit");
await load(url, 3, Number(flags.connections));
for (let round = 0; round < Number(flags.rounds); round++) {
  const before = cpuSeconds("self");
  const requests = await load(url, Number(flags.seconds), Number(flags.connections));
  const used = cpuSeconds("self") - before;
  const us = (used * 1e6 / requests).toFixed(1);
  console.log(`round ${round + 1}: ${requests} hits, ${us} µs gateway CPU per hit`);
}
await server.shutdown();
await service.stop();
