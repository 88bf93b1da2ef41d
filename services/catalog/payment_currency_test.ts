/**
 * An event's `payment-currency`, as the original stored it (`payment_currency`, any string or
 * null, no default) and open-event-frontend sends it from its wizard (`"USD"` unless chosen):
 * its currency display shows "0.00" for every amount of an event without one.
 */
import assert from "node:assert/strict";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";

function eventBody(attributes: Record<string, unknown>) {
  return {
    data: {
      type: "event",
      attributes: {
        name: "Priced",
        "starts-at": "2031-05-01T10:00:00+08:00",
        "ends-at": "2031-05-01T18:00:00+08:00",
        ...attributes,
      },
    },
  };
}

Deno.test("[catalog] an event's payment-currency is stored, shown, changed and announced", async (t) => {
  await using system = await startTestSystem();
  const alice = await system.signUp();
  const post = (attributes: Record<string, unknown>) =>
    system.call("POST", "/v1/events", { token: alice.token, body: eventBody(attributes) });
  let id = "";

  await t.step("POST keeps the code the wizard sends, upper-cased", async () => {
    const reply = await post({ "payment-currency": "usd" });
    expectStatus(reply, 201);
    id = reply.body.data.id;
    assert.equal(reply.body.data.attributes["payment-currency"], "USD");
    const read = await system.call("GET", `/v1/events/${id}`, { token: alice.token });
    expectStatus(read, 200);
    assert.equal(read.body.data.attributes["payment-currency"], "USD");
  });

  await t.step("POST without one leaves it null, as the original did", async () => {
    const reply = await post({});
    expectStatus(reply, 201);
    assert.equal(reply.body.data.attributes["payment-currency"], null);
  });

  await t.step("any three letters are taken, as the original took any string", async () => {
    const reply = await post({ "payment-currency": "XTS" });
    expectStatus(reply, 201);
    assert.equal(reply.body.data.attributes["payment-currency"], "XTS");
  });

  await t.step("anything but three letters is a 422 at its pointer", async () => {
    for (const bad of ["US", "USDT", "U$D", " USD", "", 840, true, ["USD"]]) {
      expectError(
        await post({ "payment-currency": bad }),
        422,
        { pointer: "/data/attributes/payment-currency" },
        JSON.stringify(bad),
      );
      expectError(
        await system.call("PATCH", `/v1/events/${id}`, {
          token: alice.token,
          body: { data: { type: "event", id, attributes: { "payment-currency": bad } } },
        }),
        422,
        { pointer: "/data/attributes/payment-currency" },
        `PATCH ${JSON.stringify(bad)}`,
      );
    }
  });

  await t.step("PATCH changes it, null clears it, leaving it out keeps it", async () => {
    const patch = (attributes: Record<string, unknown>) =>
      system.call("PATCH", `/v1/events/${id}`, {
        token: alice.token,
        body: { data: { type: "event", id, attributes } },
      });
    let reply = await patch({ "payment-currency": "eur" });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["payment-currency"], "EUR");
    reply = await patch({ name: "Renamed" });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["payment-currency"], "EUR");
    reply = await patch({ "payment-currency": null });
    expectStatus(reply, 200);
    assert.equal(reply.body.data.attributes["payment-currency"], null);
    reply = await patch({ "payment-currency": "USD" });
    expectStatus(reply, 200);
  });

  await t.step("lists filter and sort on it", async () => {
    const filter = encodeURIComponent(
      JSON.stringify([{ name: "payment-currency", op: "eq", val: "USD" }]),
    );
    const reply = await system.call("GET", `/v1/events?filter=${filter}`, { token: alice.token });
    expectStatus(reply, 200);
    assert.deepEqual(reply.body.data.map((event: { id: string }) => event.id), [id]);
    const sorted = await system.call("GET", "/v1/events?sort=payment-currency", {
      token: alice.token,
    });
    expectStatus(sorted, 200);
    assert.deepEqual(
      sorted.body.data.map((event: { attributes: Record<string, unknown> }) =>
        event.attributes["payment-currency"]
      ),
      ["USD", "XTS", null],
    );
  });

  await t.step("event facts carry it", async () => {
    const facts = await system.readFacts();
    const updated = facts.filter((fact) =>
      fact.type === "catalog.event.updated" && (fact.data as { id: string }).id === id
    );
    assert.deepEqual(
      updated.map((fact) => (fact.data as Record<string, unknown>)["payment-currency"]),
      ["EUR", "EUR", null, "USD"],
    );
  });
});
