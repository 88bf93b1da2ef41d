import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { openDatabase } from "@shared/db.ts";
import { facts } from "@shared/subjects.ts";
import { eventually } from "@testing/eventually.ts";
import { backUpSchema } from "@testing/schema_backup.ts";
import { expectStatus, startTestSystem } from "@testing/system.ts";
import { codeBody, discountsFixture } from "./_test_utils.ts";
import { SCHEMA } from "./service.ts";

// Found by a backup-and-restore review (2026-12-06): discounts restored from a backup taken
// before an event's deletion kept that event's ticket codes live for good (JetStream's durable
// consumer stood past the deletion and never handed it over again) unless an operator removed
// the durable by hand. The database now keeps its own position and gets what it lacks again.
Deno.test("[discounts] a database restored from before an event's deletion trashes its codes again", async () => {
  await using system = await startTestSystem();
  const { databaseUrl, bus, config } = system;
  const context = { databaseUrl, bus, config, logLevel: "error" as const };
  const first = await discountsFixture(context);
  // A pool of the test's own: the services' pools go with them.
  const sql = await openDatabase(system.databaseUrl, { schema: SCHEMA, max: 1 });
  system.defer(() => sql.end());
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const created = await system.call("POST", "/v1/discount-codes", {
    token: cast.owner.token,
    body: codeBody({ eventId: cast.event.id }),
  });
  expectStatus(created, 201, "a ticket code of the event");
  const codeId = created.body.data.id;
  const trashed = async () =>
    (await sql`select deleted_at from discount_codes where id = ${codeId}`)[0]?.deleted_at !==
      null;

  // The backup, once the database holds everything its durable consumer settled.
  const jsm = await jetstreamManager(system.bus.nc);
  const stream = facts.stream(system.bus.prefix);
  await eventually(
    async () => {
      const info = await jsm.consumers.info(stream, "discounts-catalog");
      const [kept] = await sql`select resume_at from fact_positions`;
      // Not behind: every fact handed over acknowledged, and the replay start past them.
      return kept !== undefined && info.num_ack_pending === 0 &&
        Number(kept.resume_at) > info.ack_floor.stream_seq;
    },
    10_000,
    "discounts' position kept",
  );
  await using backup = await backUpSchema(system.databaseUrl, SCHEMA);

  expectStatus(
    await system.call("DELETE", `/v1/events/${cast.event.id}`, { token: cast.owner.token }),
    200,
  );
  await eventually(trashed, 10_000, "the code trashed with its event");
  await first[Symbol.asyncDispose]();
  await backup.restore();

  assert.equal(await trashed(), false, "restored: the code is live again");
  const second = await discountsFixture(context);
  system.defer(() => second[Symbol.asyncDispose]());
  await eventually(trashed, 10_000, "the deletion handed over again: the code trashed");
});
