/**
 * Test set-up for the gateway: the app on a real bus with a unique prefix, real services on that
 * prefix, and tokens signed the way the catalog signs them.
 */
import type { Hono } from "hono";
import { sign } from "hono/jwt";
import type { Route, RunningService, ServiceInfo } from "@shared/bus.ts";
import { loadConfig } from "@shared/config.ts";
import { createLogger } from "@shared/log.ts";
import { type TestBus, testBus } from "@shared/testing.ts";
import { createApp } from "./app.ts";
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
  if (body.jsonapi?.version !== "1.0") throw new Error("Cannot read errors: no jsonapi member");
  return body.errors[0];
}
