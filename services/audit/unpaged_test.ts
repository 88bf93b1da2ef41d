import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";
import { startAuditOn } from "./_test_utils.ts";

// Found by a review: `page[size]=0` read the whole log into the audit process (300,000
// activities: +540 MB, then a 504 after 5 s while the query went on), though an answer beyond the
// bus's 1 MiB is refused anyway. It now reads at most `unpagedMax` + 1 rows (here 50 + 1).
Deno.test("[audit] GET /v1/activities?page[size]=0 refuses more than it may read, with 400", async () => {
  await using system = await startTestSystem();
  const audit = await startAuditOn(system.bus, system.databaseUrl, { unpagedMax: 50 });
  system.defer(() => audit.stop());
  await audit.sql`insert into activities
    (fact_id, actor, occurred_at, action, service, type, verb, resource_type, resource_id)
    select gen_random_uuid(), 'ada@example.com (5)', now(), 'Event ' || g || ' updated',
      'catalog', 'event', 'updated', 'event', g::text
    from generate_series(1, 120) g`;
  const admin = system.admin.token;
  const all = await system.call("GET", "/v1/activities?page[size]=0", { token: admin });
  expectError(all, 400, { parameter: "page[size]" });
  assert.match(all.body.errors[0].detail, /more than 50 .*ask for pages/);

  const list = async (query: string, filter: unknown) => {
    const filtered = `${query}&filter=${encodeURIComponent(JSON.stringify(filter))}`;
    return await system.call("GET", `/v1/activities?${filtered}`, { token: admin });
  };
  const like = (val: string) => ({ name: "action", op: "like", val });
  // 9 + 21 + 10 + 10 = 50 of the activities inserted above: up to the limit, all of them.
  const fifty = [like("Event _ updated"), like("Event 1__ updated")];
  fifty.push(like("Event 2_ updated"), like("Event 3_ updated"));
  const some = await list("page[size]=0", { or: fifty });
  expectStatus(some, 200);
  assert.equal(some.body.meta.count, 50);
  assert.equal(some.body.data.length, 50);
  assert.equal(some.body.data[0].attributes.action, "Event 120 updated", "newest first");
  const more = [...fifty, { name: "action", op: "eq", val: "Event 40 updated" }];
  expectError(await list("page[size]=0", { or: more }), 400, { parameter: "page[size]" });
  // Pages still count every match.
  const page = await list("page[size]=100", [{ name: "type", op: "eq", val: "event" }]);
  expectStatus(page, 200);
  assert.equal(page.body.meta.count, 120);
  assert.equal(page.body.data.length, 100);
});
