/**
 * An event's `is-stripe-linked` comes from payments' facts (the catalog follows them), so the
 * response cache must drop every page that shows it: by id, by identifier and in lists.
 */
import assert from "node:assert/strict";
import { caller, expectStatus } from "@testing/system.ts";
import { SHORT_SETTLE_MS, shortSettle } from "@testing/cache_settle.ts";
import { startPaymentsSystem } from "../services/payments/_test_utils.ts";
import { secondGateway } from "./_test_utils.ts";
import { createApp } from "./app.ts";
import { testBus } from "@shared/testing.ts";

Deno.test("[gateway] anonymous pages of an event show is-stripe-linked as uncached ones do after a link and an unlink", async () => {
  await using p = await startPaymentsSystem({ env: shortSettle });
  const { system } = p;
  const other = await secondGateway(system);
  const bus = await testBus(system.prefix);
  system.defer(async () => await bus[Symbol.asyncDispose]());
  const config = { ...system.config, cache: { ...system.config.cache, maxBytes: 0 } };
  const uncached = caller(createApp({ bus: bus.bus, config }));
  const cast = await p.stripeEvent();
  const { event } = cast;
  const pages = [
    `/v1/events/${event.id}`,
    `/v1/events/${event.identifier}`,
    "/v1/events",
    `/v1/events/${event.id}/tickets?include=event`,
  ];
  const compare = async (when: string) => {
    await p.readFacts();
    await new Promise((resolve) => setTimeout(resolve, 2 * SHORT_SETTLE_MS + 50));
    await p.readFacts();
    for (const page of pages) {
      const truth = await uncached("GET", page);
      for (const call of [system.call, other.call]) {
        for (let twice = 0; twice < 2; twice++) {
          const seen = await call("GET", page);
          assert.equal(seen.text, truth.text, `${page} ${when}`);
        }
      }
    }
  };
  await compare("before the link");
  const grant = p.grant();
  const reply = await p.link(cast.owner.token, event.id, grant.code);
  expectStatus(reply, 201);
  await compare("after the link");
  assert.match((await uncached("GET", pages[1])).text, /"is-stripe-linked":true/);
  const id = reply.body.data.id;
  expectStatus(
    await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: cast.owner.token }),
    200,
  );
  await compare("after the unlink");
  assert.match((await uncached("GET", pages[1])).text, /"is-stripe-linked":false/);
});
