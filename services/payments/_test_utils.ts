/**
 * Test set-up for payments: the catalog and gateway of `startTestSystem`, a local fake Stripe,
 * and the payments service on its own bus connection, with a logger that keeps every line.
 * Every response body, log line and fact is checked for the secrets the test planted when the
 * system stops: a leak fails the test that caused it.
 */
import { Bus } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { expectStatus, type TestFact } from "@testing/system.ts";
import type { LogFields, Logger } from "@shared/log.ts";
import {
  type CallOptions,
  type CallResult,
  type EventCast,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";
import {
  type FakeGrant,
  type FakeStripe,
  type GrantOptions,
  startFakeStripe,
} from "./fake_stripe.ts";
import { migratePayments, type PaymentsService, SCHEMA, startPayments } from "./service.ts";

export interface PaymentsSystem extends AsyncDisposable {
  system: TestSystem;
  stripe: FakeStripe;
  /** The running payments service (a new one after `restartPayments`). */
  readonly payments: PaymentsService;
  /** Stops payments and starts it again on the same bus and database with `changes`. */
  restartPayments(changes: Partial<Config>): Promise<void>;
  /** A pool on the payments schema. */
  sql: Sql;
  /** Every line the payments service logged (unredacted, at every level). */
  logs: string[];
  /** Every response body the tests received through `call`. */
  responses: string[];
  /** The planted secrets (platform keys and every issued token and code). */
  secrets(): Map<string, string>;
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  /** A new code at the fake Stripe. */
  grant(options?: GrantOptions): FakeGrant;
  /** A published event that accepts Stripe, with owner, organizer, co-organizer, stranger. */
  stripeEvent(attributes?: Record<string, unknown>): Promise<EventCast>;
  /** POST /v1/stripe-authorizations`query` for `eventId` with `code`, as `token`'s user. */
  link(
    token: string | undefined,
    eventId: string,
    code: string,
    query?: string,
  ): Promise<CallResult>;
  /** PATCH /v1/stripe-authorizations/{id}`query` with a new `code`, as `token`'s user. */
  relink(token: string | undefined, id: string, code: string, query?: string): Promise<CallResult>;
  /** Payments' and the catalog's facts, pending ones published first. */
  readFacts(): Promise<TestFact[]>;
  /** Secrets (by name) found in responses, logs or facts. */
  leaks(): Promise<string[]>;
}

/** Settings a test can leave unset. */
type Omitted = "encryptionKey" | "stripe" | "webhookSecret";

export interface PaymentsSystemOptions {
  env?: Record<string, string>;
  /** Leave a setting unset to test the 503 answers. */
  omit?: Omitted[];
}

function expand(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[deep]";
  if (value instanceof Error) {
    return {
      name: value.name,
      message: value.message,
      stack: value.stack,
      cause: expand(value.cause, depth + 1),
      // ApiError keeps extra objects in `more`.
      more: expand((value as { more?: unknown }).more, depth + 1),
    };
  }
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map((item) => expand(item, depth + 1));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expand(item, depth + 1)]),
    );
  }
  return value;
}

/** Keeps every line, without the real logger's redaction: a stricter check than production. */
export function recordingLogger(lines: string[]): Logger {
  const write = (level: string) => (message: string, fields?: LogFields) => {
    lines.push(JSON.stringify({ level, message, fields: expand(fields) }));
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

function randomBase64Key(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

let counter = 0;

/** What a test plants and then looks for: the platform's secrets and the Connect client id. */
interface Planted {
  secrets: Map<string, string>;
  clientId: string;
}

function plantSecrets(): Planted {
  const secrets = new Map<string, string>([
    ["STRIPE_SECRET_KEY", `sk_test_platform_${crypto.randomUUID().replaceAll("-", "")}`],
    ["STRIPE_WEBHOOK_SECRET", `whsec_${crypto.randomUUID().replaceAll("-", "")}`],
    ["PAYMENTS_ENCRYPTION_KEY", randomBase64Key()],
  ]);
  return { secrets, clientId: `ca_${crypto.randomUUID().slice(0, 12)}` };
}

/** The system's config with the planted Stripe settings (less those `omit` leaves unset). */
function paymentsConfig(
  base: Config,
  planted: Planted,
  options: PaymentsSystemOptions & { stripeUrl: string },
): Config {
  const omit = new Set(options.omit ?? []);
  const unless = (setting: Omitted, value: string | undefined) =>
    omit.has(setting) ? undefined : value;
  return {
    ...base,
    stripeConnectUrl: options.stripeUrl,
    stripeSecretKey: unless("stripe", planted.secrets.get("STRIPE_SECRET_KEY")),
    stripeClientId: unless("stripe", planted.clientId),
    stripeWebhookSecret: unless("webhookSecret", planted.secrets.get("STRIPE_WEBHOOK_SECRET")),
    paymentsEncryptionKey: unless("encryptionKey", planted.secrets.get("PAYMENTS_ENCRYPTION_KEY")),
    stripeTimeoutMs: Number(options.env?.STRIPE_TIMEOUT_MS ?? 1000),
  };
}

interface PaymentsFixture extends AsyncDisposable {
  /** The running service (a new one after `restart`). */
  readonly service: PaymentsService;
  sql: Sql;
  /** Stops the service and starts it again on the same bus and pool with `config`. */
  restart(config: Config): Promise<void>;
}

/**
 * Payments on a bus connection of its own to `system`'s prefix and on its schema of `system`'s
 * database, logging to `log`. Dispose stops it and closes the connection and the pool.
 */
async function paymentsFixture(
  system: TestSystem,
  config: Config,
  log: Logger,
): Promise<PaymentsFixture> {
  await using stack = new AsyncDisposableStack();
  const bus = await Bus.connect({
    url: system.config.natsUrl,
    prefix: system.prefix,
    name: "payments-test",
    logger: log,
  });
  stack.defer(() => bus.close());
  const sql = await openDatabase(system.databaseUrl, { schema: SCHEMA, max: 5 });
  stack.defer(() => sql.end({ timeout: 5 }));
  await migratePayments(sql);
  let service = await startPayments({ sql, bus, config, log });
  stack.defer(() => service.stop()); // whichever runs then
  await bus.nc.flush();
  const owned = stack.move();
  return {
    get service() {
      return service;
    },
    sql,
    async restart(changed) {
      await service.stop();
      service = await startPayments({ sql, bus, config: changed, log });
      await bus.nc.flush();
    },
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}

/** Where the tests could see a secret: responses, log lines and facts. */
interface Haystacks {
  responses: string[];
  logs: string[];
  readFacts(): Promise<TestFact[]>;
}

/**
 * The planted secrets plus every code and token the fake Stripe issued (`grants`) or the tests
 * sent it, and a search for any of them in `haystacks`.
 */
function leakCheck(planted: Planted, stripe: FakeStripe, haystacks: Haystacks) {
  const grants: FakeGrant[] = [];
  function secrets(): Map<string, string> {
    const all = new Map(planted.secrets);
    // Codes the tests sent that Stripe never granted count too.
    stripe.calls.forEach((call, i) => {
      if (call.form.code) all.set(`code sent in Stripe call ${i}`, call.form.code);
    });
    grants.forEach((grant, i) => {
      all.set(`grant ${i} code`, grant.code);
      all.set(`grant ${i} access token`, grant.accessToken);
      all.set(`grant ${i} refresh token`, grant.refreshToken);
      all.set(`grant ${i} account id`, grant.accountId);
    });
    return all;
  }
  async function leaks(): Promise<string[]> {
    const facts = JSON.stringify(await haystacks.readFacts().catch(() => []));
    const texts: [string, string][] = [
      ["a response", haystacks.responses.join("\n")],
      ["a log line", haystacks.logs.join("\n")],
      ["a fact", facts],
    ];
    const found: string[] = [];
    for (const [name, secret] of secrets()) {
      if (secret.length < 8) continue; // too short to mean anything (e.g. an empty code)
      for (const [where, text] of texts) {
        if (text.includes(secret)) found.push(`${name} in ${where}`);
      }
    }
    return found;
  }
  return { grants, secrets, leaks };
}

export async function startPaymentsSystem(
  options: PaymentsSystemOptions = {},
): Promise<PaymentsSystem> {
  const planted = plantSecrets();
  const system = await startTestSystem({ env: options.env });
  try {
    const stripe = await startFakeStripe({
      secretKey: planted.secrets.get("STRIPE_SECRET_KEY")!,
      clientId: planted.clientId,
    });
    system.defer(() => stripe.stop());
    const logs: string[] = [];
    const log = recordingLogger(logs);
    const config = paymentsConfig(system.config, planted, { ...options, stripeUrl: stripe.url });
    const payments = await paymentsFixture(system, config, log);
    system.defer(() => payments[Symbol.asyncDispose]());
    return paymentsSystemOf({ system, stripe, payments, planted, logs, config });
  } catch (error) {
    await system.stop();
    throw error;
  }
}

/** The test's view of a started payments system. */
function paymentsSystemOf(parts: {
  system: TestSystem;
  stripe: FakeStripe;
  payments: PaymentsFixture;
  planted: Planted;
  logs: string[];
  config: Config;
}): PaymentsSystem {
  const { system, stripe, payments, logs } = parts;
  const responses: string[] = [];
  const readFacts = async () => {
    await payments.service.relay.flush();
    return await system.readFacts();
  };
  const check = leakCheck(parts.planted, stripe, { responses, logs, readFacts });
  const call = async (method: string, path: string, callOptions?: CallOptions) => {
    const result = await system.call(method, path, callOptions);
    responses.push(result.text);
    return result;
  };
  const stop = async () => {
    const found = await check.leaks().catch((error) => [`cannot check for leaks: ${error}`]);
    await system.stop();
    if (found.length) throw new Error(`Secrets leaked: ${found.join(", ")}`);
  };
  return {
    system,
    stripe,
    get payments() {
      return payments.service;
    },
    restartPayments: (changes) => payments.restart({ ...parts.config, ...changes }),
    sql: payments.sql,
    logs,
    responses,
    secrets: check.secrets,
    call,
    grant(grantOptions) {
      const grant = stripe.grant(grantOptions);
      check.grants.push(grant);
      return grant;
    },
    stripeEvent: (attributes = {}) => stripeEvent(system, attributes),
    ...linking(call),
    readFacts,
    leaks: check.leaks,
    [Symbol.asyncDispose]: stop,
  };
}

/** POST and PATCH of a Stripe authorization with a code, through `call`. */
function linking(call: PaymentsSystem["call"]): Pick<PaymentsSystem, "link" | "relink"> {
  return {
    link: (token, eventId, code, query = "") =>
      call("POST", `/v1/stripe-authorizations${query}`, {
        token,
        body: {
          data: {
            type: "stripe-authorization",
            attributes: { "stripe-auth-code": code },
            relationships: { event: { data: { type: "event", id: eventId } } },
          },
        },
      }),
    relink: (token, id, code, query = "") =>
      call("PATCH", `/v1/stripe-authorizations/${id}${query}`, {
        token,
        body: {
          data: { type: "stripe-authorization", id, attributes: { "stripe-auth-code": code } },
        },
      }),
  };
}

/** A published event that accepts Stripe, with its cast. */
function stripeEvent(system: TestSystem, attributes: Record<string, unknown>) {
  return system.eventWithCast({
    attributes: {
      name: `Paid event ${++counter}`,
      state: "published",
      "can-pay-by-stripe": true,
      ...attributes,
    },
  });
}

/**
 * Trashes `eventId` in the catalog's table, without a fact: a deletion as its commit leaves the
 * catalog, for tests that hand payments the fact themselves (payments asks the catalog whether a
 * link newer than the deletion belongs to an event live again).
 */
export async function trashEvent(p: PaymentsSystem, eventId: string): Promise<void> {
  await p.system.sql`update events set deleted_at = now() where id = ${eventId}`;
}

/** An event of its own, linked to Stripe (to `accountId` when given): the event, grant and row id. */
export async function linked(p: PaymentsSystem, accountId?: string) {
  const cast = await p.stripeEvent();
  const grant = p.grant({ accountId });
  const reply = await p.link(cast.owner.token, cast.event.id, grant.code);
  expectStatus(reply, 201);
  return { cast, grant, id: reply.body.data.id as string };
}
