import assert from "node:assert/strict";
import { type Route, route } from "@shared/bus_endpoints.ts";
import { catalog } from "@shared/subjects.ts";
import { JSONAPI, testGateway } from "./_test_utils.ts";
import type { HttpEndpoint } from "./forward.ts";

/** Every HTTP endpoint of the catalog, each answering with its own subject and params. */
function catalogEchoes(): Route[] {
  const endpoints: HttpEndpoint[] = [catalog.login];
  for (const value of Object.values(catalog)) {
    if (typeof value === "object" && !("subject" in value)) endpoints.push(...Object.values(value));
  }
  return endpoints.map((endpoint) =>
    route(endpoint, (request) => ({
      status: 200,
      body: { subject: endpoint.subject, params: request.params },
    }))
  );
}

const routes: [string, string, string, Record<string, string>][] = [
  ["POST", "/v1/auth/login", "catalog.auth.login", {}],
  ["POST", "/v1/auth/session", "catalog.auth.login", {}],
  ["GET", "/v1/users", "catalog.users.list", {}],
  ["POST", "/v1/users", "catalog.users.create", {}],
  ["GET", "/v1/users/1", "catalog.users.get", { id: "1" }],
  ["PATCH", "/v1/users/1", "catalog.users.update", { id: "1" }],
  ["DELETE", "/v1/users/1", "catalog.users.delete", { id: "1" }],
  ["GET", "/v1/users/1/events", "catalog.users.related", { id: "1", rel: "events" }],
  [
    "GET",
    "/v1/users/1/relationships/users-events-roles",
    "catalog.users.relationship",
    { id: "1", rel: "users-events-roles" },
  ],
  ["GET", "/v1/roles", "catalog.roles.list", {}],
  ["GET", "/v1/roles/owner", "catalog.roles.get", { id: "owner" }],
  ["POST", "/v1/users-events-roles", "catalog.users-events-roles.create", {}],
  ["PATCH", "/v1/users-events-roles/2", "catalog.users-events-roles.update", { id: "2" }],
  [
    "GET",
    "/v1/users-events-roles/2/role",
    "catalog.users-events-roles.related",
    { id: "2", rel: "role" },
  ],
  ["GET", "/v1/events", "catalog.events.list", {}],
  ["DELETE", "/v1/events/3", "catalog.events.delete", { id: "3" }],
  ["GET", "/v1/events/3/owner", "catalog.events.related", { id: "3", rel: "owner" }],
  [
    "GET",
    "/v1/events/3/relationships/event-sub-topic",
    "catalog.events.relationship",
    { id: "3", rel: "event-sub-topic" },
  ],
  ["POST", "/v1/event-topics", "catalog.event-topics.create", {}],
  [
    "GET",
    "/v1/event-topics/4/event-sub-topics",
    "catalog.event-topics.related",
    { id: "4", rel: "event-sub-topics" },
  ],
  ["PATCH", "/v1/event-sub-topics/5", "catalog.event-sub-topics.update", { id: "5" }],
  [
    "GET",
    "/v1/event-sub-topics/5/event-topic",
    "catalog.event-sub-topics.related",
    { id: "5", rel: "event-topic" },
  ],
  ["GET", "/v1/tickets/6", "catalog.tickets.get", { id: "6" }],
  [
    "GET",
    "/v1/tickets/6/relationships/event",
    "catalog.tickets.relationship",
    { id: "6", rel: "event" },
  ],
];

Deno.test("[gateway] each route reaches its catalog endpoint", async (t) => {
  await using gw = await testGateway();
  await gw.serve("catalog", catalogEchoes());
  for (const [method, path, subject, params] of routes) {
    await t.step(`${method} ${path}`, async () => {
      const hasBody = method === "POST" || method === "PATCH";
      const response = await gw.app.request(path, {
        method,
        headers: hasBody ? { "Content-Type": JSONAPI } : {},
        body: hasBody ? "{}" : undefined,
      });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { subject, params });
    });
  }
});

Deno.test("[gateway] users-events-roles has no list route", async () => {
  await using gw = await testGateway();
  const response = await gw.app.request("/v1/users-events-roles");
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("Allow"), "POST, OPTIONS");
  await response.body?.cancel();
});
