/**
 * The discounts service keeps the catalog's access answers (shared/access_source.ts): these
 * tests check, on real NATS and Postgres, that a revocation made behind the gateway's back
 * counts once its fact arrives, that no entry outlives its age limit even without a fact, and
 * that an interrupted connection leaves nothing from before in use.
 */
import assert from "node:assert/strict";
import { Bus } from "@shared/bus.ts";
import type { Endpoint } from "@shared/bus_endpoints.ts";
import { createLogger } from "@shared/log.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { catalog } from "@shared/subjects.ts";
import { testDatabase } from "@shared/testing.ts";
import * as actions from "@testing/actions.ts";
import { eventually } from "@testing/eventually.ts";
import { catalogFixture, gatewayFixture, randomSecret, testConfig } from "@testing/fixtures.ts";
import { startNatsServer } from "@testing/nats_server.ts";
import { actorOf, expectStatus, type TestSystem } from "@testing/system.ts";
import { codeBody, discountsFixture, startDiscountsSystem } from "./_test_utils.ts";

/** A write straight to the catalog, as a gateway that announces nothing would relay it. */
async function writeBehindGateway(
  system: Pick<TestSystem, "bus" | "admin">,
  endpoint: Endpoint<HttpRequest, HttpReply>,
  request: Pick<HttpRequest, "params" | "path" | "body">,
): Promise<void> {
  const reply = await system.bus.forward(endpoint, {
    ...request,
    actor: actorOf(system.admin),
    query: {},
    requestId: crypto.randomUUID(),
  });
  assert.ok(reply.status < 300, `the write answered ${reply.status}`);
}

/** Polls `status` until it is `want`; returns the milliseconds it took. */
async function msUntil(status: () => Promise<number>, want: number, boundMs: number) {
  const began = performance.now();
  await eventually(async () => await status() === want, boundMs, `status ${want}`, 5);
  return performance.now() - began;
}

Deno.test("[discounts] a role or admin flag revoked behind the gateway is refused once its fact arrives", async (t) => {
  await using system = await startDiscountsSystem();
  // Published: a caller without a role is refused (403); on a draft the code is not found (404).
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const code = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const get = (token: string) =>
    system.call("GET", `/v1/discount-codes/${code}`, { token }).then((r) => r.status);

  await t.step("a co-organizer's role deleted", async () => {
    expectStatus(
      await system.call("GET", `/v1/discount-codes/${code}`, {
        token: cast.coorganizer.token,
      }),
      200,
    );
    await writeBehindGateway(system, catalog.usersEventsRoles.delete, {
      params: { id: cast.grants.coorganizer },
      path: `/v1/users-events-roles/${cast.grants.coorganizer}`,
    });
    const ms = await msUntil(() => get(cast.coorganizer.token), 403, 2_000);
    console.log(`role deletion seen after ${ms.toFixed(1)} ms`);
  });

  await t.step("an admin's flag removed", async () => {
    const user = cast.stranger;
    const flag = (isAdmin: boolean) => ({
      params: { id: user.id },
      path: `/v1/users/${user.id}`,
      body: { data: { type: "user", id: user.id, attributes: { "is-admin": isAdmin } } },
    });
    await writeBehindGateway(system, catalog.users.update, flag(true));
    await msUntil(() => get(user.token), 200, 2_000);
    await writeBehindGateway(system, catalog.users.update, flag(false));
    const ms = await msUntil(() => get(user.token), 403, 2_000);
    console.log(`admin flag removal seen after ${ms.toFixed(1)} ms`);
  });
});

Deno.test("[discounts] a kept access answer is not used past its age limit, even without a fact", async () => {
  const ttlMs = 400;
  await using system = await startDiscountsSystem({ accessTtlMs: ttlMs });
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const code = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const get = () =>
    system.call("GET", `/v1/discount-codes/${code}`, { token: cast.coorganizer.token })
      .then((r) => r.status);
  assert.equal(await get(), 200);
  const kept = performance.now();
  // Straight in the catalog's database: no fact, no announcement, only the age limit is left.
  await system.sql`delete from users_events_roles where id = ${cast.grants.coorganizer}`;
  assert.equal(await get(), 200, "the kept answer is used (else this test proves nothing)");
  await msUntil(get, 403, 5_000);
  // Kept at most when the first answer came; a poll takes a few ms: 250 ms of slack.
  const sinceKept = performance.now() - kept;
  assert.ok(sinceKept < ttlMs + 250, `refused ${sinceKept.toFixed(0)} ms after it was kept`);
});

Deno.test({
  name: "[discounts] after the NATS connection drops and comes back, no kept access answer is used",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using nats = await startNatsServer({ jetStream: true });
  await using database = await testDatabase();
  const prefix = `acc${crypto.randomUUID().slice(0, 8)}`;
  const logger = createLogger("test", "error");
  const bus = await Bus.connect({ url: nats.url, prefix, logger });
  await using _bus = { [Symbol.asyncDispose]: () => bus.close() };
  const admin = { email: `admin-${prefix}@example.test`, password: randomSecret() };
  const testBus = { bus, prefix, natsUrl: nats.url, [Symbol.asyncDispose]: async () => {} };
  const config = testConfig({ databaseUrl: database.url, bus: testBus, admin, logLevel: "error" });
  const context = { databaseUrl: database.url, bus, config, logLevel: "error" as const };
  await using catalogPart = await catalogFixture(context);
  await using discounts = await discountsFixture(context, { accessTtlMs: 60_000 });
  const { call } = gatewayFixture(context);
  const cast = await actions.eventWithCast(call, catalogPart.sql, {
    attributes: { state: "published" },
  });
  const created = await call("POST", "/v1/discount-codes", {
    token: cast.owner.token,
    body: codeBody({ eventId: cast.event.id }),
  });
  expectStatus(created, 201);
  const get = (token: string) =>
    call("GET", `/v1/discount-codes/${created.body.data.id}`, { token }).then((r) => r.status);
  assert.equal(await get(cast.coorganizer.token), 200);
  await catalogPart.sql`delete from users_events_roles where id = ${cast.grants.coorganizer}`;
  assert.equal(await get(cast.coorganizer.token), 200, "kept (else this test proves nothing)");

  await nats.stop();
  await nats.start();
  await eventually(async () => await get(cast.owner.token) === 200, 15_000, "NATS back");
  assert.equal(await get(cast.coorganizer.token), 403, "nothing from before the drop is used");
  const projection = discounts.services[0].access.projection!;
  await eventually(() => !projection.suspended, 5_000, "the projection resumed");
  await get(cast.owner.token);
  assert.ok(projection.size > 0, "answers are kept again after the reconnect");
});

Deno.test("[discounts] a password changed at /v1/auth/change-password ends the old token here at once", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const code = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const path = `/v1/discount-codes/${code}`;
  const old = cast.coorganizer.token;
  // Its access answer is kept now.
  expectStatus(await system.call("GET", path, { token: old }), 200);
  const changed = await system.call("POST", "/v1/auth/change-password", {
    token: old,
    headers: { "Content-Type": "application/json" },
    body: {
      data: { "old-password": cast.coorganizer.password, "new-password": "a brand new password" },
    },
  });
  expectStatus(changed, 200);
  // The next request: the gateway told the kept answers with its reply, not the fact later.
  expectStatus(await system.call("GET", path, { token: old }), 401);
});
