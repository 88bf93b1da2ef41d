/**
 * What a buyer's client follows from the checkout lookup's answer: open-event-frontend's promo field
 * reads the code's `event` through its related link (its store keys events by identifier, so the
 * linkage's numeric id is never there), then the code's `tickets`. The original served both to
 * anyone; here they were the code's own rule (401 anonymous, 403 for a buyer), and a buyer's valid
 * promo code showed as "not valid" (a client review, 2026-12-05).
 */
import assert from "node:assert/strict";
import { expectError, expectStatus } from "@testing/system.ts";
import { startDiscountsSystem } from "./_test_utils.ts";

Deno.test("[discounts] the checkout lookup's related links answer whoever the lookup answers", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast({ attributes: { state: "published" } });
  const eventId = cast.event.id;
  const ticketId = await system.createTicket(cast.owner.token, eventId, {
    type: "paid",
    price: 20,
  });
  const code = (text: string, attributes: Record<string, unknown> = {}, id = eventId) =>
    system.createCode(cast.owner.token, {
      eventId: id,
      ticketIds: id === eventId ? [ticketId] : [],
      attributes: { code: text, ...attributes },
    });
  const open = await code("OPEN");
  const paused = await code("PAUSED", { "is-active": false });
  const draft = await system.createEvent(cast.owner.token);
  const ofDraft = await code("DRAFTED", {}, draft.id);
  const buyer = await system.signUp();

  await t.step(
    "a buyer, signed in or not, follows the lookup's event and tickets links",
    async () => {
      const lookup = await system.call("GET", `/v1/events/${eventId}/discount-codes/OPEN`);
      expectStatus(lookup, 200);
      const links = lookup.body.data.relationships;
      for (const token of [undefined, buyer.token]) {
        const event = await system.call("GET", links.event.links.related, { token });
        expectStatus(event, 200, "the code's event");
        assert.equal(event.body.data.id, eventId);
        assert.equal(event.body.data.attributes.identifier, cast.event.identifier);
        const tickets = await system.call("GET", links.tickets.links.related, { token });
        expectStatus(tickets, 200, "the code's tickets");
        assert.deepEqual(tickets.body.data.map((t: { id: string }) => t.id), [ticketId]);
        for (const rel of ["event", "tickets"]) {
          const linkage = await system.call("GET", links[rel].links.self, { token });
          expectStatus(linkage, 200, `the code's ${rel} linkage`);
        }
      }
    },
  );

  await t.step("its other relationships keep the code's own rule", async () => {
    for (const rel of ["marketer", "events"]) {
      expectError(await system.call("GET", `/v1/discount-codes/${open}/${rel}`), 401);
      expectError(
        await system.call("GET", `/v1/discount-codes/${open}/${rel}`, { token: buyer.token }),
        403,
      );
    }
  });

  await t.step("a code the lookup does not show keeps the code's own rule", async () => {
    for (const rel of ["event", "tickets"]) {
      expectError(await system.call("GET", `/v1/discount-codes/${paused}/${rel}`), 401);
      const asBuyer = { token: buyer.token };
      expectError(await system.call("GET", `/v1/discount-codes/${paused}/${rel}`, asBuyer), 403);
      // A draft's code is not found, as the draft is not.
      expectError(await system.call("GET", `/v1/discount-codes/${ofDraft}/${rel}`), 401);
      expectError(await system.call("GET", `/v1/discount-codes/${ofDraft}/${rel}`, asBuyer), 404);
      const owner = { token: cast.owner.token };
      expectStatus(await system.call("GET", `/v1/discount-codes/${paused}/${rel}`, owner), 200);
    }
  });
});
