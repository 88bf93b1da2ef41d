import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { openDatabase } from "@shared/db.ts";
import { facts } from "@shared/subjects.ts";
import { testDatabase } from "@shared/testing.ts";
import { eventually } from "@testing/eventually.ts";
import { factBus } from "@testing/fact_bus.ts";
import { backUpSchema } from "@testing/schema_backup.ts";
import { activityCount, makeFact, publishFacts, startAuditOn } from "./_test_utils.ts";
import { DURABLE, SCHEMA } from "./service.ts";

// Until 2026-12-06 an audit log restored from a backup recorded only the facts that arrived from
// then on (the backup-and-restore review: restored to 8 activities of 26 facts, it stayed at 8)
// unless an operator removed its durable consumer by hand. Its database keeps its position now.
Deno.test("[audit] a log restored from a backup records again the facts it lacks, once each", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const jsm = await jetstreamManager(b.bus.nc);
  let audit = await startAuditOn(b.bus, db.url);
  try {
    await publishFacts(b.bus, Array.from({ length: 5 }, () => makeFact()));
    await eventually(async () => await activityCount(audit.sql) === 5, 10_000, "5 activities");
    await eventually(
      async () => {
        const info = await jsm.consumers.info(facts.stream(b.prefix), DURABLE);
        const [kept] = await audit.sql`select resume_at from fact_positions`;
        // Not behind: every fact handed over acknowledged, and the replay start past them.
        return kept !== undefined && info.num_ack_pending === 0 &&
          Number(kept.resume_at) > info.ack_floor.stream_seq;
      },
      10_000,
      "audit's position kept",
    );
    await using backup = await backUpSchema(db.url, SCHEMA);

    await publishFacts(b.bus, Array.from({ length: 4 }, () => makeFact()));
    await eventually(async () => await activityCount(audit.sql) === 9, 10_000, "9 activities");
    await audit.stop();
    await backup.restore();
    const check = await openDatabase(db.url, { schema: SCHEMA, max: 1 });
    assert.equal(await activityCount(check), 5, "restored to the backup's activities");
    await check.end();

    audit = await startAuditOn(b.bus, db.url);
    await eventually(async () => await activityCount(audit.sql) === 9, 10_000, "the 4 again");
    await publishFacts(b.bus, [makeFact()]);
    await eventually(async () => await activityCount(audit.sql) === 10, 10_000, "and a new one");
  } finally {
    await audit.stop();
  }
});
