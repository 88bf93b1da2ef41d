/**
 * Dredd hooks for blueprint/discounts.apib. Before each of its transactions the catalog and
 * discounts tables are emptied (ids restart at 1), then one fixture world is built: users 1
 * (admin), 2 (owner of event 1), 3 (co-organizer of event 1) and 4 (no role); event 1 `abcdef01`,
 * published, with ticket 1 (25.00); discount code 1 `EARLYBIRD` (ticket kind, 5.00 off ticket 1,
 * created by user 3), discount code 2 `PLATFORM10` (event kind, 10 %, applied to event 1,
 * created by user 1) and discount code 3 `PAUSED` (ticket kind, inactive, created by user 2);
 * event 2 `abcdef02`, published, owned by user 2, without codes (where event codes are applied).
 * The plan says who calls; the hook puts that user's token in.
 *
 * Needs `DATABASE_URL` and `JWT_SECRET`, which scripts/dredd.ts passes on.
 */
import { SCHEMA as DISCOUNTS_SCHEMA } from "../services/discounts/service.ts";
import { createCast, createEvent, createTicket, tokenFor } from "./factories.ts";
import { generatedExamplesOf, withGeneratedExamples } from "./error_examples.ts";
import { hooks, type Transaction } from "./hooks.ts";
import { closeFixtureDatabase, fixtureDatabase, hookEnv, resetCatalog, type Sql } from "./reset.ts";

type Who = "admin" | "owner" | "coorganizer" | "outsider" | "anonymous";

const USER_IDS: Record<Exclude<Who, "anonymous">, string> = {
  admin: "1",
  owner: "2",
  coorganizer: "3",
  outsider: "4",
};

const G = "Discount Codes";

/** Who calls, per transaction name Dredd prints (`deno task dredd --names`). */
const plans: Record<string, Who> = {
  [`${G} > Discount codes > List discount codes > Example 1`]: "admin",
  [`${G} > Discount codes > List discount codes > Example 2`]: "coorganizer",
  [`${G} > Discount codes > Create a discount code > Example 1`]: "coorganizer",
  [`${G} > Discount codes > Create a discount code > Example 2`]: "admin",
  [`${G} > Discount codes > Create a discount code > Example 3`]: "coorganizer",
  [`${G} > Discount codes > Create a discount code > Example 4`]: "coorganizer",
  [`${G} > Discount codes > Create a discount code > Example 5`]: "coorganizer",
  [`${G} > Discount codes > Create a discount code > Example 6`]: "coorganizer",
  [`${G} > Discount codes > Create a discount code > Example 7`]: "coorganizer",
  [`${G} > Discount code > Get a discount code > Example 1`]: "coorganizer",
  [`${G} > Discount code > Get a discount code > Example 2`]: "outsider",
  [`${G} > Discount code > Update a discount code > Example 1`]: "coorganizer",
  [`${G} > Discount code > Update a discount code > Example 2`]: "admin",
  [`${G} > Discount code > Delete a discount code`]: "coorganizer",
  [`${G} > Event of a discount code > Get the event of a discount code`]: "coorganizer",
  [`${G} > Events of a discount code > List the events of an event discount code`]: "admin",
  [`${G} > Tickets of a discount code > List the tickets of a discount code`]: "coorganizer",
  [`${G} > Marketer of a discount code > Get the marketer of a discount code`]: "admin",
  [`${G} > Event relationship of a discount code > Get the event linkage of a discount code`]:
    "coorganizer",
  [`${G} > Event relationship of a discount code > Set the event linkage of a discount code`]:
    "coorganizer",
  [`${G} > Event relationship of a discount code > Add to the event linkage of a discount code`]:
    "coorganizer",
  [`${G} > Event relationship of a discount code > Remove the event linkage of a discount code`]:
    "coorganizer",
  [`${G} > Events relationship of a discount code > Get the event linkage of an event discount code`]:
    "admin",
  [`${G} > Events relationship of a discount code > Replace the events of an event discount code`]:
    "admin",
  [`${G} > Events relationship of a discount code > Apply an event discount code to more events`]:
    "admin",
  [`${G} > Events relationship of a discount code > Stop applying an event discount code to events`]:
    "admin",
  [`${G} > Tickets relationship of a discount code > Get the ticket linkage of a discount code`]:
    "coorganizer",
  [`${G} > Tickets relationship of a discount code > Replace the tickets of a discount code > Example 1`]:
    "coorganizer",
  [`${G} > Tickets relationship of a discount code > Replace the tickets of a discount code > Example 2`]:
    "outsider",
  [`${G} > Tickets relationship of a discount code > Add tickets to a discount code`]:
    "coorganizer",
  [`${G} > Tickets relationship of a discount code > Remove tickets from a discount code`]:
    "coorganizer",
  [`${G} > Marketer relationship of a discount code > Get the marketer linkage of a discount code`]:
    "coorganizer",
  [`${G} > Marketer relationship of a discount code > Set the marketer linkage of a discount code`]:
    "coorganizer",
  [`${G} > Marketer relationship of a discount code > Add to the marketer linkage of a discount code`]:
    "coorganizer",
  [`${G} > Marketer relationship of a discount code > Remove the marketer linkage of a discount code`]:
    "coorganizer",
  [`${G} > Discount codes of an event > List the discount codes of an event > Example 1`]:
    "coorganizer",
  [`${G} > Discount codes of an event > List the discount codes of an event > Example 2`]:
    "outsider",
  [`${G} > Discount codes relationship of an event > Get the discount code linkage of an event`]:
    "owner",
  [`${G} > Event discount code of an event > Get the event discount code of an event`]: "admin",
  [`${G} > Event discount code relationship of an event > Get the event discount code linkage of an event`]:
    "admin",
  [`${G} > Checkout lookup > Look a code up at checkout`]: "anonymous",
  [`${G} > Checkout lookup > Look up an inactive code`]: "anonymous",
  [`${G} > Checkout lookup > Look up an unknown code`]: "anonymous",
  [`${G} > Discount codes of a user > List the discount codes a user created`]: "coorganizer",
  [`${G} > Discount codes relationship of a user > Get the discount code linkage of a user`]:
    "admin",
  [`${G} > Discount codes of a ticket > List the discount codes of a ticket`]: "coorganizer",
  [`${G} > Discount codes relationship of a ticket > Get the discount code linkage of a ticket`]:
    "owner",
  [`${G} > Price preview > Preview the price of an order > Example 1`]: "anonymous",
  [`${G} > Price preview > Preview the price of an order > Example 2`]: "anonymous",
  [`${G} > Price preview > Preview the price of an order > Example 3`]: "anonymous",
};

/** The plans above, extended to the generated error examples (hooks/error_examples.ts). */
const allPlans = withGeneratedExamples(plans, "blueprint/discounts.apib");

/**
 * A code's event and tickets (related and linkage) answer anyone the checkout lookup answers, for
 * a live ticket code usable now (services/discounts/handlers/codes.ts): their examples without a
 * token or without the rights are of code 1 made inactive first, as the blueprint says.
 */
const FOLLOWED_FROM_THE_LOOKUP = [
  `${G} > Event of a discount code > Get the event of a discount code`,
  `${G} > Tickets of a discount code > List the tickets of a discount code`,
  `${G} > Event relationship of a discount code > Get the event linkage of a discount code`,
  `${G} > Tickets relationship of a discount code > Get the ticket linkage of a discount code`,
];
const ofAnInactiveCode = new Set(
  generatedExamplesOf("blueprint/discounts.apib")
    .filter((example) => example.kind === "anonymous" || example.kind === "forbidden")
    .filter((example) => FOLLOWED_FROM_THE_LOOKUP.some((name) => example.baseName.startsWith(name)))
    .map((example) => example.name),
);

const env = hookEnv;
const db = fixtureDatabase;

/**
 * Empties the discounts tables (not the outbox) and restarts their ids at 1. The projection of
 * the catalog's events goes too: the catalog's ids restart as well, so old rows would lie.
 */
async function resetDiscounts(sql: Sql): Promise<void> {
  const tables = [
    "discount_codes",
    "discount_code_tickets",
    "discount_code_events",
    "redemptions",
    "catalog_events",
  ].map((name) => `${DISCOUNTS_SCHEMA}.${name}`);
  await sql`truncate table ${sql(tables)} restart identity cascade`;
}

interface CodeFixture {
  code: string;
  value: string;
  type: "amount" | "percent";
  usedFor: "event" | "ticket";
  eventId: string | null;
  marketerId: string;
  isActive?: boolean;
  ticketsNumber?: number | null;
  maxQuantity?: number;
}

async function createCode(sql: Sql, code: CodeFixture): Promise<string> {
  const row = {
    code: code.code,
    value: code.value,
    type: code.type,
    used_for: code.usedFor,
    event_id: code.eventId,
    marketer_id: code.marketerId,
    is_active: code.isActive ?? true,
    tickets_number: code.ticketsNumber ?? null,
    max_quantity: code.maxQuantity ?? 100,
  };
  const [{ id }] = await sql`insert into ${sql(`${DISCOUNTS_SCHEMA}.discount_codes`)} ${
    sql(
      row,
      "code",
      "value",
      "type",
      "used_for",
      "event_id",
      "marketer_id",
      "is_active",
      "tickets_number",
      "max_quantity",
    )
  } returning id`;
  return String(id);
}

/** The fixture world every discounts transaction starts from (after both resets). */
async function buildDiscountWorld(sql: Sql): Promise<void> {
  const { owner, coorganizer, event } = await createCast(sql);
  const ticket = await createTicket(sql, { eventId: event, name: "Standard", price: 25 });
  const early = await createCode(sql, {
    code: "EARLYBIRD",
    value: "5.00",
    type: "amount",
    usedFor: "ticket",
    eventId: event,
    marketerId: coorganizer,
    ticketsNumber: 100,
    maxQuantity: 10,
  });
  await sql`insert into ${sql(`${DISCOUNTS_SCHEMA}.discount_code_tickets`)}
    (discount_code_id, ticket_id) values (${early}, ${ticket})`;
  const platform = await createCode(sql, {
    code: "PLATFORM10",
    value: "10.00",
    type: "percent",
    usedFor: "event",
    eventId: null,
    marketerId: USER_IDS.admin,
  });
  await sql`insert into ${sql(`${DISCOUNTS_SCHEMA}.discount_code_events`)}
    (discount_code_id, event_id) values (${platform}, ${event})`;
  await createCode(sql, {
    code: "PAUSED",
    value: "2.00",
    type: "amount",
    usedFor: "ticket",
    eventId: event,
    marketerId: owner,
    isActive: false,
  });
  await createEvent(sql, { ownerId: owner, identifier: "abcdef02", name: "Open Data Day" });
}

function ours(transaction: Transaction): boolean {
  const file = (transaction.origin as { filename?: string } | undefined)?.filename;
  return !!file && file.endsWith("discounts.apib");
}

hooks.beforeEach(async (transaction) => {
  if (!ours(transaction)) return;
  const who = allPlans[transaction.name];
  if (!who) {
    transaction.fail =
      `Cannot prepare "${transaction.name}": hooks/discounts.ts has no plan for it`;
    return;
  }
  const sql = db();
  await resetCatalog(sql);
  await resetDiscounts(sql);
  await buildDiscountWorld(sql);
  if (ofAnInactiveCode.has(transaction.name)) {
    await sql`update ${sql(`${DISCOUNTS_SCHEMA}.discount_codes`)} set is_active = false
      where id = 1`;
  }
  if (who === "anonymous") delete transaction.request.headers.Authorization;
  else {
    const token = await tokenFor(USER_IDS[who], env("JWT_SECRET"));
    transaction.request.headers.Authorization = `JWT ${token}`;
  }
});

hooks.afterAll(async () => {
  await closeFixtureDatabase();
});
