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
import { gatewayTouched } from "@shared/subjects.ts";

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

// Found by a review: a link or unlink waits until the catalog shows the new flag before it
// answers (services/payments/handlers/linked_flag.ts), yet its reply named the event by id only
// (a link) or not at all (an unlink): the writer's gateway kept the event's pages under its
// identifier (and, after an unlink, under its id) with the old flag until the catalog's fact
// came, and told its peers nothing of them.
Deno.test("[gateway] a link and an unlink drop every address of their event with their reply", async () => {
  await using p = await startPaymentsSystem({ env: shortSettle });
  const { system } = p;
  const { event, owner } = await p.stripeEvent();
  await p.readFacts();
  const announced: string[][] = [];
  const heard = system.bus.nc.subscribe(system.bus.subject(gatewayTouched), {
    callback: (_error, msg) => {
      announced.push(new TextDecoder().decode(msg.data).split(" "));
    },
  });
  system.defer(() => heard.unsubscribe());
  const addresses = [`event:${event.id}`, `event:${event.identifier}`];
  const pages = [`/v1/events/${event.id}`, `/v1/events/${event.identifier}`];
  /** Each page cached on the writer's gateway, then read once more right after a write. */
  const cache = async () => {
    await p.readFacts();
    await new Promise((resolve) => setTimeout(resolve, SHORT_SETTLE_MS + 50));
    for (const page of pages) await system.call("GET", page);
    for (const page of pages) {
      assert.equal((await system.call("GET", page)).headers.get("X-Cache"), "HIT");
    }
  };
  const shown = async (linked: boolean) => {
    for (const page of pages) {
      const seen = await system.call("GET", page);
      assert.equal(seen.headers.get("X-Cache"), "MISS", `${page} dropped by the write's reply`);
      assert.equal(seen.body.data.attributes["is-stripe-linked"], linked, page);
    }
  };

  await cache();
  const reply = await p.link(owner.token, event.id, p.grant().code);
  expectStatus(reply, 201);
  await shown(true);
  await system.bus.nc.flush();
  const link = announced.at(-1) ?? [];
  for (const tag of addresses) assert.ok(link.includes(tag), `the link names ${tag}: ${link}`);

  const id = reply.body.data.id;
  await cache();
  expectStatus(
    await p.call("DELETE", `/v1/stripe-authorizations/${id}`, { token: owner.token }),
    200,
  );
  await shown(false);
  await system.bus.nc.flush();
  const unlink = announced.at(-1) ?? [];
  for (const tag of addresses) {
    assert.ok(unlink.includes(tag), `the unlink names ${tag}: ${unlink}`);
  }
});
