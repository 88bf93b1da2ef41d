import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

// A description of 20,000 control characters is allowed and takes 120 kB in JSON (`\u0001`):
// ten of them make an answer larger than NATS carries by default (1 MiB).
const LONG = "\u0001".repeat(20_000);

// Found by a review: such an answer was never sent (NATS refused it), the requester waited for
// its 504, and the unhandled rejection stopped the catalog and with it the whole system; a PATCH
// answered so had committed its change after all.
Deno.test("[catalog] an answer larger than the bus carries is refused clearly, and nothing stops", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const attributes = { state: "published", description: LONG };
  const events = [];
  for (let i = 0; i < 10; i++) events.push(await system.createEvent(owner.token, { attributes }));
  const eventId = events[0].id;

  await t.step("a list that does not fit: 400 saying how to ask for less", async () => {
    const reply = await system.call("GET", "/v1/events?page[size]=0");
    expectError(reply, 400);
    assert.match(reply.body.errors[0].detail, /more than the 1\.00 MiB the bus carries/);
    assert.match(reply.body.errors[0].detail, /page\[size\]/);
    // The error kept the success's cache tags once, and the gateway served it from its cache.
    const again = await system.call("GET", "/v1/events?page[size]=0");
    expectError(again, 400);
    assert.notEqual(again.headers.get("X-Cache"), "HIT");
    assert.match(again.headers.get("Cache-Control") ?? "", /no-store/);
  });

  await t.step("the catalog still answers, a smaller page too", async () => {
    expectStatus(await system.call("GET", "/v1/events?page[size]=2"), 200);
    const health = await system.call("GET", "/health");
    assert.equal(health.body.services.catalog.instances, 1);
  });

  await t.step(
    "a done write that does not fit is answered as done, without its includes",
    async () => {
      for (let i = 0; i < 9; i++) {
        await system.createTicket(owner.token, eventId, { description: LONG });
      }
      const body = { data: { type: "event", id: eventId, attributes: { name: "Renamed" } } };
      const reply = await system.call("PATCH", `/v1/events/${eventId}?include=tickets`, {
        token: owner.token,
        body,
      });
      expectStatus(reply, 200);
      assert.equal(reply.body.data.attributes.name, "Renamed");
      assert.equal(reply.body.included, undefined);
      assert.match(reply.body.meta["include-unavailable"], /The change is done/);
      const read = await system.call("GET", `/v1/events/${eventId}`);
      assert.equal(read.body.data.attributes.name, "Renamed");
    },
  );
});
