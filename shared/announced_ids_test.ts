import assert from "node:assert/strict";
import { keepIdsPastFacts } from "./announced_ids.ts";
import { recordFact } from "./facts.ts";
import { createLogger } from "./log.ts";
import { outboxRelay } from "@testing/outbox_relay.ts";

const quiet = createLogger("test", "error");
const THINGS = [{ table: "things", created: "catalog.event-topic.created" as const }];

// The "things" stand in for event topics: a registered fact announces each one's id.
const announce = (id: string) => ({
  type: "catalog.event-topic.created" as const,
  actor: null,
  data: {
    id,
    name: `thing ${id}`,
    slug: `thing-${id}`,
    "system-image-url": null,
    "created-at": new Date(),
    "deleted-at": null,
  },
});

Deno.test("[facts] a table's ids are kept past the newest id its facts announced", async (t) => {
  await using system = await outboxRelay({ schema: "announced", logger: quiet });
  const { sql, bus, relay } = system;
  await sql`create table things (id bigserial primary key)`;
  const nextId = async () => (await sql`insert into things default values returning id`)[0].id;

  await t.step("no fact announced yet: the sequence is left as it is", async () => {
    await keepIdsPastFacts(sql, bus, THINGS, quiet);
    assert.equal(await nextId(), "1");
  });

  await t.step("behind the newest announced id (a restored table): moved past it", async () => {
    // Announced in the order a service makes them; the newest is the last.
    await sql.begin(async (tx) => {
      for (const id of ["30", "40"]) await recordFact(tx, announce(id));
    });
    await relay.flush();
    await keepIdsPastFacts(sql, bus, THINGS, quiet);
    assert.equal(await nextId(), "41");
  });

  await t.step("already past it: never moved back", async () => {
    await sql`select setval(pg_get_serial_sequence('things', 'id'), 100)`;
    await keepIdsPastFacts(sql, bus, THINGS, quiet);
    assert.equal(await nextId(), "101");
  });
});
