import assert from "node:assert/strict";
import { sign } from "hono/jwt";
import type { JWTPayload } from "hono/utils/jwt/types";
import { route } from "@shared/bus_endpoints.ts";
import type { HttpRequest } from "@shared/schemas/http.ts";
import { UnauthorizedError } from "@shared/errors.ts";
import { catalog } from "@shared/subjects.ts";
import { firstError, testGateway, token } from "../_test_utils.ts";
import { CHALLENGE } from "./auth.ts";

async function actorSeen(gw: Awaited<ReturnType<typeof testGateway>>, authorization?: string) {
  const headers: Record<string, string> = authorization ? { Authorization: authorization } : {};
  const response = await gw.app.request("/v1/events/1", { headers });
  if (response.status !== 200) return response;
  return (await response.json()).meta.actor;
}

async function serveActorEcho(gw: Awaited<ReturnType<typeof testGateway>>) {
  await gw.serve("catalog", [
    route(catalog.events.get, (request: HttpRequest) => ({
      status: 200,
      body: { meta: { actor: request.actor } },
    })),
  ]);
}

Deno.test("[gateway] auth accepts JWT and Bearer schemes in any case", async () => {
  await using gw = await testGateway();
  await serveActorEcho(gw);
  const jwt = await token("12");
  for (const header of [`JWT ${jwt}`, `Bearer ${jwt}`, `jwt ${jwt}`, `BEARER  ${jwt}`]) {
    assert.deepEqual(await actorSeen(gw, header), { id: "12" }, header.slice(0, 7));
  }
});

Deno.test("[gateway] auth passes the token's version (ver) with the actor, and refuses a bad one", async () => {
  await using gw = await testGateway();
  await serveActorEcho(gw);
  const exp = Math.floor(Date.now() / 1000) + 60;
  const signed = (ver: unknown) => sign({ sub: "12", exp, ver }, "gateway-test-secret", "HS256");
  assert.deepEqual(await actorSeen(gw, `JWT ${await signed(3)}`), { id: "12", tokenVersion: 3 });
  assert.deepEqual(await actorSeen(gw, `JWT ${await signed(0)}`), { id: "12", tokenVersion: 0 });
  for (const bad of [-1, 1.5, "3", null]) {
    const response = await actorSeen(gw, `JWT ${await signed(bad)}`);
    assert.ok(response instanceof Response, `ver ${JSON.stringify(bad)} was accepted`);
    assert.equal(response.status, 401);
    assert.equal((await firstError(response)).status, "401");
  }
});

// Found by a review: the catalog stamps `iat` and `nbf` with its own clock, and the gateway
// checked them against its own with no leeway. With the two on different hosts, a catalog clock
// ahead of the gateway's by a few milliseconds made a fresh token a 401 until the next second
// (by a second or more: every first call after a login).
Deno.test("[gateway] auth accepts a token issued by a clock a little ahead of its own", async (t) => {
  await using gw = await testGateway();
  await serveActorEcho(gw);
  const now = Math.floor(Date.now() / 1000);
  const issuedAt = (at: number) =>
    sign(
      { sub: "12", ver: 0, iat: at, nbf: at, exp: at + 24 * 3600 },
      "gateway-test-secret",
      "HS256",
    );
  for (const ahead of [1, 5, 30]) {
    await t.step(`${ahead} s ahead: accepted`, async () => {
      const seen = await actorSeen(gw, `JWT ${await issuedAt(now + ahead)}`);
      assert.deepEqual(seen, { id: "12", tokenVersion: 0 });
    });
  }
  await t.step("an hour ahead, or a claim that is no number: 401", async () => {
    const claims = { sub: "12", exp: now + 7200, nbf: "soon" } as unknown as JWTPayload;
    const later = sign(claims, "gateway-test-secret", "HS256");
    for (const header of [`JWT ${await issuedAt(now + 3600)}`, `JWT ${await later}`]) {
      const response = await actorSeen(gw, header);
      assert.ok(response instanceof Response, "accepted");
      assert.equal(response.status, 401);
    }
  });
});

Deno.test("[gateway] auth passes a null actor when there is no Authorization header", async () => {
  await using gw = await testGateway();
  await serveActorEcho(gw);
  assert.equal(await actorSeen(gw), null);
});

Deno.test("[gateway] auth rejects bad tokens with a 401 JSON:API error", async (t) => {
  await using gw = await testGateway();
  await serveActorEcho(gw);
  const now = Math.floor(Date.now() / 1000);
  const good = await token("3");
  const [head, payload] = good.split(".");
  const cases: Record<string, string> = {
    "bad signature": `JWT ${head}.${payload}.${"A".repeat(43)}`,
    "wrong secret": `JWT ${await token("3", { secret: "another-secret" })}`,
    "expired": `JWT ${await token("3", { exp: now - 10 })}`,
    "malformed": "JWT not-a-token",
    "unknown scheme": `Basic ${good}`,
    "scheme without token": "JWT",
    "no exp": `JWT ${await sign({ sub: "3" }, "gateway-test-secret", "HS256")}`,
    "no sub": `JWT ${await sign({ exp: now + 60 }, "gateway-test-secret", "HS256")}`,
    "another algorithm": `JWT ${await sign(
      { sub: "3", exp: now + 60 },
      "gateway-test-secret",
      "HS512",
    )}`,
  };
  for (const [name, header] of Object.entries(cases)) {
    await t.step(name, async () => {
      const response = await actorSeen(gw, header) as Response;
      assert.equal(response.status, 401);
      const error = await firstError(response);
      assert.equal(error.code, "unauthorized");
      assert.deepEqual(error.source, { header: "Authorization" });
      assert.equal(response.headers.get("WWW-Authenticate"), CHALLENGE);
    });
  }
});

Deno.test("[gateway] every 401 says how to authenticate (WWW-Authenticate), relayed ones too", async (t) => {
  await using gw = await testGateway();
  await gw.serve("catalog", [
    // What a service answers an anonymous caller, or one whose token was revoked.
    route(catalog.events.get, (request: HttpRequest) => {
      if (request.actor === null) throw new UnauthorizedError("Cannot continue: log in first");
      return { status: 401, body: { errors: [{ status: "401", title: "Unauthorized" }] } };
    }),
  ]);
  assert.equal(CHALLENGE, 'JWT realm="Open Event"');
  const cases: [string, Record<string, string>][] = [
    ["the service's 401 of an anonymous caller", {}],
    ["the service's 401 of a revoked token", { Authorization: `JWT ${await token("3")}` }],
    ["the gateway's 401 of a bad token", { Authorization: "JWT not-a-token" }],
  ];
  for (const [what, headers] of cases) {
    await t.step(what, async () => {
      for (const method of ["GET", "HEAD"]) {
        const response = await gw.app.request("/v1/events/1", { method, headers });
        await response.body?.cancel();
        assert.equal(response.status, 401, method);
        assert.equal(response.headers.get("WWW-Authenticate"), CHALLENGE, method);
      }
    });
  }
  await t.step("other errors carry no challenge", async () => {
    const response = await gw.app.request("/v1/no-such-route");
    await response.body?.cancel();
    assert.equal(response.status, 404);
    assert.equal(response.headers.get("WWW-Authenticate"), null);
  });
});

Deno.test("[gateway] auth does not guard /health", async () => {
  await using gw = await testGateway({ services: [] });
  const response = await gw.app.request("/health", { headers: { Authorization: "JWT junk" } });
  assert.equal(response.status, 200);
});
