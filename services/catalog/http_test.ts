import assert from "node:assert/strict";
import { expectStatus, startTestSystem } from "@testing/system.ts";

Deno.test("[catalog] over real HTTP, a DELETE without Content-Length deletes (as browsers send it)", async () => {
  await using system = await startTestSystem();
  const cast = await system.eventWithCast();
  const ticketId = await system.createTicket(cast.owner.token, cast.event.id);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    system.app.fetch,
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/v1/tickets/${ticketId}`;
    // fetch sends neither a body nor a Content-Length for this DELETE.
    const response = await fetch(url, {
      method: "DELETE",
      headers: { Authorization: `JWT ${cast.owner.token}` },
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.deepEqual(body.meta, { message: "Object successfully deleted" });
    const after = await system.call("GET", `/v1/tickets/${ticketId}`, { token: cast.owner.token });
    expectStatus(after, 404);
  } finally {
    await server.shutdown();
  }
});
