import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { eventually } from "@testing/eventually.ts";
import { openDatabase } from "@shared/db.ts";
import { type Fact } from "@shared/facts.ts";
import { deleteFactStream, ensureFactStream } from "@shared/fact_streams.ts";
import { FactRelay } from "@shared/fact_relay.ts";
import { createLogger } from "@shared/log.ts";
import { facts } from "@shared/subjects.ts";
import { testBus, testDatabase } from "@shared/testing.ts";
import { exampleFact, publishFacts, readFacts } from "@testing/facts.ts";
import { migrateCatalog } from "./service.ts";
import { followPaymentsFacts } from "./follow_payments.ts";

const quiet = createLogger("test", "error");

function stripeFact(verb: "created" | "updated" | "deleted", eventId: string, at: Date): Fact {
  return exampleFact(`payments.stripe-authorization.${verb}`, { event: eventId }, { time: at });
}

async function linked(sql: Awaited<ReturnType<typeof openDatabase>>, id: string) {
  const [row] = await sql`select is_stripe_linked from events where id = ${id}`;
  return row.is_stripe_linked as boolean;
}

Deno.test("[catalog] is-stripe-linked follows payments facts, also those sent while it was down", async () => {
  await using db = await testDatabase();
  await using b = await testBus();
  const sql = await openDatabase(db.url, { schema: "catalog" });
  try {
    await migrateCatalog(sql);
    const [user] = await sql`insert into users (email, password_hash) values ('o@x.io', 'x')
      returning id`;
    const [event] = await sql`insert into events (identifier, name, starts_at, ends_at, owner_id)
      values ('abcdef01', 'E', now(), now() + interval '1 day', ${user.id}) returning id`;
    const id = String(event.id);
    await ensureFactStream(b.bus);
    const publish = (fact: Fact) => publishFacts(b.bus, [fact]);
    const t0 = Date.now();

    // The catalog is not running: the fact waits in the stream.
    await publish(stripeFact("created", id, new Date(t0)));
    const relay = new FactRelay(sql, b.bus, quiet);
    const consumer = await followPaymentsFacts(sql, relay, b.bus, quiet);
    await eventually(() => linked(sql, id));

    await publish(stripeFact("deleted", id, new Date(t0 + 2000)));
    await eventually(async () => !await linked(sql, id));

    // An older fact arriving late does not undo the newer one.
    await publish(stripeFact("updated", id, new Date(t0 + 1000)));
    await publish(stripeFact("created", "999", new Date(t0 + 3000)));
    // Both handled (and acknowledged) before the check: after a fixed pause, a consumer slower
    // than the pause let the check pass without the older fact ever applied.
    const jsm = await jetstreamManager(b.bus.nc);
    await eventually(
      async () => {
        const info = await jsm.consumers.info(facts.stream(b.bus.prefix), "catalog-stripe-links");
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      10_000,
      "both late facts handled",
    );
    assert.equal(await linked(sql, id), false);
    await consumer.stop();
    // Each change of is-stripe-linked was announced with the event, and nothing else.
    await relay.flush();
    const announced = (await readFacts(b.bus)).filter((f) => f.type.startsWith("catalog."));
    assert.deepEqual(
      announced.map((
        f,
      ) => [f.type, f.data.id, (f.data as Record<string, unknown>)["is-stripe-linked"]]),
      [["catalog.event.updated", id, true], ["catalog.event.updated", id, false]],
    );
    // Saying what changed, as every update of one row on its own does (found by a review: a
    // subscriber reading `changed` could not tell a Stripe link from an untold change).
    assert.deepEqual(announced.map((f) => f.changed), ["is-stripe-linked", "is-stripe-linked"]);
  } finally {
    await deleteFactStream(b.bus);
    await sql.end();
  }
});
