/**
 * CORS against the whole gateway (real catalog, NATS and Postgres): a browser on another origin
 * can send every request Open Event's web client sends and read every answer.
 */
import assert from "node:assert/strict";
import { startTestSystem } from "@testing/system.ts";
import { settledCache, shortSettle } from "@testing/cache_settle.ts";

const ORIGIN = "https://eventyay.example";

function preflight(path: string, method: string, requestHeaders?: string) {
  const headers: Record<string, string> = {
    Origin: ORIGIN,
    "Access-Control-Request-Method": method,
  };
  if (requestHeaders !== undefined) headers["Access-Control-Request-Headers"] = requestHeaders;
  return new Request(`http://localhost${path}`, { method: "OPTIONS", headers });
}

function assertReadable(response: { headers: Headers }, what: string): void {
  assert.equal(response.headers.get("Access-Control-Allow-Origin"), "*", what);
  assert.equal(response.headers.get("Access-Control-Allow-Credentials"), null, what);
  const exposed = response.headers.get("Access-Control-Expose-Headers") ?? "";
  for (const name of ["ETag", "Location", "X-Request-Id"]) {
    assert.ok(exposed.split(/\s*,\s*/).includes(name), `${what}: ${name} exposed`);
  }
}

Deno.test("[gateway] browsers on another origin may call the API (CORS)", async (t) => {
  await using system = await startTestSystem({ env: shortSettle });
  const { app } = system;
  const asked = "Authorization, Content-Type, Idempotency-Key";

  await t.step("a preflight is answered 204 without a token, before routing", async () => {
    for (const [path, method] of [["/v1/events", "POST"], ["/v1/events/1", "PATCH"]]) {
      const reply = await app.fetch(preflight(path, method, asked));
      assert.equal(reply.status, 204, `${method} ${path}`);
      assert.equal(await reply.text(), "");
      assertReadable(reply, "preflight");
      const methods = reply.headers.get("Access-Control-Allow-Methods")!.split(/\s*,\s*/);
      for (const m of ["GET", "HEAD", "POST", "PATCH", "DELETE"]) assert.ok(methods.includes(m));
      assert.equal(reply.headers.get("Access-Control-Allow-Headers"), asked);
      assert.equal(reply.headers.get("Access-Control-Max-Age"), "600");
      assert.match(reply.headers.get("Vary") ?? "", /Access-Control-Request-Headers/);
    }
  });
  await t.step("requested headers that are no list of names are not echoed", async () => {
    const reply = await app.fetch(preflight("/v1/events", "POST", "Content-Type, <script>"));
    assert.equal(reply.status, 204);
    assert.equal(reply.headers.get("Access-Control-Allow-Headers"), null);
  });
  await t.step("an OPTIONS that is no preflight is answered with the route's Allow", async () => {
    const reply = await app.request("/v1/events", { method: "OPTIONS" });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers.get("Allow"), "GET, POST, HEAD, OPTIONS");
    assert.equal(reply.headers.get("Access-Control-Allow-Methods"), null);
    assertReadable(reply, "204");
    await reply.body?.cancel();
  });

  const topic = await system.createTopic("Cross-origin");
  await settledCache(system);
  await t.step("answers of every kind are readable", async () => {
    const origin = { Origin: ORIGIN };
    const path = `/v1/event-topics/${topic}`;
    const miss = await system.call("GET", path, { headers: origin });
    const hit = await system.call("GET", path, { headers: origin });
    assert.equal(hit.headers.get("X-Cache"), "HIT");
    const etag = hit.headers.get("ETag")!;
    const notModified = await system.call("GET", path, {
      headers: { ...origin, "If-None-Match": etag },
    });
    assert.equal(notModified.status, 304);
    const signedIn = await system.call("GET", path, { token: system.admin.token });
    const created = await system.call("POST", "/v1/event-topics", {
      token: system.admin.token,
      body: { data: { type: "event-topic", attributes: { name: "Created cross-origin" } } },
    });
    assert.equal(created.status, 201);
    const answers: [string, { headers: Headers }][] = [
      ["a miss", miss],
      ["a hit", hit],
      ["a 304", notModified],
      ["a signed-in read", signedIn],
      ["a 201", created],
      [
        "a bad token's 401",
        await system.call("GET", path, { headers: { Authorization: "JWT x" } }),
      ],
      ["an unknown path's 404", await system.call("GET", "/v1/nothing-here")],
      ["a service's 404", await system.call("GET", "/v1/event-topics/987654321")],
      ["/health", await system.call("GET", "/health")],
    ];
    for (const [what, answer] of answers) assertReadable(answer, what);
  });
  await t.step("a 401's challenge is readable by a script", async () => {
    const reply = await system.call("GET", "/v1/users", { headers: { Origin: ORIGIN } });
    assert.equal(reply.status, 401);
    assert.equal(reply.headers.get("WWW-Authenticate"), 'JWT realm="Open Event"');
    const exposed = reply.headers.get("Access-Control-Expose-Headers")!.split(/\s*,\s*/);
    assert.ok(exposed.includes("WWW-Authenticate"));
  });
});
