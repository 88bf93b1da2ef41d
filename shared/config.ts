/**
 * Configuration from the environment, with the defaults api-surface.md §0 names. Read once in a
 * `main.ts` and passed down. Every setting of ours is read here; besides it only OpenTelemetry's
 * variables (`OTEL_*`, where Deno reads them too), `TMPDIR`, the supervisor's
 * `OE_STOP_AT_STDIN_END` and the scripts read `Deno.env`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "@shared/config.ts";
 * const config = loadConfig();
 * console.log(config.natsUrl); // "nats://127.0.0.1:4222" unless NATS_URL is set
 * ```
 */

export interface Config {
  host: string;
  port: number;
  databaseUrl: string;
  /**
   * `<SERVICE>_DATABASE_URL` settings by lower-case service name (`catalog`, ...): a service with
   * one uses it instead of `databaseUrl`. See `serviceDatabaseUrl`.
   */
  serviceDatabaseUrls: Record<string, string>;
  /**
   * Connections each service process may open to Postgres (DATABASE_POOL_MAX, at least 1, default
   * 10), besides one each for its fact relay, its metrics and its migrations: every instance of
   * every service counts against Postgres's `max_connections`.
   */
  databasePoolMax: number;
  /** NATS_URL as given: one server or a comma-separated list (kept for child processes). */
  natsUrl: string;
  /** Every server of NATS_URL; the client connects to one and reconnects through the others. */
  natsServers: string[];
  /**
   * Replicas of the facts and parked streams (FACTS_REPLICAS, 1–5): applied when a stream is
   * created and reconciled at every start, so raising it on a running cluster takes effect.
   */
  factsReplicas: number;
  /** Prefix of every bus subject and stream, so several systems (or test runs) share one NATS. */
  busPrefix: string;
  /** Milliseconds the gateway waits for a service before answering 504. */
  requestTimeoutMs: number;
  /**
   * Requests a service process serves at once (SERVE_CONCURRENCY, default 64); the next ones wait
   * their turn, or get a 503 at once when they would not be served in time
   * (shared/bus_admission.ts).
   */
  serveConcurrency: number;
  /** Undefined when JWT_SECRET is unset; `scripts/start.ts` then makes one for all processes. */
  jwtSecret?: string;
  adminEmail?: string;
  adminPassword?: string;
  /** PBKDF2 iterations for new password hashes (stored with each hash, so it can change). */
  passwordIterations: number;
  /** Largest request body the gateway accepts, in bytes. */
  bodyLimitBytes: number;
  /** Milliseconds a client has to send a request's whole body (then 408, connection closed). */
  bodyTimeoutMs: number;
  /**
   * Milliseconds a client has to send a request's headers (then the connection is closed);
   * 0 serves without the guard that enforces it (see gateway/slow_clients.ts).
   */
  headerTimeoutMs: number;
  /**
   * How long the gateway keeps serving after SIGTERM with `/health/ready` answering 503
   * (SHUTDOWN_DELAY_MS, default 0): the time a load balancer or Kubernetes needs to stop sending
   * it new requests before it stops accepting them.
   */
  shutdownDelayMs: number;
  /**
   * The gateway's response cache (gateway/cache.ts): bytes it may hold (CACHE_MAX_BYTES,
   * default 64 MiB; 0 turns it off), the hard age limit of an entry (CACHE_TTL_MS, 60 s) and how
   * long replies fetched just after a change stay short-lived (CACHE_SETTLE_MS, 1 s).
   */
  cache: { maxBytes: number; ttlMs: number; settleMs: number };
  /**
   * ACCESS_CACHE_TTL_MS: the hard age limit of an answer of `catalog.internal.access` that
   * discounts, payments and audit keep (shared/access_source.ts, default 5 s); 0 asks the
   * catalog on every request.
   */
  accessCacheTtlMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** Stripe Connect (payments): the platform's secret key; it goes to Stripe and nowhere else. */
  stripeSecretKey?: string;
  /** The platform's Connect client id (`ca_...`), sent when deauthorizing an account. */
  stripeClientId?: string;
  /** Base URL of Stripe Connect's OAuth endpoints, without a trailing slash. */
  stripeConnectUrl: string;
  /** The webhook endpoint's signing secret (`whsec_...`). */
  stripeWebhookSecret?: string;
  /** AES-256 key for secrets at rest: 32 bytes as base64 or 64 hex digits (checked by payments). */
  paymentsEncryptionKey?: string;
  /**
   * Milliseconds payments waits for Stripe. Below `requestTimeoutMs`, so a slow Stripe gets a
   * clean 504 from payments (nothing stored) rather than the gateway giving up first: a value
   * that is not below is refused. Unset, it is 3000 (half of `requestTimeoutMs` when that is
   * 3000 or less).
   */
  stripeTimeoutMs: number;
  /** OE_ENV=production: the secrets must be set; nothing random or embedded stands in for them. */
  production: boolean;
  /**
   * METRICS_TOKEN: the bearer token `GET /metrics` asks for, on the gateway's address, or on
   * METRICS_ADDR alone when that is set. Without either the gateway serves no metrics.
   */
  metricsToken?: string;
  /** METRICS_ADDR (`host:port`): a separate listen address for `GET /metrics` alone. */
  metricsAddr?: { hostname: string; port: number };
}

type Env = Record<string, string | undefined>;

function envObject(): Env {
  return Deno.env.toObject();
}

/**
 * A non-negative integer setting, in decimal digits only: Number() also took `0x4940`, `1e4` and
 * `" 18711"` (an operator review), which no operator means as written.
 */
/**
 * The longest wait a timer takes (2^31 - 1 ms, about 24.8 days): past it `setTimeout` fires at
 * once, so a SHUTDOWN_DELAY_MS of 30 days meant no delay at all (an operator review, 2026-12-06).
 * Every setting named `*_MS` is a timer's wait, and is refused beyond it.
 */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

function integer(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new Error(`Cannot read ${name}: "${raw}" is not a non-negative integer`);
  }
  if (name.endsWith("_MS") && value > LONGEST_TIMER_MS) {
    throw new Error(
      `Cannot read ${name}: ${value} ms is longer than a timer waits ` +
        `(${LONGEST_TIMER_MS} ms, about 24.8 days)`,
    );
  }
  return value;
}

type DatabaseUrls = Pick<Config, "databaseUrl" | "serviceDatabaseUrls">;

/** Where the databases are: `DATABASE_URL` and every `<SERVICE>_DATABASE_URL` that is set. */
function databaseUrls(env: Env): DatabaseUrls {
  const serviceDatabaseUrls: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const service = name.match(/^([A-Z][A-Z0-9]*)_DATABASE_URL$/)?.[1];
    if (service && value) serviceDatabaseUrls[service.toLowerCase()] = value;
  }
  const databaseUrl = env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/open_event";
  return { databaseUrl, serviceDatabaseUrls };
}

/**
 * The database URL of one service: `<SERVICE>_DATABASE_URL` if set, else `DATABASE_URL`. Reads
 * a loaded config's `serviceDatabaseUrls` (what `runService` does), or the raw environment (what
 * `deno task start` does before any service has loaded its config).
 *
 * @example
 * ```ts
 * import { loadConfig, serviceDatabaseUrl } from "@shared/config.ts";
 * const config = loadConfig({ CATALOG_DATABASE_URL: "postgres://db/catalog" });
 * console.log(serviceDatabaseUrl("catalog", config)); // "postgres://db/catalog"
 * ```
 */
export function serviceDatabaseUrl(
  service: string,
  from: Env | DatabaseUrls = envObject(),
): string {
  const urls = urlsOf(from);
  return urls.serviceDatabaseUrls[service] ?? urls.databaseUrl;
}

/** The database URLs an environment or a loaded config gives. */
function urlsOf(from: Env | DatabaseUrls): DatabaseUrls {
  // An environment's values are all strings: an object here is a loaded config's map.
  return typeof from.serviceDatabaseUrls === "object"
    ? from as DatabaseUrls
    : databaseUrls(from as Env);
}

/**
 * The setting that gave a service its database URL (what `serviceDatabaseUrl` read), for a
 * failure line to name the one to fix.
 *
 * @example
 * ```ts
 * import { databaseSetting, loadConfig } from "@shared/config.ts";
 * const config = loadConfig({ AUDIT_DATABASE_URL: "postgres://db/audit" });
 * console.log(databaseSetting("audit", config)); // "AUDIT_DATABASE_URL"
 * ```
 */
export function databaseSetting(
  service: string,
  from: Env | DatabaseUrls = envObject(),
): string {
  const urls = urlsOf(from);
  return service in urls.serviceDatabaseUrls
    ? `${service.toUpperCase()}_DATABASE_URL`
    : "DATABASE_URL";
}

function baseUrl(env: Env, name: string, fallback: string): string {
  const raw = env[name] || fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`Cannot read ${name}: "${raw}" is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`Cannot read ${name}: "${raw}" is not an http(s) URL`);
  }
  return raw.replace(/\/+$/, "");
}

/**
 * The servers of a NATS_URL: one URL or a comma-separated list (`nats://a:4222,nats://b:4222`;
 * spaces around commas are fine). Each must be a nats:// or tls:// URL, or `host:port`.
 */
export function parseNatsServers(raw: string): string[] {
  const servers = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (!servers.length) throw new Error(`Cannot read NATS_URL: "${raw}" names no server`);
  for (const server of servers) {
    const withScheme = server.includes("://") ? server : `nats://${server}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new Error(`Cannot read NATS_URL: "${withoutLogin(server)}" is not a URL`);
    }
    if (!["nats:", "tls:", "ws:", "wss:"].includes(url.protocol) || !url.hostname) {
      throw new Error(`Cannot read NATS_URL: "${withoutLogin(server)}" is not a nats:// URL`);
    }
  }
  return servers;
}

/**
 * A NATS server URL as an error may quote it: its whole login hidden. A lone name before the `@`
 * is a token there (`nats://<token>@host`), which scrub, reading it as a user name, would keep.
 */
function withoutLogin(server: string): string {
  return server.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1[redacted]@");
}

/** SERVE_CONCURRENCY unless set: over 6 times the default pool, so that reads keep it busy. */
export const DEFAULT_SERVE_CONCURRENCY = 64;

/** An integer setting of at least `min` (and at most `max`), named in the error otherwise. */
function bounded(env: Env, name: string, fallback: number, min: number, max?: number): number {
  const value = integer(env, name, fallback);
  if (value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `at least ${min}` : `between ${min} and ${max}`;
    throw new Error(`Cannot read ${name}: ${value} is not ${range}`);
  }
  return value;
}

/**
 * BUS_PREFIX: dot-separated NATS subject tokens. A space makes every subscription illegal (the
 * gateway crashed on its first), and a wildcard (`*`, `>`) would listen to other systems'
 * subjects on a shared NATS.
 */
function busPrefix(env: Env): string {
  const prefix = env.BUS_PREFIX || "oe";
  if (prefix.split(".").some((token) => token === "" || /[\s*>]/.test(token))) {
    throw new Error(
      `Cannot read BUS_PREFIX: "${prefix}" is not a subject prefix ` +
        "(dot-separated words without spaces, * or >, e.g. oe.eu)",
    );
  }
  return prefix;
}

/**
 * The shortest JWT_SECRET production takes: RFC 7518 §3.2 asks an HS256 key of 256 bits at least.
 * A short one (`x` started a system, an operator review) is guessed offline from any token the
 * catalog issued, and a guessed secret signs a token for any user, admins included.
 */
const MIN_JWT_SECRET_LENGTH = 32;

/** OE_ENV: "production" requires the secrets a development start may leave out. */
function productionMode(env: Env): boolean {
  const mode = env.OE_ENV || "development";
  if (mode !== "production" && mode !== "development") {
    throw new Error(`Cannot read OE_ENV: "${mode}" is not production or development`);
  }
  const missing = ["JWT_SECRET", "PAYMENTS_ENCRYPTION_KEY"].filter((name) => !env[name]);
  if (mode === "production" && missing.length) {
    throw new Error(
      `Cannot start in production mode (OE_ENV=production): ${missing.join(" and ")} not set. ` +
        "Set them (keep them out of the repository), or unset OE_ENV for a development start.",
    );
  }
  if (mode === "production" && env.JWT_SECRET!.length < MIN_JWT_SECRET_LENGTH) {
    // The length only: the secret itself is never part of a line.
    throw new Error(
      `Cannot read JWT_SECRET: it has ${env.JWT_SECRET!.length} characters, and production mode ` +
        `takes ${MIN_JWT_SECRET_LENGTH} at least (e.g. \`openssl rand -base64 32\`)`,
    );
  }
  return mode === "production";
}

/** METRICS_ADDR as `host:port` (`[::1]:9464` for IPv6), or undefined when unset. */
function listenAddress(env: Env, name: string): { hostname: string; port: number } | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  const match = raw.match(/^\[?([^\]]*?)\]?:(\d{1,5})$/);
  const port = Number(match?.[2]);
  if (!match || !match[1] || port > 65535) {
    throw new Error(`Cannot read ${name}: "${raw}" is not host:port (e.g. 127.0.0.1:9464)`);
  }
  return { hostname: match[1], port };
}

/**
 * BODY_LIMIT_BYTES and BODY_TIMEOUT_MS, at least 1 each: 0 is no "off" here, as it is for
 * HEADER_TIMEOUT_MS and CACHE_MAX_BYTES, but a gateway that started and answered every login and
 * write 413, or every body that did not come in one packet 408 (an operator review, 2026-12-06).
 */
function bodyLimits(env: Env): Pick<Config, "bodyLimitBytes" | "bodyTimeoutMs"> {
  return {
    bodyLimitBytes: bounded(env, "BODY_LIMIT_BYTES", 1_000_000, 1),
    bodyTimeoutMs: bounded(env, "BODY_TIMEOUT_MS", 10_000, 1),
  };
}

/** Reads the configuration; `env` is injectable for tests. */
export function loadConfig(env: Env = envObject()): Config {
  const logLevel = env.LOG_LEVEL || "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new Error(`Cannot read LOG_LEVEL: "${logLevel}" is not debug, info, warn or error`);
  }
  // At least 2: payments' Stripe timeout must fit below it and be 1 ms or more (0 made every
  // Stripe call a 504).
  const requestTimeoutMs = bounded(env, "REQUEST_TIMEOUT_MS", 5000, 2);
  const stripeTimeoutMs = bounded(
    env,
    "STRIPE_TIMEOUT_MS",
    requestTimeoutMs > 3000 ? 3000 : Math.floor(requestTimeoutMs / 2),
    1,
  );
  if (stripeTimeoutMs >= requestTimeoutMs) {
    throw new Error(
      `Cannot read STRIPE_TIMEOUT_MS: ${stripeTimeoutMs} must be below REQUEST_TIMEOUT_MS ` +
        `(${requestTimeoutMs}), or the gateway gives up before payments hears from Stripe`,
    );
  }
  return {
    host: env.HOST || "127.0.0.1",
    // 0 would listen on a port nobody is told of: `deno task start` waited for it in vain.
    port: bounded(env, "PORT", 8080, 1, 65535),
    ...databaseUrls(env),
    natsUrl: env.NATS_URL || "nats://127.0.0.1:4222",
    natsServers: parseNatsServers(env.NATS_URL || "nats://127.0.0.1:4222"),
    // JetStream allows 1 to 5 replicas of a stream.
    factsReplicas: bounded(env, "FACTS_REPLICAS", 1, 1, 5),
    databasePoolMax: bounded(env, "DATABASE_POOL_MAX", 10, 1),
    serveConcurrency: bounded(env, "SERVE_CONCURRENCY", DEFAULT_SERVE_CONCURRENCY, 1),
    busPrefix: busPrefix(env),
    requestTimeoutMs,
    jwtSecret: env.JWT_SECRET || undefined,
    adminEmail: env.ADMIN_EMAIL || undefined,
    adminPassword: env.ADMIN_PASSWORD || undefined,
    // PBKDF2 refuses 0 rounds: every login and sign-up would answer 500.
    passwordIterations: bounded(env, "PASSWORD_ITERATIONS", 210_000, 1),
    ...bodyLimits(env),
    headerTimeoutMs: integer(env, "HEADER_TIMEOUT_MS", 10_000),
    shutdownDelayMs: integer(env, "SHUTDOWN_DELAY_MS", 0),
    cache: {
      maxBytes: integer(env, "CACHE_MAX_BYTES", 64 * 1024 * 1024),
      ttlMs: integer(env, "CACHE_TTL_MS", 60_000),
      settleMs: integer(env, "CACHE_SETTLE_MS", 1_000),
    },
    accessCacheTtlMs: integer(env, "ACCESS_CACHE_TTL_MS", 5_000),
    logLevel: logLevel as Config["logLevel"],
    stripeSecretKey: env.STRIPE_SECRET_KEY || undefined,
    stripeClientId: env.STRIPE_CLIENT_ID || undefined,
    stripeConnectUrl: baseUrl(env, "STRIPE_CONNECT_URL", "https://connect.stripe.com"),
    stripeWebhookSecret: env.STRIPE_WEBHOOK_SECRET || undefined,
    paymentsEncryptionKey: env.PAYMENTS_ENCRYPTION_KEY || undefined,
    stripeTimeoutMs,
    production: productionMode(env),
    metricsToken: env.METRICS_TOKEN || undefined,
    metricsAddr: listenAddress(env, "METRICS_ADDR"),
  };
}
