/**
 * The test system of testing/system.ts plus the discounts service: one or more instances, each
 * on its own NATS connection (so requests really spread over them), sharing the test database.
 * Registered with `system.defer`, so `await using` stops everything.
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

export async function startDiscountsSystem(
  options: TestSystemOptions & { instances?: number } = {},
): Promise<DiscountsTestSystem> {
  const system = await startTestSystem(options);
  try {
    const dsql = await openDatabase(system.databaseUrl, { schema: SCHEMA, max: 10 });
    system.defer(() => dsql.end({ timeout: 5 }));
    await migrateDiscounts(dsql);
    const log = createLogger("discounts", options.logLevel ?? "error");
    const services: DiscountsService[] = [];
    for (let i = 0; i < (options.instances ?? 1); i++) {
      const bus = i === 0 ? system.bus : await Bus.connect({
        url: system.config.natsUrl,
        prefix: system.prefix,
        name: `discounts-${i}`,
        logger: log,
      });
      if (i > 0) system.defer(() => bus.close());
      const service = await startDiscounts({ sql: dsql, bus, log });
      system.defer(() => service.stop());
      services.push(service);
      await bus.nc.flush();
    }
    const out = system as DiscountsTestSystem;
    out.dsql = dsql;
    out.discounts = services;
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
