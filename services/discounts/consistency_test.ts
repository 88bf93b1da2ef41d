import assert from "node:assert/strict";
import { type Fact } from "@shared/facts.ts";
import { deleteFactStream } from "@shared/fact_streams.ts";
import { eventually } from "@testing/eventually.ts";
import { expectStatus } from "@testing/system.ts";
import { catalogInternal, discounts } from "@shared/subjects.ts";
import { testBus, testDatabase } from "@shared/testing.ts";
import { randomSecret, testConfig } from "@testing/fixtures.ts";
import { discountsFixture, startDiscountsSystem } from "./_test_utils.ts";

Deno.test("[discounts] follows the catalog: deleting an event removes its codes", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const ticketCode = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
  });
  expectStatus(
    await system.call("DELETE", `/v1/events/${cast.event.id}`, { token: cast.owner.token }),
    200,
  );
  await system.catalog.relay.flush();
  await eventually(
    async () => {
      const [row] = await system
        .dsql`select deleted_at from discount_codes where id = ${ticketCode}`;
      return row.deleted_at !== null;
    },
    10_000,
    "the ticket code is soft-deleted",
  );
  const [applied] = await system.dsql`select count(*)::int as n from discount_code_events
    where event_id = ${cast.event.id}`;
  assert.equal(applied.n, 0);
  const [kept] = await system.dsql`select deleted_at from discount_codes where id = ${eventCode}`;
  assert.equal(kept.deleted_at, null, "an event code lives on, un-applied");
  expectStatus(
    await system.call("GET", `/v1/discount-codes/${ticketCode}`, { token: system.admin.token }),
    404,
  );
  await system.discounts[0].relay.flush();
  const facts = (await system.readFacts()).filter((f) => f.source === "discounts");
  const deleted = facts.find((f) => f.type.endsWith(".deleted") && f.data.id === ticketCode);
  assert.ok(deleted, "a deleted fact for the code");
  assert.equal(deleted.actorid, cast.owner.id);
  assert.ok(facts.some((f) => f.type.endsWith(".updated") && f.data.id === eventCode));
});

Deno.test("[discounts] follows the catalog: deleting a ticket detaches it", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const keep = await system.createTicket(cast.owner.token, cast.event.id);
  const drop = await system.createTicket(cast.owner.token, cast.event.id);
  const id = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [keep, drop],
  });
  expectStatus(
    await system.call("DELETE", `/v1/tickets/${drop}`, { token: cast.owner.token }),
    200,
  );
  await system.catalog.relay.flush();
  await eventually(
    async () => {
      const rows = await system.dsql`select ticket_id::text as t from discount_code_tickets
      where discount_code_id = ${id}`;
      return rows.length === 1 && rows[0].t === keep;
    },
    10_000,
    "the ticket is detached",
  );
  const reply = await system.call("GET", `/v1/discount-codes/${id}/relationships/tickets`, {
    token: cast.owner.token,
  });
  assert.deepEqual(reply.body.data, [{ type: "ticket", id: keep }]);
});

Deno.test("[discounts] a revoked role is refused on the very next request", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const path = `/v1/discount-codes/${id}`;
  expectStatus(await system.call("GET", path, { token: cast.coorganizer.token }), 200);
  expectStatus(
    await system.call("DELETE", `/v1/users-events-roles/${cast.grants.coorganizer}`, {
      token: cast.owner.token,
    }),
    200,
  );
  // The event is a draft they may no longer see: its code is not found, as its list is not.
  expectStatus(await system.call("GET", path, { token: cast.coorganizer.token }), 404);
  expectStatus(
    await system.call("GET", `/v1/events/${cast.event.id}/discount-codes`, {
      token: cast.coorganizer.token,
    }),
    404,
    "the draft is now invisible to them",
  );
});

Deno.test("[discounts] a token of a deleted user is 401", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.coorganizer.token, { eventId: cast.event.id });
  expectStatus(
    await system.call("DELETE", `/v1/users/${cast.coorganizer.id}`, {
      token: cast.coorganizer.token,
    }),
    200,
  );
  const token = cast.coorganizer.token;
  const code = `/v1/discount-codes/${id}`;
  const valid = { data: { type: "discount-code", id, attributes: { value: 7 } } };
  // Whatever else is wrong with the request: who asks is the first thing answered.
  const attempts: [string, string, unknown?][] = [
    ["GET", code],
    ["GET", `${code}?include=nonsense`],
    ["GET", `/v1/events/${cast.event.id}/discount-codes?sort=nonsense`],
    ["POST", "/v1/discount-codes?include=nonsense", { data: { type: "discount-code" } }],
    ["POST", "/v1/discount-codes", { data: { type: "not-a-code" } }],
    ["POST", "/v1/discount-codes", { nonsense: true }],
    ["PATCH", `${code}?include=nonsense`, valid],
    ["PATCH", code, { data: { type: "discount-code", id: "other" } }],
    ["DELETE", `${code}?permanent=yes`],
  ];
  for (const [method, path, body] of attempts) {
    expectStatus(await system.call(method, path, { token, body }), 401, `${method} ${path}`);
  }
});

Deno.test("[discounts] every create, update and delete publishes a discount-code fact", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { code: "FACTS" },
  });
  expectStatus(
    await system.call("PATCH", `/v1/discount-codes/${id}`, {
      token: cast.owner.token,
      body: { data: { type: "discount-code", id, attributes: { value: 7 } } },
    }),
    200,
  );
  expectStatus(
    await system.call("DELETE", `/v1/discount-codes/${id}`, { token: cast.owner.token }),
    200,
  );
  await system.discounts[0].relay.flush();
  const facts = (await system.readFacts()).filter((f) =>
    f.type.startsWith("discounts.discount-code.")
  );
  assert.deepEqual(facts.map((f) => f.type.split(".")[2]), ["created", "updated", "deleted"]);
  for (const fact of facts) {
    assert.equal(fact.source, "discounts");
    assert.equal(fact.subject, `/v1/discount-codes/${id}`);
    assert.equal(fact.actorid, cast.owner.id);
    assert.equal(fact.data.code, "FACTS");
    assert.equal(fact.data.event, cast.event.id);
    assert.equal(fact.data["used-for"], "ticket");
  }
  // The public payload: a number, as clients read it (the column is an exact numeric).
  assert.equal(facts[1].data.value, 7);
  // An update names what it changed (until 2026-12-05 the discounts service said it nowhere).
  assert.deepEqual(facts.map((f) => f.changed), [undefined, "value", undefined]);
  assert.ok(facts[2].data["deleted-at"]);
});

Deno.test("[discounts] concurrent DELETEs of a code: one 200 and one fact, the rest 404", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const replies = await Promise.all(
    Array.from(
      { length: 5 },
      () => system.call("DELETE", `/v1/discount-codes/${id}`, { token: cast.owner.token }),
    ),
  );
  assert.deepEqual(replies.map((r) => r.status).sort(), [200, 404, 404, 404, 404]);
  await system.discounts[0].relay.flush();
  const deleted = (await system.readFacts()).filter((f) =>
    f.type === "discounts.discount-code.deleted"
  );
  assert.equal(deleted.length, 1);
});

Deno.test("[discounts] deleting a ticket publishes no fact for soft-deleted codes", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const ticket = await system.createTicket(cast.owner.token, cast.event.id);
  const live = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  const gone = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    ticketIds: [ticket],
  });
  expectStatus(
    await system.call("DELETE", `/v1/discount-codes/${gone}`, { token: cast.owner.token }),
    200,
  );
  expectStatus(
    await system.call("DELETE", `/v1/tickets/${ticket}`, { token: cast.owner.token }),
    200,
  );
  await system.catalog.relay.flush();
  let updated: Fact[] = [];
  await eventually(
    async () => {
      await system.discounts[0].relay.flush();
      updated = (await system.readFacts()).filter((f) =>
        f.source === "discounts" && f.type.endsWith(".updated")
      );
      return updated.some((f) => f.data.id === live);
    },
    10_000,
    "the live code's updated fact",
  );
  assert.deepEqual(updated.map((f) => f.data.id), [live]);
  assert.equal(updated[0].changed, "tickets");
  // Nor is it changed silently: it keeps the ticket its deletion fact showed.
  const [kept] = await system.dsql`select count(*)::int as n from discount_code_tickets
    where discount_code_id = ${gone} and ticket_id = ${ticket}`;
  assert.equal(kept.n, 1);
});

Deno.test("[discounts] a code's deleted fact shows the code as its last change left it", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const lastFact = async (id: string) => {
    await system.discounts[0].relay.flush();
    const facts = (await system.readFacts()).filter((f) => f.data.id === id);
    return facts.at(-1)!;
  };
  await t.step("a change committed while the DELETE waits for the row is in the fact", async () => {
    const id = await system.createCode(cast.owner.token, {
      eventId: cast.event.id,
      attributes: { value: 1 },
    });
    let deleting: ReturnType<typeof system.call> | undefined;
    await system.dsql.begin(async (tx) => {
      await tx`select id from discount_codes where id = ${id} for update`;
      deleting = system.call("DELETE", `/v1/discount-codes/${id}`, { token: cast.owner.token });
      // The DELETE has read the code and now waits for the row this transaction holds.
      await eventually(
        async () => {
          const [waiting] = await system.dsql`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`;
          return waiting.n > 0;
        },
        10_000,
        "the DELETE waiting for the row lock",
      );
      await tx`update discount_codes set value = 77 where id = ${id}`;
    });
    expectStatus(await deleting!, 200);
    const fact = await lastFact(id);
    assert.equal(fact.type, "discounts.discount-code.deleted");
    assert.equal(fact.data.value, 77);
  });
  await t.step("a soft delete announces the stored deleted-at and no events", async () => {
    const id = await system.createCode(system.admin.token, {
      usedFor: "event",
      eventIds: [cast.event.id],
    });
    expectStatus(
      await system.call("DELETE", `/v1/discount-codes/${id}`, { token: system.admin.token }),
      200,
    );
    const fact = await lastFact(id);
    const [row] = await system.dsql`select deleted_at from discount_codes where id = ${id}`;
    assert.equal(fact.type, "discounts.discount-code.deleted");
    assert.equal(fact.data["deleted-at"], row.deleted_at.toISOString());
    assert.deepEqual(fact.data.events, []);
    assert.equal(fact.purged, undefined, "a soft delete is no purge");
  });
  await t.step("a purge says purged, and shows the live row as it was", async () => {
    const id = await system.createCode(cast.owner.token, { eventId: cast.event.id });
    expectStatus(
      await system.call("DELETE", `/v1/discount-codes/${id}?permanent=true`, {
        token: system.admin.token,
      }),
      200,
    );
    const fact = await lastFact(id);
    assert.equal(fact.type, "discounts.discount-code.deleted");
    assert.equal(fact.purged, true);
    assert.equal(fact.data["deleted-at"], null);
  });
});

Deno.test("[discounts] a refusal after the caller was looked up asks the catalog nothing more", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.coorganizer.token, { eventId: cast.event.id });
  const token = cast.coorganizer.token;
  expectStatus(await system.call("GET", `/v1/discount-codes/${id}`, { token }), 200);
  const asked = system.bus.nc.subscribe(system.bus.subject(catalogInternal.access.subject));
  await system.bus.nc.flush();
  const mismatched = { data: { type: "discount-code", id: "other", attributes: { value: 7 } } };
  const refused = await system.call("PATCH", `/v1/discount-codes/${id}`, {
    token,
    body: mismatched,
  });
  expectStatus(refused, 409);
  await system.bus.nc.flush();
  asked.unsubscribe();
  assert.equal(
    asked.getReceived(),
    0,
    "the refusal's check of the caller was answered from memory",
  );
});

Deno.test("[discounts] a refusal is not held up by a catalog that does not answer", async () => {
  await using database = await testDatabase();
  await using bus = await testBus(`hung${crypto.randomUUID().slice(0, 8)}`);
  await using _streams = { [Symbol.asyncDispose]: () => deleteFactStream(bus.bus) };
  const admin = { email: `admin-${bus.prefix}@example.test`, password: randomSecret() };
  const config = testConfig({ databaseUrl: database.url, bus, admin, logLevel: "error" });
  // A catalog that takes every access question and answers none.
  const silent = bus.bus.nc.subscribe(bus.bus.subject(catalogInternal.access.subject), {
    queue: "catalog",
  });
  await using _discounts = await discountsFixture(
    { databaseUrl: database.url, bus: bus.bus, config, logLevel: "error" },
  );
  const began = performance.now();
  const reply = await bus.bus.forward(discounts.codes.create, {
    actor: { id: "1" },
    params: {},
    path: "/v1/discount-codes",
    query: { include: "nonsense" },
    body: {},
    requestId: crypto.randomUUID(),
  }, { timeoutMs: 5_000 });
  const tookMs = performance.now() - began;
  silent.unsubscribe();
  assert.equal(reply.status, 400);
  // The bus waits 5 s; the refusal waits CHECK_WITHIN_MS (1 s) for the check, then goes out as
  // it is.
  assert.ok(tookMs < 3_000, `answered in ${Math.round(tookMs)} ms`);
});
