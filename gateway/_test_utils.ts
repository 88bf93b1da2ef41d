/**
 * Test set-up for the gateway: the app on a real bus with a unique prefix, real services on that
 * prefix, and tokens signed the way the catalog signs them.
 */
import type { Hono } from "hono";
import { sign } from "hono/jwt";
import { type RunningService, type ServiceInfo } from "@shared/bus.ts";
import { type Route, route } from "@shared/bus_endpoints.ts";
import { loadConfig } from "@shared/config.ts";
import { errorDocumentOf } from "@shared/errors.ts";
import { createLogger, type Logger } from "@shared/log.ts";
import { catalog } from "@shared/subjects.ts";
import { type TestBus, testBus } from "@shared/testing.ts";
import { caller, type TestSystem } from "@testing/system.ts";
import { createApp, createGateway } from "./app.ts";
import type { GatewayEnv } from "./env.ts";

export const SECRET = "gateway-test-secret";
export const JSONAPI = "application/vnd.api+json";

export interface TestGateway extends AsyncDisposable {
  app: Hono<GatewayEnv>;
  prefix: string;
  /** Serves `routes` as one more instance of `name`, on its own connection. */
  serve(
    name: string,
    routes: Route[],
    info?: Pick<ServiceInfo, "problems">,
  ): Promise<RunningService>;
}

export interface TestGatewayOptions {
  env?: Record<string, string>;
  services?: readonly string[];
}

/** A gateway on a fresh bus prefix; disposing stops its services and closes every connection. */
export async function testGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const gatewayBus = await testBus();
  const config = loadConfig({
    JWT_SECRET: SECRET,
    BUS_PREFIX: gatewayBus.prefix,
    REQUEST_TIMEOUT_MS: "2000",
    ...options.env,
  });
  const app = createApp({
    bus: gatewayBus.bus,
    config,
    logger: createLogger("gateway", "error"),
    services: options.services,
  });
  const buses: TestBus[] = [];
  const running: RunningService[] = [];
  return {
    app,
    prefix: gatewayBus.prefix,
    async serve(name, routes, info) {
      const serviceBus = await testBus(gatewayBus.prefix);
      buses.push(serviceBus);
      const service = serviceBus.bus.serve({ name, version: "0.0.1", ...info }, routes);
      running.push(service);
      // A round trip makes sure the server has seen the subscriptions before a test uses them.
      await serviceBus.bus.nc.flush();
      return service;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(running.map((service) => service.stop()));
      await Promise.all(buses.map((bus) => bus[Symbol.asyncDispose]()));
      await gatewayBus[Symbol.asyncDispose]();
    },
  };
}

/** A token as the catalog issues it; `exp` defaults to one hour ahead. */
export async function token(
  sub: string,
  options: { exp?: number; secret?: string } = {},
): Promise<string> {
  const exp = options.exp ?? Math.floor(Date.now() / 1000) + 3600;
  return await sign({ sub, exp }, options.secret ?? SECRET, "HS256");
}

/** The first JSON:API error object of a response, after checking its media type. */
export async function firstError(response: Response): Promise<Record<string, unknown>> {
  const type = response.headers.get("Content-Type");
  if (type !== JSONAPI) throw new Error(`Cannot read errors: Content-Type is ${type}`);
  const body = await response.json();
  const version = body.jsonapi?.version;
  if (version !== errorDocumentOf(body.errors ?? []).jsonapi.version) {
    throw new Error(`Cannot read errors: jsonapi member ${JSON.stringify(body.jsonapi)}`);
  }
  return body.errors[0];
}

/** One keep-alive connection that sends raw heads and reads whole answers (Content-Length framed). */
export class Wire {
  #buffered = new Uint8Array(0);
  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number): Promise<Wire> {
    return new Wire(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(text: string): Promise<void> {
    await this.conn.write(new TextEncoder().encode(text));
  }

  /** The next answer (to a request of `method`), whole, with its `date` line left out. */
  async answer(method = "GET"): Promise<string> {
    let end: number;
    while ((end = this.#text().indexOf("\r\n\r\n")) === -1) await this.#fill();
    const head = this.#text().slice(0, end);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    // A HEAD answer says its GET's length (RFC 9110 §8.6) but sends no body.
    const bodiless = method === "HEAD" || /^HTTP\/1\.1 304/.test(head);
    const total = end + 4 + (bodiless ? 0 : length);
    while (this.#buffered.length < total) await this.#fill();
    const answer = new TextDecoder().decode(this.#buffered.subarray(0, total));
    this.#buffered = this.#buffered.slice(total);
    return answer.replace(/\r\ndate: [^\r]*/i, "");
  }

  /** Sends `head` and reads its answer. */
  async exchange(head: string): Promise<string> {
    await this.send(head);
    return await this.answer();
  }

  close(): void {
    this.conn.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #text(): string {
    return new TextDecoder().decode(this.#buffered);
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65_536);
    const n = await this.conn.read(chunk);
    if (n === null) throw new Error("Cannot read an answer: the connection closed");
    const joined = new Uint8Array(this.#buffered.length + n);
    joined.set(this.#buffered);
    joined.set(chunk.subarray(0, n), this.#buffered.length);
    this.#buffered = joined;
  }
}

/** A second gateway instance on `system`'s bus prefix, with its own cache and connection. */
export async function secondGateway(system: TestSystem) {
  const bus = await testBus(system.prefix);
  system.defer(async () => await bus[Symbol.asyncDispose]());
  const app = createApp({
    bus: bus.bus,
    config: system.config,
    logger: createLogger("g2", "error"),
  });
  await bus.bus.nc.flush();
  return { call: caller(app), bus: bus.bus };
}

/**
 * A whole gateway (`createGateway`: the response cache, the short ways) on a fresh bus prefix,
 * in front of a stand-in catalog: `GET /v1/event-topics` answers `page[size]` topics (one by
 * default, so a page can be made large) named "First" until a `POST /v1/event-topics`, "Second"
 * after it; `GET /v1/events/{id}` answers after `?delay=` ms (300 by default), for answers that
 * must not be overtaken. Replies fetched just after a write live as long as any (no settle window),
 * unless `env` sets CACHE_SETTLE_MS.
 */
export async function topicsGateway(
  options: { env?: Record<string, string>; logger?: Logger } = {},
) {
  const gatewayBus = await testBus();
  const serviceBus = await testBus(gatewayBus.prefix);
  let name = "First";
  const service = serviceBus.bus.serve({ name: "catalog", version: "0.0.1" }, [
    route(catalog.eventTopics.list, (request) => ({
      status: 200,
      body: {
        data: Array.from({ length: Number(request.query["page[size]"] ?? 1) }, (_, i) => ({
          type: "event-topic",
          id: String(i + 1),
          attributes: { name },
        })),
      },
    })),
    route(catalog.eventTopics.create, () => {
      name = "Second";
      return { status: 201, body: { data: { type: "event-topic", id: "2", attributes: {} } } };
    }),
    route(catalog.events.get, async (request) => {
      await new Promise((resolve) => setTimeout(resolve, Number(request.query.delay ?? 300)));
      return { status: 200, body: { data: { type: "event", id: "1", attributes: {} } } };
    }),
  ]);
  await serviceBus.bus.nc.flush();
  const config = loadConfig({
    JWT_SECRET: SECRET,
    BUS_PREFIX: gatewayBus.prefix,
    // No settle window (gateway/cache.ts): the stand-in derives nothing from facts, and with one a
    // page read just after a write lapsed when the window closed, so a step slower than it (a
    // loaded machine) saw a miss where it asserted a hit, with nothing to wait for.
    CACHE_SETTLE_MS: "0",
    ...options.env,
  });
  const logger = options.logger ?? createLogger("gateway", "error");
  const gateway = createGateway({ bus: gatewayBus.bus, config, logger });
  return {
    gateway,
    bus: gatewayBus.bus,
    async [Symbol.asyncDispose]() {
      await service.stop();
      await serviceBus[Symbol.asyncDispose]();
      await gatewayBus[Symbol.asyncDispose]();
    },
  };
}
