import assert from "node:assert/strict";
import { httpEndpoint, route } from "@shared/bus_endpoints.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { testBus } from "@shared/testing.ts";
import { token } from "../gateway/_test_utils.ts";
import { openBusFloor } from "./bus_floor.ts";

const SECRET = "a bus floor test secret of at least thirty-two characters";

/** A catalog stand-in on the real NATS: answers each event read with what it was asked. */
async function echoingCatalog() {
  const stand = await testBus();
  const echo = (request: HttpRequest): HttpReply =>
    request.params.id === "404"
      ? { status: 404, body: { errors: [{ status: "404", title: "Not found" }] } }
      : {
        status: 200,
        body: { data: { id: request.params.id, caller: request.actor?.id, path: request.path } },
      };
  const service = stand.bus.serve({ name: "catalog", version: "0.0.1" }, [
    route(httpEndpoint("catalog.events.get"), echo),
  ]);
  await stand.bus.nc.flush();
  return {
    prefix: stand.prefix,
    natsUrl: stand.natsUrl,
    async [Symbol.asyncDispose]() {
      await service.stop();
      await stand[Symbol.asyncDispose]();
    },
  };
}

for (const raw of [false, true]) {
  const how = raw ? " with nats.js alone" : "";
  Deno.test(`[bench] the bus floor forwards a signed-in event read${how}`, async () => {
    await using catalog = await echoingCatalog();
    const floor = await openBusFloor({
      NATS_URL: catalog.natsUrl,
      BUS_PREFIX: catalog.prefix,
      JWT_SECRET: SECRET,
      ...raw ? { BUS_FLOOR_RAW: "1" } : {},
    });
    try {
      const signed = { Authorization: `JWT ${await token("7", { secret: SECRET })}` };
      const read = await floor.fetch(new Request("http://floor/v1/events/42", { headers: signed }));
      assert.equal(read.status, 200);
      assert.equal(read.headers.get("Content-Type"), "application/vnd.api+json");
      assert.deepEqual(await read.json(), {
        data: { id: "42", caller: "7", path: "/v1/events/42" },
      });
      const forged = { Authorization: `JWT ${await token("7", { secret: `${SECRET}!` })}` };
      const refused = await floor.fetch(
        new Request("http://floor/v1/events/42", { headers: forged }),
      );
      assert.equal(refused.status, 401);
      for (const other of ["/v1/events", "/v1/events/42?include=tickets"]) {
        const answer = await floor.fetch(new Request(`http://floor${other}`, { headers: signed }));
        assert.equal(answer.status, 404, other);
      }
      if (!raw) {
        // The service's own status comes through (nats.js alone reads none).
        const missing = await floor.fetch(
          new Request("http://floor/v1/events/404", { headers: signed }),
        );
        assert.equal(missing.status, 404);
        assert.equal((await missing.json()).errors[0].title, "Not found");
      }
      assert.equal((await floor.fetch(new Request("http://floor/health"))).status, 200);
    } finally {
      await floor.close();
    }
  });
}
