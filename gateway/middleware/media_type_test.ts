import assert from "node:assert/strict";
import { route } from "@shared/bus_endpoints.ts";
import { catalog } from "@shared/subjects.ts";
import { firstError, JSONAPI, testGateway } from "../_test_utils.ts";
import { acceptable, contentTypeProblem } from "./media_type.ts";

const body = JSON.stringify({ data: { type: "event", attributes: { name: "x" } } });

Deno.test("[gateway] acceptable() follows JSON:API 1.0 negotiation", () => {
  assert.equal(acceptable(JSONAPI), true);
  assert.equal(acceptable("*/*"), true);
  assert.equal(acceptable("application/*"), true);
  assert.equal(acceptable("text/html, application/vnd.api+json;q=0.9"), true);
  assert.equal(acceptable("text/html"), false);
  assert.equal(acceptable("application/json"), false);
  assert.equal(acceptable("application/json", true), true);
  assert.equal(acceptable(`${JSONAPI}; ext=bulk`), false);
  assert.equal(acceptable(`${JSONAPI}; ext=bulk, ${JSONAPI}`), true);
  // q=0 means "not acceptable" (RFC 9110), and the most specific range decides.
  for (
    const refused of [
      `${JSONAPI};q=0`,
      `${JSONAPI}; q=0.000`,
      "*/*;q=0",
      `text/html, ${JSONAPI};q=0`,
    ]
  ) {
    assert.equal(acceptable(refused), false, refused);
  }
  assert.equal(acceptable(`${JSONAPI};q=0, */*`), false, "the type itself outweighs */*");
  assert.equal(acceptable(`application/*;q=0, ${JSONAPI}`), true);
  // Every JSON:API instance with parameters: 406, whatever wildcard is beside it.
  assert.equal(acceptable(`${JSONAPI};ext="x", */*`), false);
  assert.equal(acceptable(`${JSONAPI};ext="x", application/*`), false);
  assert.equal(acceptable(`${JSONAPI};ext="x", application/json`, true), true, "login: JSON");
  assert.equal(acceptable("application/json;q=0", true), false);
  assert.equal(acceptable(""), true);
});

Deno.test("[gateway] contentTypeProblem() refuses parameters and other types", () => {
  assert.equal(contentTypeProblem(JSONAPI), undefined);
  assert.equal(contentTypeProblem("Application/Vnd.Api+JSON"), undefined);
  assert.match(contentTypeProblem(`${JSONAPI}; charset=utf-8`)!, /parameters/);
  assert.match(contentTypeProblem(undefined)!, /no Content-Type/);
  assert.ok(contentTypeProblem("application/json"));
  assert.equal(contentTypeProblem("application/json; charset=utf-8", true), undefined);
});

Deno.test("[gateway] POST /v1/events rejects a wrong media type with 415", async (t) => {
  await using gw = await testGateway();
  await gw.serve("catalog", [route(catalog.events.create, () => ({ status: 201, body: {} }))]);
  const cases: Record<string, Record<string, string>> = {
    "missing": {},
    "plain JSON": { "Content-Type": "application/json" },
    "text": { "Content-Type": "text/plain" },
    "with parameters": { "Content-Type": `${JSONAPI}; charset=utf-8` },
  };
  for (const [name, headers] of Object.entries(cases)) {
    await t.step(name, async () => {
      // A Blob body would set its own type, so send bytes.
      const response = await gw.app.request("/v1/events", {
        method: "POST",
        headers,
        body: new TextEncoder().encode(body),
      });
      assert.equal(response.status, 415);
      const error = await firstError(response);
      assert.equal(error.code, "unsupported_media_type");
      assert.deepEqual(error.source, { header: "Content-Type" });
    });
  }
  await t.step("PATCH too", async () => {
    const response = await gw.app.request("/v1/events/1", {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body,
    });
    assert.equal(response.status, 415);
  });
  await t.step("DELETE with a body", async () => {
    // Over HTTP a body always comes framed by Content-Length (or chunked encoding).
    const response = await gw.app.request("/v1/events/1", {
      method: "DELETE",
      headers: { "Content-Type": "text/plain", "Content-Length": String(body.length) },
      body,
    });
    assert.equal(response.status, 415);
  });
  await t.step("the right type passes", async () => {
    const response = await gw.app.request("/v1/events", {
      method: "POST",
      headers: { "Content-Type": JSONAPI },
      body,
    });
    assert.equal(response.status, 201);
  });
});

Deno.test("[gateway] GET /v1/events rejects an Accept without JSON:API with 406", async (t) => {
  await using gw = await testGateway();
  await gw.serve("catalog", [route(catalog.events.list, () => ({ status: 200, body: {} }))]);
  for (const accept of ["text/html", "application/json", `${JSONAPI}; ext=bulk`]) {
    await t.step(accept, async () => {
      const response = await gw.app.request("/v1/events", { headers: { Accept: accept } });
      assert.equal(response.status, 406);
      assert.equal((await firstError(response)).code, "not_acceptable");
    });
  }
  for (const accept of [JSONAPI, "*/*", "application/*", `text/html, ${JSONAPI}`]) {
    await t.step(`${accept} passes`, async () => {
      const response = await gw.app.request("/v1/events", { headers: { Accept: accept } });
      assert.equal(response.status, 200);
    });
  }
});

Deno.test("[gateway] POST /v1/auth/login accepts JSON:API and plain JSON but not text", async () => {
  await using gw = await testGateway();
  await gw.serve("catalog", [route(catalog.login, () => ({ status: 200, body: {} }))]);
  const login = (contentType: string) =>
    gw.app.request("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": contentType },
      body: JSON.stringify({ email: "a@example.com", password: "x" }),
    });
  assert.equal((await login("application/json")).status, 200);
  assert.equal((await login("application/json; charset=utf-8")).status, 200);
  assert.equal((await login(JSONAPI)).status, 200);
  assert.equal((await login("text/plain")).status, 415);
});
