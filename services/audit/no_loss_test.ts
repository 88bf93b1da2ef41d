import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { facts } from "@shared/subjects.ts";
import { startTestSystem } from "@testing/system.ts";
import { activityCount, startAuditOn } from "./_test_utils.ts";
import { DURABLE } from "./service.ts";

Deno.test("[audit] 500 changes made while audit is down all become activities", async () => {
  await using system = await startTestSystem();
  const jsm = await jetstreamManager(system.bus.nc);
  const drained = async () => {
    const info = await jsm.consumers.info(facts.stream(system.prefix), DURABLE);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  };
  let audit = await startAuditOn(system.bus, system.databaseUrl);
  system.defer(() => audit.stop());
  await system.catalog.relay.flush();
  await eventually(drained, 10_000, "the start-up facts consumed");
  const before = await activityCount(audit.sql);
  await audit.stop();

  // 250 topics created and each renamed once: one fact per change.
  const ids: string[] = [];
  for (let i = 0; i < 250; i += 25) {
    ids.push(
      ...await Promise.all(Array.from({ length: 25 }, (_, j) => system.createTopic(`T ${i + j}`))),
    );
  }
  for (let i = 0; i < 250; i += 25) {
    await Promise.all(
      ids.slice(i, i + 25).map(async (id) => {
        const reply = await system.call("PATCH", `/v1/event-topics/${id}`, {
          token: system.admin.token,
          body: { data: { type: "event-topic", id, attributes: { name: `Renamed ${id}` } } },
        });
        assert.equal(reply.status, 200);
      }),
    );
  }
  await system.catalog.relay.flush();

  audit = await startAuditOn(system.bus, system.databaseUrl);
  await eventually(async () => await activityCount(audit.sql) >= before + 500, 20_000, "500 new");
  await eventually(drained, 10_000, "the consumer drained");
  assert.equal(await activityCount(audit.sql), before + 500);
  const actor = `${system.admin.email} (${system.admin.id})`;
  const [{ created, updated, others }] = await audit.sql`select
      count(*) filter (where action ~ '^Event topic \\d+ created$')::int as created,
      count(*) filter (where action ~ '^Event topic \\d+ updated$')::int as updated,
      count(*) filter (where actor <> ${actor})::int as others
    from activities where type = 'event-topic'`;
  assert.deepEqual({ created, updated, others }, { created: 250, updated: 250, others: 0 });
});
