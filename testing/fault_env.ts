/**
 * What the fault tests (testing/faults_postgres*_test.ts) give the processes they spawn: one
 * database, a bus prefix and a port of their own, a first admin, a short request deadline; and the
 * admin's login through the gateway.
 *
 * @example
 * ```ts ignore
 * const env = faultEnv({ databaseUrl, natsUrl, prefix, port, requestTimeoutMs: 2000 });
 * const token = await adminToken(`http://127.0.0.1:${port}`, env);
 * ```
 */
import type { Fact } from "@shared/facts.ts";
import { facts } from "@shared/subjects.ts";
import type { TestBus } from "@shared/testing.ts";
import { type FakeStripe, startFakeStripe } from "../services/payments/fake_stripe.ts";
import { storedMessages } from "./facts.ts";
import { spawnProcess, type TestProcess } from "./processes.ts";

export interface FaultEnvOptions {
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  port: number;
  requestTimeoutMs: number;
}

/** The environment every process of a fault test's system shares. */
export function faultEnv(options: FaultEnvOptions): Record<string, string> {
  return {
    ...Deno.env.toObject(),
    DATABASE_URL: options.databaseUrl,
    NATS_URL: options.natsUrl,
    BUS_PREFIX: options.prefix,
    PORT: String(options.port),
    JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
    ADMIN_EMAIL: "admin@example.test",
    ADMIN_PASSWORD: crypto.randomUUID(),
    PASSWORD_ITERATIONS: "1000",
    REQUEST_TIMEOUT_MS: String(options.requestTimeoutMs),
    LOG_LEVEL: "info",
  };
}

/** Logs in as the admin of `env` through the gateway at `url`; returns the token. */
export async function adminToken(url: string, env: Record<string, string>): Promise<string> {
  const login = await fetch(`${url}/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }),
  });
  return (await login.json()).access_token;
}

/**
 * Spawns `services` (label and service name: `["catalog-1", "catalog"]`) one after the other, each
 * awaited until it is ready (the first migrates and makes the admin), then the gateway, until it
 * listens; `stack` stops them all. The processes by label, the gateway's as `gateway`.
 */
export async function spawnFaultSystem(
  stack: AsyncDisposableStack,
  env: Record<string, string>,
  services: readonly (readonly [label: string, service: string])[],
): Promise<Record<string, TestProcess>> {
  const processes: Record<string, TestProcess> = {};
  for (const [label, service] of services) {
    const process = stack.use(spawnProcess(label, `services/${service}/main.ts`, env));
    processes[label] = process;
    await process.waitForLine(`${service} ready`);
  }
  processes.gateway = stack.use(spawnProcess("gateway", "gateway/main.ts", env));
  await processes.gateway.waitForLine("gateway listening");
  return processes;
}

/** Every fact stored in the fact stream of `testbus`'s prefix, oldest first. */
export async function storedFacts(testbus: TestBus): Promise<Fact[]> {
  const messages = await storedMessages(testbus.bus, facts.stream(testbus.prefix));
  return messages.map((message) => message.json<Fact>());
}

/**
 * A fake Stripe on `stack`, and what payments' processes need to talk to it: its keys, its URL, a
 * webhook secret, an encryption key and `stripeTimeoutMs`.
 */
export async function fakeStripeEnv(
  stack: AsyncDisposableStack,
  stripeTimeoutMs: number,
): Promise<{ stripe: FakeStripe; env: Record<string, string> }> {
  const secretKey = `sk_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const clientId = `ca_${crypto.randomUUID().slice(0, 12)}`;
  const stripe = stack.use(await startFakeStripe({ secretKey, clientId }));
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  return {
    stripe,
    env: {
      STRIPE_SECRET_KEY: secretKey,
      STRIPE_CLIENT_ID: clientId,
      STRIPE_CONNECT_URL: stripe.url,
      STRIPE_WEBHOOK_SECRET: `whsec_${crypto.randomUUID()}`,
      PAYMENTS_ENCRYPTION_KEY: key,
      STRIPE_TIMEOUT_MS: String(stripeTimeoutMs),
    },
  };
}
