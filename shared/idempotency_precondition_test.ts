/**
 * A write whose `If-Match` the gateway found stale reaches its service marked
 * (`RequestOptions.preconditionFailed`): it is answered from its key's stored answer or with 412,
 * and never run.
 */
import assert from "node:assert/strict";
import { httpEndpoint, route } from "./bus_endpoints.ts";
import type { WritePrecondition } from "./errors.ts";
import { withIdempotency } from "./idempotency.ts";
import type { HttpRequest } from "./schemas/http.ts";
import { keyedStore } from "@testing/keyed_store.ts";

Deno.test("[idempotency] a write marked precondition-failed replays its key's answer or is 412", async (t) => {
  await using store = await keyedStore("stale");
  const { bus, sql } = store;
  const keyed = httpEndpoint("test.keyed");
  const secret = httpEndpoint("test.secret");
  let runs = 0;
  const handler = () => ({ status: 200, body: { data: { run: ++runs } } });
  const routes = withIdempotency(sql, [route(keyed, handler), route(secret, handler)], {
    unkeyed: [secret],
  });
  const service = bus.serve({ name: "stale-test", version: "0.0.0" }, routes);
  const req: HttpRequest = { actor: null, params: {}, path: "/t", query: {}, requestId: "r" };
  const send = (
    endpoint = keyed,
    idempotencyKey?: string,
    preconditionFailed: WritePrecondition = "If-Match",
  ) => bus.forward(endpoint, req, { idempotencyKey, preconditionFailed });
  try {
    await t.step("without a key, or on a route that keeps no keys: 412, not run", async () => {
      assert.equal((await send(keyed)).status, 412);
      assert.equal((await send(secret, "k")).status, 412);
      const refused = await send(keyed, undefined, "If-None-Match");
      assert.equal(refused.status, 412);
      const [error] = JSON.parse(new TextDecoder().decode(refused.body)).errors;
      assert.deepEqual(error.source, { header: "If-None-Match" }, "the failed header named");
      assert.equal(runs, 0);
    });
    await t.step("a key with no stored answer: 412, not run, the key left free", async () => {
      assert.equal((await send(keyed, "fresh")).status, 412);
      assert.equal(runs, 0);
      const applied = await bus.forward(keyed, req, { idempotencyKey: "fresh" });
      assert.equal(applied.status, 200);
      assert.equal(runs, 1);
    });
    await t.step("a key whose change was applied: its stored answer, not run again", async () => {
      const retried = await send(keyed, "fresh");
      assert.equal(retried.status, 200);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(retried.body)), { data: { run: 1 } });
      assert.equal(runs, 1);
    });
  } finally {
    await service.stop();
  }
});
