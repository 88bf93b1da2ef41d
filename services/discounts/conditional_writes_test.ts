/**
 * If-Match on discount codes holds against a change committed between the gateway's read and the
 * write (shared/read_snapshot.ts): of two changes sent at once on one tag, one is 412. A change of
 * a code's tickets, kept in another table than the code, counts as a change of the code.
 */
import assert from "node:assert/strict";
import { expectStatus } from "@testing/system.ts";
import { codeWithTicket, startDiscountsSystem } from "./_test_utils.ts";

Deno.test("[discounts] of two changes of a code sent at once on one tag, exactly one goes ahead", async (t) => {
  await using system = await startDiscountsSystem();
  const { code, eventId, token, ticketId } = await codeWithTicket(system);
  const other = await system.createTicket(token, eventId, { type: "paid", price: 30 });
  const path = `/v1/discount-codes/${code}`;
  const tagOf = async (url: string) => {
    const reply = await system.call("GET", url, { token });
    expectStatus(reply, 200);
    return reply.headers.get("ETag")!;
  };
  const race = async (url: string, bodies: unknown[]) => {
    const etag = await tagOf(url);
    const replies = await Promise.all(
      bodies.map((body) =>
        system.call("PATCH", url, { token, headers: { "If-Match": etag }, body })
      ),
    );
    const statuses = replies.map((reply) => reply.status).sort();
    assert.deepEqual(statuses, [200, 412], JSON.stringify(replies.map((reply) => reply.body)));
    return replies.findIndex((reply) => reply.status === 200);
  };

  await t.step("its value", async () => {
    for (let pair = 0; pair < 5; pair++) {
      const values = [1 + pair, 7 + pair];
      const won = await race(
        path,
        values.map((value) => ({
          data: { type: "discount-code", id: code, attributes: { value } },
        })),
      );
      const now = await system.call("GET", path, { token });
      assert.equal(now.body.data.attributes.value, values[won]);
    }
  });
  await t.step("its tickets, through the relationship", async () => {
    const third = await system.createTicket(token, eventId, { type: "paid", price: 40 });
    const linkage = `${path}/relationships/tickets`;
    const linked = async () =>
      (await system.call("GET", linkage, { token })).body.data.map((r: { id: string }) => r.id);
    for (let pair = 0; pair < 5; pair++) {
      // Two changes (a write that changes nothing announces nothing and is not refused).
      const current = (await linked())[0];
      const choices = [ticketId, other, third].filter((id) => id !== current).map((id) => [id]);
      const won = await race(
        linkage,
        choices.map((ids) => ({
          data: ids.map((id) => ({ type: "ticket", id })),
        })),
      );
      assert.deepEqual(await linked(), choices[won]);
    }
  });
});
