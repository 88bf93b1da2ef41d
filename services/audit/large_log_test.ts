import assert from "node:assert/strict";
import { openDatabase } from "@shared/db.ts";
import { expectStatus, startTestSystem } from "@testing/system.ts";
import { startAuditOn } from "./_test_utils.ts";
import { SCHEMA } from "./service.ts";

// Found by a review: the count came from a window over the page's query, so every page read,
// held and sorted the whole matching log: 1,000,000 activities took 1.0–1.5 s a page (the page
// alone 1 ms, a count 0.2 s), and past a few million every page hit the 5 s statement timeout.
// Holding the log shows as temporary files: with 100,000 activities and at most 1 MB of them
// (this test's own database), a page that holds only itself still answers.
Deno.test("[audit] GET /v1/activities pages a large log without holding all of it per page", async () => {
  await using system = await startTestSystem();
  const fill = await openDatabase(system.databaseUrl, { schema: SCHEMA, max: 1 });
  system.defer(() => fill.end());
  const database = new URL(system.databaseUrl).pathname.slice(1);
  await fill`alter database ${fill(database)} set temp_file_limit = '1MB'`;
  const audit = await startAuditOn(system.bus, system.databaseUrl);
  system.defer(() => audit.stop());
  await fill`insert into activities
    (fact_id, actor, occurred_at, action, service, type, verb, resource_type, resource_id)
    select gen_random_uuid(), 'ada@example.com (5)', now() - make_interval(secs => g),
      'Discount code SUMMER' || g || ' created for event 3',
      'discounts', 'discount-code', 'created', 'discount-code', g::text
    from generate_series(1, 100000) g`;
  await fill`analyze activities`;
  const admin = system.admin.token;
  for (const query of ["", "?page[number]=2", "?sort=id&page[size]=100", "?sort=-time"]) {
    const page = await system.call("GET", `/v1/activities${query}`, { token: admin });
    expectStatus(page, 200, query);
    assert.ok(page.body.meta.count >= 100_000, query);
  }
});
