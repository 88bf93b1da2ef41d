/**
 * The test system of testing/system.ts plus the discounts service: one or more instances, each
 * on its own NATS connection (so requests really spread over them), sharing the test database.
 * `discountsFixture` starts the service on any bus and database; `startDiscountsSystem` registers
 * it with `system.defer`, so `await using` stops everything.
 */
import { Bus } from "@shared/bus.ts";
import { openDatabase, type Sql } from "@shared/db.ts";
import { createLogger } from "@shared/log.ts";
import {
  type CallResult,
  expectStatus,
  startTestSystem,
  type TestSystem,
  type TestSystemOptions,
} from "@testing/system.ts";
import type { ServiceContext } from "@testing/fixtures.ts";
import { type DiscountsService, migrateDiscounts, SCHEMA, startDiscounts } from "./service.ts";

export interface DiscountsTestSystem extends TestSystem {
  /** A pool on the discounts schema of the test database. */
  dsql: Sql;
  discounts: DiscountsService[];
  /** Creates a code through the API as `token`; returns the whole answer. */
  postCode(token: string, options: CodeOptions): Promise<CallResult>;
  /** Creates a code through the API; throws unless 201. Returns its id. */
  createCode(token: string, options: CodeOptions): Promise<string>;
}

export interface CodeOptions {
  attributes?: Record<string, unknown>;
  /** Ticket code of this event (default), or event code when `usedFor` is "event". */
  eventId?: string;
  ticketIds?: string[];
  eventIds?: string[];
  usedFor?: "ticket" | "event";
  /** Extra raw relationships, merged over the built ones. */
  relationships?: Record<string, unknown>;
}

let counter = 0;

/** A code body: ticket kind by default, with a unique code text. */
export function codeBody(options: CodeOptions): Record<string, unknown> {
  const usedFor = options.usedFor ?? "ticket";
  const relationships: Record<string, unknown> = {};
  if (options.eventId) relationships.event = { data: { type: "event", id: options.eventId } };
  if (options.ticketIds) {
    relationships.tickets = { data: options.ticketIds.map((id) => ({ type: "ticket", id })) };
  }
  if (options.eventIds) {
    relationships.events = { data: options.eventIds.map((id) => ({ type: "event", id })) };
  }
  return {
    data: {
      type: "discount-code",
      attributes: {
        code: `CODE${++counter}${crypto.randomUUID().slice(0, 4)}`,
        value: 5,
        type: "amount",
        "used-for": usedFor,
        ...options.attributes,
      },
      relationships: { ...relationships, ...options.relationships },
    },
  };
}

export interface DiscountsFixture extends AsyncDisposable {
  /** A pool on the discounts schema of the test database. */
  sql: Sql;
  services: DiscountsService[];
}

/**
 * The discounts service on its schema of `context.databaseUrl`, migrated: `instances` of it (1 by
 * default), the first on `context.bus`, each other one on a connection of its own to the same
 * prefix. Dispose stops them, closes those connections and the pool.
 */
export async function discountsFixture(
  context: ServiceContext,
  options: { instances?: number; poolSize?: number; accessTtlMs?: number } = {},
): Promise<DiscountsFixture> {
  await using stack = new AsyncDisposableStack();
  const { bus } = context;
  const sql = await openDatabase(context.databaseUrl, { schema: SCHEMA, max: options.poolSize });
  stack.defer(() => sql.end({ timeout: 5 }));
  await migrateDiscounts(sql);
  const log = createLogger("discounts", context.logLevel);
  const services: DiscountsService[] = [];
  for (let i = 0; i < (options.instances ?? 1); i++) {
    const own = i === 0 ? bus : await Bus.connect({
      url: context.config.natsUrl,
      prefix: bus.prefix,
      name: `discounts-${i}`,
      logger: log,
    });
    if (i > 0) stack.defer(() => own.close());
    const service = await startDiscounts({ sql, bus: own, log, accessTtlMs: options.accessTtlMs });
    stack.defer(() => service.stop());
    services.push(service);
    await own.nc.flush();
  }
  const owned = stack.move();
  return { sql, services, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

export async function startDiscountsSystem(
  options: TestSystemOptions & { instances?: number; accessTtlMs?: number; poolSize?: number } = {},
): Promise<DiscountsTestSystem> {
  const system = await startTestSystem(options);
  try {
    const { databaseUrl, bus, config } = system;
    const logLevel = options.logLevel ?? "error";
    const discounts = await discountsFixture({ databaseUrl, bus, config, logLevel }, {
      instances: options.instances,
      poolSize: options.poolSize ?? 10,
      accessTtlMs: options.accessTtlMs,
    });
    system.defer(() => discounts[Symbol.asyncDispose]());
    const out = system as DiscountsTestSystem;
    out.dsql = discounts.sql;
    out.discounts = discounts.services;
    out.postCode = (token, codeOptions) =>
      system.call("POST", "/v1/discount-codes", { token, body: codeBody(codeOptions) });
    out.createCode = async (token, codeOptions) => {
      const reply = await out.postCode(token, codeOptions);
      expectStatus(reply, 201, "create a discount code");
      return reply.body.data.id;
    };
    return out;
  } catch (error) {
    await system.stop();
    throw error;
  }
}

/** A published event in a topic, with a paid ticket and a ticket code a co-organizer made. */
export async function codeWithTicket(system: DiscountsTestSystem) {
  const topicId = await system.createTopic("Science");
  const cast = await system.eventWithCast({
    attributes: { state: "published" },
    relationships: { "event-topic": { data: { type: "event-topic", id: topicId } } },
  });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, {
    type: "paid",
    price: 20,
  });
  const code = await system.createCode(cast.coorganizer.token, { eventId, ticketIds: [ticketId] });
  return { topicId, eventId, ticketId, code, token: cast.coorganizer.token };
}
