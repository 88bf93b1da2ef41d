import assert from "node:assert/strict";
import {
  type ApiError,
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
} from "@shared/errors.ts";
import { firstError, testGateway, Wire } from "./_test_utils.ts";
import { errorBytes, errorResponse } from "./errors.ts";
import { withCorsHeaders } from "./middleware/cors.ts";
import { serveGuarded } from "./slow_clients.ts";

Deno.test("[gateway] an unknown path answers 404 JSON:API", async () => {
  await using gw = await testGateway();
  for (const path of ["/v1/nothing", "/v1/events/1/unknown-rel", "/"]) {
    const response = await gw.app.request(path);
    assert.equal(response.status, 404, path);
    assert.equal(response.headers.get("Cache-Control"), "private, no-store", "for no cache");
    assert.equal((await firstError(response)).code, "not_found");
  }
});

Deno.test("[gateway] a wrong method on a known path answers 405 with Allow", async (t) => {
  await using gw = await testGateway();
  const cases: [string, string, string][] = [
    ["PUT", "/v1/events/1", "GET, PATCH, DELETE, HEAD, OPTIONS"],
    ["DELETE", "/v1/events", "GET, POST, HEAD, OPTIONS"],
    ["POST", "/v1/roles/owner", "GET, HEAD, OPTIONS"],
    ["GET", "/v1/auth/login", "POST, OPTIONS"],
    ["POST", "/v1/events/1/relationships/tickets", "GET, HEAD, OPTIONS"],
    ["POST", "/health", "GET, HEAD, OPTIONS"],
  ];
  for (const [method, path, allow] of cases) {
    await t.step(`${method} ${path}`, async () => {
      const response = await gw.app.request(path, { method });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("Allow"), allow);
      assert.equal(response.headers.get("Cache-Control"), "private, no-store");
      assert.equal((await firstError(response)).code, "method_not_allowed");
    });
  }
});

// A review: the 405 named the method it refused, so a HEAD's said `Cannot HEAD` and its
// Content-Length was one more than the body of the GET it stands for (RFC 9110 §9.3.2).
Deno.test("[gateway] HEAD on a path without GET says the length of the GET's 405", async (t) => {
  await using gw = await testGateway();
  for (const path of ["/v1/auth/login", "/v1/users-events-roles", "/v1/webhooks/stripe"]) {
    await t.step(path, async () => {
      const get = await gw.app.request(path);
      const body = new Uint8Array(await get.arrayBuffer());
      const head = await gw.app.request(path, { method: "HEAD" });
      assert.equal(head.status, 405);
      assert.equal(head.headers.get("Allow"), get.headers.get("Allow"));
      assert.equal(head.headers.get("Content-Length"), String(body.byteLength));
      assert.equal(await head.text(), "");
    });
  }
});

Deno.test("[gateway] OPTIONS that is no preflight answers 204 with the path's Allow (RFC 9110 §9.3.7)", async (t) => {
  await using gw = await testGateway();
  const cases: [string, string][] = [
    ["/v1/events/1", "GET, PATCH, DELETE, HEAD, OPTIONS"],
    ["/v1/events", "GET, POST, HEAD, OPTIONS"],
    ["/v1/auth/login", "POST, OPTIONS"],
    ["/health", "GET, HEAD, OPTIONS"],
  ];
  for (const [path, allow] of cases) {
    await t.step(path, async () => {
      const response = await gw.app.request(path, { method: "OPTIONS" });
      assert.equal(response.status, 204);
      assert.equal(response.headers.get("Allow"), allow);
      assert.equal(response.headers.get("Cache-Control"), "private, no-store");
      assert.equal(response.headers.get("Access-Control-Allow-Origin"), "*");
      assert.equal(response.headers.get("Access-Control-Allow-Methods"), null, "no preflight's");
      assert.equal(await response.text(), "");
    });
  }
  // A review: a stale token a client still sends made it a 401 under /v1, where the original's
  // Flask answered OPTIONS without reading one. It says what the path allows, to anyone.
  await t.step("with a token that does not verify, as without one", async () => {
    for (const authorization of ["JWT not-a-token", "Bearer x.y.z"]) {
      const response = await gw.app.request("/v1/events/1", {
        method: "OPTIONS",
        headers: { Authorization: authorization },
      });
      assert.equal(response.status, 204, authorization);
      assert.equal(response.headers.get("Allow"), "GET, PATCH, DELETE, HEAD, OPTIONS");
      await response.body?.cancel();
    }
  });
  await t.step("a path without routes is still 404", async () => {
    const response = await gw.app.request("/v1/nothing", { method: "OPTIONS" });
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });
});

/** The server-wide `Allow`: every method a route of the gateway has. */
const SERVER_ALLOW = "GET, POST, PATCH, DELETE, HEAD, OPTIONS";

// A review: `OPTIONS *` asks about the server itself (RFC 9110 §9.3.7), and got the 404 of no
// route. Deno.serve hands the app `*` as the path `/*`; the relay passes it on untouched.
Deno.test("[gateway] OPTIONS * answers 204 with what the server allows, relayed or not", async (t) => {
  await using gw = await testGateway();
  const guarded = await serveGuarded(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5_000 },
    gw.app.fetch,
  );
  const plain = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, gw.app.fetch);
  try {
    for (
      const [name, port] of [["relay", guarded.port], ["Deno.serve", plain.addr.port]] as const
    ) {
      await t.step(name, async () => {
        using wire = await Wire.open(port);
        const answer = await wire.exchange("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        assert.match(answer, /^HTTP\/1\.1 204 /);
        assert.match(answer, new RegExp(`\r\nAllow: ${SERVER_ALLOW}\r\n`));
        assert.match(answer, /\r\nAccess-Control-Allow-Origin: \*\r\n/);
        assert.ok(answer.endsWith("\r\n\r\n"), "no body");
        // The connection goes on: the next request on it is answered as ever.
        const next = await wire.exchange("GET /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        assert.match(next, /^HTTP\/1\.1 404 /);
      });
    }
  } finally {
    await guarded.shutdown();
    await plain.shutdown();
  }
});

Deno.test("[gateway] an unexpected error becomes a generic 500 without details", async () => {
  await using gw = await testGateway();
  gw.app.get("/boom", () => {
    throw new Error("Cannot connect to postgres://admin:hunter2@db/x");
  });
  const response = await gw.app.request("/boom");
  assert.equal(response.status, 500);
  const text = await response.text();
  assert.doesNotMatch(text, /hunter2|postgres|at .*\.ts/);
  assert.deepEqual(JSON.parse(text), {
    errors: [{
      status: "500",
      code: "internal_error",
      title: "Internal server error",
      detail: "The server could not complete the request",
    }],
    jsonapi: { version: "1.0" },
  });
});

Deno.test("[gateway] a Hono HTTPException keeps its status as a JSON:API error", async () => {
  const { HTTPException } = await import("hono/http-exception");
  await using gw = await testGateway();
  gw.app.get("/too-large", () => {
    throw new HTTPException(413, { message: "internal wording" });
  });
  const response = await gw.app.request("/too-large");
  assert.equal(response.status, 413);
  const error = await firstError(response);
  assert.equal(error.code, "payload_too_large");
  assert.equal(error.detail, "Cannot process the request");
});

Deno.test("[gateway] errorBytes are the bytes Deno.serve writes for the error, a 401's challenge included", async (t) => {
  const errors: ApiError[] = [
    new UnauthorizedError("Cannot authenticate: the token's user does not exist"),
    new NotFoundError("Cannot find /v1/x: no such route"),
    new ServiceUnavailableError("Cannot reach catalog"),
  ];
  let current: ApiError = errors[0];
  // The full path's rendering: onError's response, then the CORS and request id middlewares.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const response = errorResponse(current);
    withCorsHeaders(response.headers);
    response.headers.set("X-Request-Id", "wire");
    return response;
  });
  try {
    using wire = await Wire.open(server.addr.port);
    for (const error of errors) {
      await t.step(`${error.status}`, async () => {
        current = error;
        const expected = await wire.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        const written = new TextDecoder().decode(errorBytes(error, "wire").chunks[0]);
        assert.equal(written.replace(/\r\ndate: [^\r]*/, ""), expected);
        const challenge = /\r\nWWW-Authenticate: ([^\r]*)\r\n/.exec(expected)?.[1];
        assert.equal(challenge, error.status === 401 ? 'JWT realm="Open Event"' : undefined);
      });
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("[gateway] an error that names a header is a JSON:API 1.1 document, every other one 1.0", async () => {
  const header = new UnauthorizedError("Cannot authenticate: expired", { header: "Authorization" });
  const pointer = new NotFoundError("Cannot find event 5");
  const versionOf = async (error: ApiError) => (await errorResponse(error).json()).jsonapi;
  assert.deepEqual(await versionOf(header), { version: "1.1" });
  assert.deepEqual(await versionOf(pointer), { version: "1.0" });
  const decoder = new TextDecoder();
  const wire = errorBytes(header, "id").chunks.map((chunk) => decoder.decode(chunk)).join("");
  const body = wire.slice(wire.indexOf("\r\n\r\n") + 4);
  assert.deepEqual(JSON.parse(body).jsonapi, { version: "1.1" }, "the relay's bytes");
});
