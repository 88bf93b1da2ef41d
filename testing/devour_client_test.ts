/**
 * A front end's flow through a maintained JSON:API client library (devour-client, as an
 * ember-data-like app uses one), against the gateway served over real HTTP: the client
 * serializes requests and resolves relationships from linkage and `included` by itself.
 */
import type { JsonBody } from "./json.ts";
import assert from "node:assert/strict";
import JsonApi from "devour-client";
import { startDiscountsSystem } from "../services/discounts/_test_utils.ts";

type Model = JsonBody;

const hasOne = (type: string) => ({ jsonApi: "hasOne", type });
const hasMany = (type: string) => ({ jsonApi: "hasMany", type });

/** The models an Open Event front end declares (singular types, plural collection paths). */
function defineModels(api: Model): void {
  const options = (type: string, collectionPath: string) => ({ type, collectionPath });
  api.define("user", { email: "", password: "", "first-name": "" }, options("user", "users"));
  api.define("event-topic", {
    name: "",
    slug: "",
    "event-sub-topics": hasMany("event-sub-topic"),
  }, options("event-topic", "event-topics"));
  api.define("event-sub-topic", {
    name: "",
    "event-topic": hasOne("event-topic"),
  }, options("event-sub-topic", "event-sub-topics"));
  api.define("event", {
    name: "",
    "starts-at": "",
    "ends-at": "",
    state: "",
    "event-topic": hasOne("event-topic"),
    tickets: hasMany("ticket"),
    "discount-codes": hasMany("discount-code"),
    owner: hasOne("user"),
  }, options("event", "events"));
  api.define("ticket", {
    name: "",
    type: "",
    price: 0,
    quantity: 0,
    event: hasOne("event"),
  }, options("ticket", "tickets"));
  api.define("discount-code", {
    code: "",
    value: 0,
    type: "",
    "used-for": "",
    "tickets-number": 0,
    "is-active": true,
    event: hasOne("event"),
    tickets: hasMany("ticket"),
  }, options("discount-code", "discount-codes"));
}

async function logIn(baseUrl: string, email: string, password: string): Promise<string> {
  // The original's login is plain JSON, not JSON:API: front ends call it directly.
  const response = await fetch(`${baseUrl}/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

function client(baseUrl: string, token?: string): Model {
  const api = new JsonApi({ apiUrl: `${baseUrl}/v1`, pluralize: false, logger: false });
  defineModels(api);
  if (token) api.headers["Authorization"] = `JWT ${token}`;
  return api;
}

Deno.test("[gateway] a devour-client front end logs in, creates, lists with include, updates, deletes", async (t) => {
  await using system = await startDiscountsSystem();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, system.app.fetch);
  system.defer(() => server.shutdown());
  const baseUrl = `http://127.0.0.1:${server.addr.port}`;
  const password = "correct horse battery";
  const email = `front-${crypto.randomUUID().slice(0, 8)}@example.com`;

  await client(baseUrl).create("user", { email, password, "first-name": "Fran" });
  const api = client(baseUrl, await logIn(baseUrl, email, password));
  const admin = client(baseUrl, system.admin.token);

  const { data: topic } = await admin.create("event-topic", { name: "Front ends" });
  const { data: event } = await api.create("event", {
    name: "Devour Summit",
    "starts-at": "2031-05-01T09:00:00Z",
    "ends-at": "2031-05-01T17:00:00Z",
    state: "published",
    "event-topic": { id: topic.id },
  });
  const tickets: Model[] = [];
  for (const [name, price] of [["Early", 10], ["Late", 20]] as const) {
    const { data } = await api.create("ticket", {
      name,
      type: "paid",
      price,
      quantity: "50",
      event: { id: event.id },
    });
    tickets.push(data);
  }
  const { data: code } = await api.create("discount-code", {
    code: "DEVOUR",
    value: "5",
    type: "amount",
    "used-for": "ticket",
    "tickets-number": "100",
    "is-active": "true",
    event: { id: event.id },
    tickets: [{ id: tickets[0].id }],
  });

  await t.step("values come back with real JSON types", () => {
    assert.equal(code.value, 5);
    assert.equal(code["tickets-number"], 100);
    assert.equal(code["is-active"], true);
    assert.equal(tickets[0].quantity, 50);
  });

  await t.step("a list with include resolves relationships to objects", async () => {
    const { data } = await api.findAll("event", { include: "tickets,event-topic,owner" });
    const found = data.find((e: Model) => e.id === event.id);
    assert.deepEqual(found.tickets.map((ticket: Model) => ticket.name).sort(), ["Early", "Late"]);
    assert.equal(found["event-topic"].name, "Front ends");
    assert.equal(found.owner["first-name"], "Fran");
  });

  await t.step("one event includes its discount codes from the discounts service", async () => {
    const { data } = await api.find("event", event.id, { include: "discount-codes,tickets" });
    assert.deepEqual(data["discount-codes"].map((c: Model) => c.code), ["DEVOUR"]);
    assert.equal(data.tickets.length, 2);
  });

  await t.step("a topic includes its sub-topics", async () => {
    await admin.create("event-sub-topic", { name: "Clients", "event-topic": { id: topic.id } });
    const { data } = await api.find("event-topic", topic.id, { include: "event-sub-topics" });
    assert.deepEqual(data["event-sub-topics"].map((sub: Model) => sub.name), ["Clients"]);
  });

  await t.step("update and delete go through the same client", async () => {
    const { data: renamed } = await api.update("ticket", { id: tickets[1].id, name: "Late bird" });
    assert.equal(renamed.name, "Late bird");
    await api.destroy("ticket", tickets[1].id);
    const { data } = await api.find("event", event.id, { include: "tickets" });
    assert.deepEqual(data.tickets.map((ticket: Model) => ticket.name), ["Early"]);
  });

  await t.step("errors reach the client as JSON:API errors", async () => {
    const failure = await api.create("ticket", {
      name: "Bad",
      type: "paid",
      quantity: "4.5",
      event: { id: event.id },
    }).then(() => undefined, (error: Model) => error);
    // devour files JSON:API errors under the attribute their source.pointer names.
    assert.equal(failure?.quantity?.detail, "Cannot save: quantity must be an integer");
  });
});
