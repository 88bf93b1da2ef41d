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
