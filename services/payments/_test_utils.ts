/**
 * Test set-up for payments: the catalog and gateway of `startTestSystem`, a local fake Stripe,
 * and the payments service on its own bus connection, with a logger that keeps every line.
 * Every response body, log line and fact is checked for the secrets the test planted when the
 * system stops: a leak fails the test that caused it.
 */
import { Bus } from "@shared/bus.ts";
import type { Config } from "@shared/config.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import type { TestFact } from "@testing/system.ts";
import type { LogFields, Logger } from "@shared/log.ts";
import {
  type CallOptions,
  type CallResult,
  type EventCast,
  startTestSystem,
  type TestSystem,
} from "@testing/system.ts";
import { type FakeGrant, type FakeStripe, startFakeStripe } from "./fake_stripe.ts";
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
  grant(options?: { accountId?: string; delayMs?: number }): FakeGrant;
  /** A published event that accepts Stripe, with owner, organizer, co-organizer, stranger. */
  stripeEvent(attributes?: Record<string, unknown>): Promise<EventCast>;
  /** POST /v1/stripe-authorizations for `eventId` with `code`, as `token`'s user. */
  link(token: string | undefined, eventId: string, code: string): Promise<CallResult>;
  /** Payments' and the catalog's facts, pending ones published first. */
  readFacts(): Promise<TestFact[]>;
  /** Secrets (by name) found in responses, logs or facts. */
  leaks(): Promise<string[]>;
}

export interface PaymentsSystemOptions {
  env?: Record<string, string>;
  /** Leave a setting unset to test the 503 answers. */
  omit?: ("encryptionKey" | "stripe" | "webhookSecret")[];
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

export async function startPaymentsSystem(
  options: PaymentsSystemOptions = {},
): Promise<PaymentsSystem> {
  const omit = new Set(options.omit ?? []);
  const planted = new Map<string, string>([
    ["STRIPE_SECRET_KEY", `sk_test_platform_${crypto.randomUUID().replaceAll("-", "")}`],
    ["STRIPE_WEBHOOK_SECRET", `whsec_${crypto.randomUUID().replaceAll("-", "")}`],
    ["PAYMENTS_ENCRYPTION_KEY", randomBase64Key()],
  ]);
  const clientId = `ca_${crypto.randomUUID().slice(0, 12)}`;
  const system = await startTestSystem({ env: options.env });
  const logs: string[] = [];
  const responses: string[] = [];
  let stripe: FakeStripe | undefined;
  let bus: Bus | undefined;
  let sql: Sql | undefined;
  let payments: PaymentsService | undefined;
  let config: Config | undefined;
  let log: Logger | undefined;
  try {
    stripe = await startFakeStripe({ secretKey: planted.get("STRIPE_SECRET_KEY")!, clientId });
    log = recordingLogger(logs);
    bus = await Bus.connect({
      url: system.config.natsUrl,
      prefix: system.prefix,
      name: "payments-test",
      logger: log,
    });
    sql = await openDatabase(system.databaseUrl, { schema: SCHEMA, max: 5 });
    await migratePayments(sql);
    config = {
      ...system.config,
      stripeConnectUrl: stripe.url,
      stripeSecretKey: omit.has("stripe") ? undefined : planted.get("STRIPE_SECRET_KEY"),
      stripeClientId: omit.has("stripe") ? undefined : clientId,
      stripeWebhookSecret: omit.has("webhookSecret")
        ? undefined
        : planted.get("STRIPE_WEBHOOK_SECRET"),
      paymentsEncryptionKey: omit.has("encryptionKey")
        ? undefined
        : planted.get("PAYMENTS_ENCRYPTION_KEY"),
      stripeTimeoutMs: Number(options.env?.STRIPE_TIMEOUT_MS ?? 1000),
    };
    payments = await startPayments({ sql, bus, config, log });
    await bus.nc.flush();
  } catch (error) {
    await payments?.stop();
    await bus?.close();
    await sql?.end();
    await stripe?.stop();
    await system.stop();
    throw error;
  }
  const [fake, paymentsBus, db, baseConfig, paymentsLog] = [stripe, bus, sql, config!, log!];
  let service = payments;
  system.defer(async () => {
    await service.stop();
    await paymentsBus.close();
    await db.end({ timeout: 5 });
    await fake.stop();
  });

  const grants: FakeGrant[] = [];
  function plantedWithGrants(): Map<string, string> {
    const all = new Map(planted);
    // Codes the tests sent that Stripe never granted count too.
    fake.calls.forEach((call, i) => {
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

  async function readFacts(): Promise<TestFact[]> {
    await service.relay.flush();
    return await system.readFacts();
  }

  async function leaks(): Promise<string[]> {
    const facts = JSON.stringify(await readFacts().catch(() => []));
    const haystacks: [string, string][] = [
      ["a response", responses.join("\n")],
      ["a log line", logs.join("\n")],
      ["a fact", facts],
    ];
    const found: string[] = [];
    for (const [name, secret] of plantedWithGrants()) {
      if (secret.length < 8) continue; // too short to mean anything (e.g. an empty code)
      for (const [where, text] of haystacks) {
        if (text.includes(secret)) found.push(`${name} in ${where}`);
      }
    }
    return found;
  }

  const stop = async () => {
    const found = await leaks().catch((error) => [`cannot check for leaks: ${error}`]);
    await system.stop();
    if (found.length) throw new Error(`Secrets leaked: ${found.join(", ")}`);
  };

  const call = async (method: string, path: string, callOptions?: CallOptions) => {
    const result = await system.call(method, path, callOptions);
    responses.push(result.text);
    return result;
  };

  async function restartPayments(changes: Partial<Config>): Promise<void> {
    await service.stop();
    service = await startPayments({
      sql: db,
      bus: paymentsBus,
      config: { ...baseConfig, ...changes },
      log: paymentsLog,
    });
    await paymentsBus.nc.flush();
  }

  return {
    system,
    stripe: fake,
    get payments() {
      return service;
    },
    restartPayments,
    sql: db,
    logs,
    responses,
    secrets: plantedWithGrants,
    call,
    grant(grantOptions) {
      const grant = fake.grant(grantOptions);
      grants.push(grant);
      return grant;
    },
    stripeEvent(attributes = {}) {
      return system.eventWithCast({
        attributes: {
          name: `Paid event ${++counter}`,
          state: "published",
          "can-pay-by-stripe": true,
          ...attributes,
        },
      });
    },
    link(token, eventId, code) {
      return call("POST", "/v1/stripe-authorizations", {
        token,
        body: {
          data: {
            type: "stripe-authorization",
            attributes: { "stripe-auth-code": code },
            relationships: { event: { data: { type: "event", id: eventId } } },
          },
        },
      });
    },
    readFacts,
    leaks,
    [Symbol.asyncDispose]: stop,
  };
}
