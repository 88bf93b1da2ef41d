import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { ConflictError, NotFoundError, ServiceUnavailableError } from "@shared/errors.ts";
import { retryAfter } from "@shared/bus_serving.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { catalog, resolveEndpoint } from "@shared/subjects.ts";
import { firstError, JSONAPI, testGateway, token } from "./_test_utils.ts";
import { queryOf } from "./forward.ts";

/** A service that answers with the request it received, so tests can inspect it. */
function echo(endpoint: typeof catalog.events.get, status = 200) {
  return route(endpoint, (request: HttpRequest) => ({
    status,
    body: { data: null, meta: { received: request } },
  }));
}

Deno.test("[gateway] queryOf numbers the items of a filter's jQuery-style array, each kept", () => {
  const url = "http://x/v1/events?filter[0][val][]=b&filter[0][op]=in_&filter[0][val][]=a" +
    "&filter[1][and][0][val][]=c&filter[0][name]=code&sort[]=x&sort[]=y";
  assert.deepEqual(queryOf(url), {
    "filter[0][name]": "code",
    "filter[0][op]": "in_",
    "filter[0][val][0]": "b",
    "filter[0][val][1]": "a",
    "filter[1][and][0][val][0]": "c",
    // Outside the filter a repeated name counts once, with its first value.
    "sort[]": "x",
  });
  // Sent also as a value, or with an index: left as sent (a 400 naming it, empty brackets).
  assert.deepEqual(queryOf("http://x/e?filter[0][val]=a&filter[0][val][]=b"), {
    "filter[0][val]": "a",
    "filter[0][val][]": "b",
  });
  assert.deepEqual(
    queryOf("http://x/e?filter[0][val][]=a&filter[0][val][0]=b&filter[0][val][]=c"),
    {
      "filter[0][val][0]": "b",
      "filter[0][val][]": "a",
    },
  );
});

Deno.test("[gateway] queryOf keeps the first value of a repeated key, as Flask's request.args", () => {
  assert.deepEqual(queryOf("http://x/v1/events"), {});
  assert.deepEqual(queryOf("http://x/v1/events?a=1&b=2&a=3"), { a: "1", b: "2" });
  assert.deepEqual(queryOf("http://x/e?page%5Bsize%5D=5&sort=-name#frag"), {
    "page[size]": "5",
    sort: "-name",
  });
  // A `?` inside the fragment starts no query.
  assert.deepEqual(queryOf("http://x/v1/events/7#?sort=evil"), {});
  assert.deepEqual(queryOf("http://x/v1/events/7?a=1#?sort=evil"), { a: "1" });
});

Deno.test("[gateway] GET /v1/events/:id/tickets passes params, query, path and actor", async () => {
  await using gw = await testGateway();
  await gw.serve("catalog", [echo(catalog.events.related)]);
  const response = await gw.app.request(
    "/v1/events/42/tickets?include=event&page%5Bsize%5D=5&sort=a&sort=-b",
    { headers: { Authorization: `JWT ${await token("7")}`, "X-Request-Id": "trace-1" } },
  );
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Content-Type"), JSONAPI);
  const { meta } = await response.json();
  assert.deepEqual(meta.received, {
    actor: { id: "7" },
    params: { id: "42", rel: "tickets" },
    path: "/v1/events/42/tickets",
    query: { include: "event", "page[size]": "5", sort: "a" },
    requestId: "trace-1",
    method: "GET",
  });
});

Deno.test("[gateway] relationship routes pass params.rel to the relationship endpoint", async () => {
  await using gw = await testGateway();
  await gw.serve("catalog", [echo(catalog.eventTopics.relationship)]);
  const response = await gw.app.request("/v1/event-topics/3/relationships/event-sub-topics");
  assert.equal(response.status, 200);
  const { meta } = await response.json();
  assert.deepEqual(meta.received.params, { id: "3", rel: "event-sub-topics" });
  assert.equal(meta.received.actor, null);
});

Deno.test("[gateway] POST /v1/events relays status, Location and body bytes", async () => {
  await using gw = await testGateway();
  let received: HttpRequest | undefined;
  await gw.serve("catalog", [
    route(catalog.events.create, (request) => {
      received = request;
      return {
        status: 201,
        location: "/v1/events/9",
        body: { data: { type: "event", id: "9" }, jsonapi: { version: "1.0" } },
      };
    }),
  ]);
  const body = { data: { type: "event", attributes: { name: "Deno Fest" } } };
  const response = await gw.app.request("/v1/events", {
    method: "POST",
    headers: { "Content-Type": JSONAPI, Authorization: `Bearer ${await token("1")}` },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("Location"), "/v1/events/9");
  assert.equal(response.headers.get("Content-Type"), JSONAPI);
  assert.equal(
    await response.text(),
    JSON.stringify({ data: { type: "event", id: "9" }, jsonapi: { version: "1.0" } }),
  );
  assert.deepEqual(received?.body, body);
  assert.deepEqual(received?.actor, { id: "1" });
});

Deno.test("[gateway] an empty Idempotency-Key on a write is 400, and nothing is forwarded", async () => {
  await using gw = await testGateway();
  let forwarded = 0;
  await gw.serve("catalog", [
    route(catalog.events.create, () => {
      forwarded++;
      return { status: 201, location: "/v1/events/9", body: { data: null } };
    }),
  ]);
  const response = await gw.app.request("/v1/events", {
    method: "POST",
    headers: {
      "Content-Type": JSONAPI,
      Authorization: `Bearer ${await token("1")}`,
      "Idempotency-Key": "",
    },
    body: JSON.stringify({ data: { type: "event", attributes: { name: "Retry Fest" } } }),
  });
  assert.equal(response.status, 400);
  const { errors } = await response.json();
  assert.deepEqual(errors[0].source, { header: "Idempotency-Key" });
  assert.equal(forwarded, 0);
});

Deno.test("[gateway] DELETE /v1/tickets/:id without a body sends no body", async () => {
  await using gw = await testGateway();
  let received: HttpRequest | undefined;
  await gw.serve("catalog", [
    route(catalog.tickets.delete, (request) => {
      received = request;
      return { status: 200, body: { meta: { message: "Object successfully deleted" } } };
    }),
  ]);
  const response = await gw.app.request("/v1/tickets/4", { method: "DELETE" });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { meta: { message: "Object successfully deleted" } });
  assert.ok(received && !("body" in received));
});

Deno.test("[gateway] a 204 reply has neither body nor Content-Type", async () => {
  await using gw = await testGateway();
  await gw.serve("catalog", [route(catalog.users.delete, () => ({ status: 204, body: null }))]);
  const response = await gw.app.request("/v1/users/4", { method: "DELETE" });
  assert.equal(response.status, 204);
  assert.equal(response.headers.get("Content-Type"), null);
  assert.equal(await response.text(), "");
});

Deno.test("[gateway] errors thrown by the service arrive with their status and body", async (t) => {
  await using gw = await testGateway();
  await gw.serve("catalog", [
    route(catalog.events.get, () => {
      throw new NotFoundError("Cannot find event 5: no such event");
    }),
    route(catalog.events.update, () => {
      throw new ConflictError("Cannot update event 5: data.id does not match", {
        pointer: "/data/id",
      });
    }),
  ]);
  await t.step("404", async () => {
    const response = await gw.app.request("/v1/events/5");
    assert.equal(response.status, 404);
    assert.deepEqual(await firstError(response), {
      status: "404",
      code: "not_found",
      title: "Object not found",
      detail: "Cannot find event 5: no such event",
    });
  });
  await t.step("409 with a pointer", async () => {
    const response = await gw.app.request("/v1/events/5", {
      method: "PATCH",
      headers: { "Content-Type": JSONAPI },
      body: JSON.stringify({ data: { type: "event", id: "6" } }),
    });
    assert.equal(response.status, 409);
    assert.deepEqual((await firstError(response)).source, { pointer: "/data/id" });
  });
});

Deno.test("[gateway] POST /v1/auth/login answers plain JSON", async () => {
  await using gw = await testGateway();
  await gw.serve("catalog", [
    route(catalog.login, (request) => ({
      status: 200,
      body: { access_token: `token-for-${(request.body as { email: string }).email}` },
    })),
  ]);
  for (const path of ["/v1/auth/login", "/v1/auth/session"]) {
    const response = await gw.app.request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email: "a@example.com", password: "secret123" }),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Type"), "application/json");
    assert.deepEqual(await response.json(), { access_token: "token-for-a@example.com" });
  }
});

Deno.test("[gateway] GET /v1/events answers 503 when no service instance runs", async () => {
  await using gw = await testGateway();
  const response = await gw.app.request("/v1/events");
  assert.equal(response.status, 503);
  const error = await firstError(response);
  assert.equal(error.code, "service_unavailable");
});

Deno.test("[gateway] GET /v1/events answers 504 when the service answers too late", async () => {
  await using gw = await testGateway({ env: { REQUEST_TIMEOUT_MS: "100" } });
  await gw.serve("catalog", [
    route(catalog.events.list, async () => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return { status: 200, body: { data: [] } };
    }),
  ]);
  const response = await gw.app.request("/v1/events");
  assert.equal(response.status, 504);
  const error = await firstError(response);
  assert.equal(error.code, "gateway_timeout");
  assert.ok(!String(error.detail).includes("may have been made"), "a read changes nothing");
});

// A fault review: a service may commit a write and then die or stall before its answer leaves.
Deno.test("[gateway] a write's 504 says its change may have been made", async () => {
  await using gw = await testGateway({ env: { REQUEST_TIMEOUT_MS: "100" } });
  await gw.serve("catalog", [
    route(catalog.events.create, async () => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return { status: 201, body: { data: { type: "event", id: "1" } } };
    }),
  ]);
  for (const key of [undefined, "key-1"]) {
    const response = await gw.app.request("/v1/events", {
      method: "POST",
      headers: {
        "Content-Type": JSONAPI,
        Authorization: `JWT ${await token("1")}`,
        ...(key ? { "Idempotency-Key": key } : {}),
      },
      body: JSON.stringify({ data: { type: "event", attributes: { name: "x" } } }),
    });
    assert.equal(response.status, 504);
    assert.match(
      String((await firstError(response)).detail),
      /\(a change asked for may have been made\)$/,
    );
  }
});

Deno.test("[gateway] GET /v1/events?include= merges foreign includes from their owner", async () => {
  await using gw = await testGateway();
  let resolvedWith: unknown;
  await gw.serve("catalog", [
    route(catalog.events.get, () => ({
      status: 200,
      body: {
        data: { type: "event", id: "1" },
        included: [{ type: "ticket", id: "3" }],
      },
      foreignIncludes: { "discount-code": ["10", "11", "10"] },
    })),
  ]);
  await gw.serve("discounts", [
    route(resolveEndpoint("discounts"), (request) => {
      resolvedWith = request;
      return {
        data: request.ids.map((id) => ({
          type: "discount-code",
          id,
          attributes: { code: `C${id}` },
        })),
      };
    }),
  ]);
  const response = await gw.app.request("/v1/events/1?include=discount-codes", {
    headers: { Authorization: `JWT ${await token("5")}` },
  });
  assert.equal(response.status, 200);
  assert.deepEqual(resolvedWith, { actor: { id: "5" }, type: "discount-code", ids: ["10", "11"] });
  assert.deepEqual(await response.json(), {
    data: { type: "event", id: "1" },
    included: [
      { type: "ticket", id: "3" },
      { type: "discount-code", id: "10", attributes: { code: "C10" } },
      { type: "discount-code", id: "11", attributes: { code: "C11" } },
    ],
  });
});

// Found by a review: the includes were asked for with a fresh timeout once the first service had
// answered, so an answer could take twice REQUEST_TIMEOUT_MS (3.7 s with 2 s).
Deno.test("[gateway] includes from other services get what is left of the request's time", async () => {
  await using gw = await testGateway({ env: { REQUEST_TIMEOUT_MS: "1000" } });
  await gw.serve("catalog", [
    route(catalog.events.get, async () => {
      await new Promise((resolve) => setTimeout(resolve, 600));
      return {
        status: 200,
        body: { data: { type: "event", id: "1" } },
        foreignIncludes: { "discount-code": ["10"] },
      };
    }),
  ]);
  await gw.serve("discounts", [
    route(resolveEndpoint("discounts"), async () => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      return { data: [] };
    }),
  ]);
  const began = Date.now();
  const response = await gw.app.request("/v1/events/1?include=discount-codes", {
    headers: { Authorization: `JWT ${await token("5")}` },
  });
  const took = Date.now() - began;
  assert.equal(response.status, 504);
  assert.equal((await firstError(response)).code, "gateway_timeout");
  assert.ok(took < 1300, `answered after ${took} ms, the timeout being 1000`);
});

Deno.test("[gateway] a service's refusal when too busy keeps its Retry-After; other 503s have none", async () => {
  await using gw = await testGateway();
  const busy = () => retryAfter(new ServiceUnavailableError("Cannot serve the request now"), 1);
  await gw.serve("catalog", [
    route(catalog.events.create, () => {
      throw busy();
    }),
    route(catalog.events.get, (request: HttpRequest) => {
      if (request.params.id === "1") throw busy();
      throw new ServiceUnavailableError("Cannot reach the database");
    }),
  ]);
  const auth = { Authorization: `JWT ${await token("1")}` };
  const read = await gw.app.request("/v1/events/1", { headers: auth });
  assert.equal(read.status, 503);
  assert.equal(read.headers.get("Retry-After"), "1");
  await read.body?.cancel();
  const write = await gw.app.request("/v1/events", {
    method: "POST",
    headers: { ...auth, "Content-Type": JSONAPI },
    body: JSON.stringify({ data: { type: "event", attributes: { name: "Busy" } } }),
  });
  assert.equal(write.status, 503);
  assert.equal(write.headers.get("Retry-After"), "1");
  await write.body?.cancel();
  const other = await gw.app.request("/v1/events/2", { headers: auth });
  assert.equal(other.status, 503);
  assert.equal(other.headers.get("Retry-After"), null);
  await other.body?.cancel();
  // An anonymous read of a cached route takes the shared fetch: the header goes along.
  const anonymous = await gw.app.request("/v1/events/1");
  assert.equal(anonymous.status, 503);
  assert.equal(anonymous.headers.get("Retry-After"), "1");
  await anonymous.body?.cancel();
});
