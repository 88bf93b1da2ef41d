import assert from "node:assert/strict";
import { ConflictError, NotFoundError, UnprocessableError } from "@shared/errors.ts";
import { discountsRedemption } from "@shared/subjects.ts";
import { startDiscountsSystem } from "./_test_utils.ts";
import { confirm, release } from "./store/redemptions.ts";

async function codeWithCap(
  system: Awaited<ReturnType<typeof startDiscountsSystem>>,
  attributes: Record<string, unknown> = {},
) {
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { "tickets-number": 10, ...attributes },
  });
  return { cast, id };
}

Deno.test("[discounts] reserve: 200 concurrent reservations over two instances succeed exactly 10 times", async () => {
  await using system = await startDiscountsSystem({ instances: 2 });
  const { cast, id } = await codeWithCap(system);
  const results = await Promise.allSettled(
    Array.from({ length: 200 }, (_, i) =>
      system.bus.request(
        discountsRedemption.reserve,
        { codeId: id, orderId: `order-${i}`, quantity: 1 },
        { timeoutMs: 30_000 },
      )),
  );
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
  assert.equal(won.length, 10);
  assert.equal(lost.length, 190);
  assert.ok(lost.every((r) => r.reason instanceof ConflictError), String(lost[0]?.reason));
  // Both instances took part.
  for (const service of system.discounts) {
    const reserve = service.running.stats().find((s) => s.subject.endsWith("reserve"))!;
    assert.ok(reserve.num_requests > 0);
  }
  const [row] = await system.dsql`select used_count from discount_codes where id = ${id}`;
  assert.equal(row.used_count, 10);
  const [{ n }] = await system.dsql`select count(*)::int as n from redemptions
    where discount_code_id = ${id} and state = 'reserved'`;
  assert.equal(n, 10);
  const seen = await system.call("GET", `/v1/discount-codes/${id}`, { token: cast.owner.token });
  assert.equal(seen.body.data.attributes["used-count"], 10);
});

Deno.test("[discounts] reserve is idempotent per order and release gives the uses back", async (t) => {
  await using system = await startDiscountsSystem();
  const { id } = await codeWithCap(system, { "tickets-number": 3, "max-quantity": 3 });
  const reserve = (orderId: string, quantity = 1) =>
    system.bus.request(discountsRedemption.reserve, { codeId: id, orderId, quantity });

  await t.step("a retry of the same order does not count twice", async () => {
    const first = await reserve("a", 2);
    assert.deepEqual(first.reservation, {
      orderId: "a",
      codeId: id,
      quantity: 2,
      state: "reserved",
    });
    assert.equal(first.usedCount, 2);
    assert.equal(first.remaining, 1);
    const again = await Promise.all([reserve("a", 2), reserve("a", 2), reserve("a", 2)]);
    for (const answer of again) assert.equal(answer.usedCount, 2);
  });
  await t.step("the same order with another quantity is a conflict", async () => {
    await assert.rejects(reserve("a", 1), ConflictError);
  });
  await t.step("more than what is left is refused with how many are left", async () => {
    await assert.rejects(reserve("b", 2), (e: Error) => {
      assert.ok(e instanceof ConflictError);
      assert.match(e.message, /1 uses left/);
      return true;
    });
  });
  await t.step("release gives the uses back, once", async () => {
    const released = await system.bus.request(discountsRedemption.release, {
      codeId: id,
      orderId: "a",
    });
    assert.equal(released.reservation.state, "released");
    assert.equal(released.usedCount, 0);
    assert.equal(released.remaining, 3);
    const twice = await system.bus.request(discountsRedemption.release, {
      codeId: id,
      orderId: "a",
    });
    assert.equal(twice.usedCount, 0);
    const b = await reserve("b", 3);
    assert.equal(b.usedCount, 3);
    assert.equal(b.remaining, 0);
  });
  await t.step(
    "confirm keeps the uses; a confirmed reservation can still be released",
    async () => {
      const confirmed = await system.bus.request(discountsRedemption.confirm, {
        codeId: id,
        orderId: "b",
      });
      assert.equal(confirmed.reservation.state, "confirmed");
      assert.equal(confirmed.usedCount, 3);
      const again = await system.bus.request(discountsRedemption.confirm, {
        codeId: id,
        orderId: "b",
      });
      assert.equal(again.usedCount, 3);
      const released = await system.bus.request(discountsRedemption.release, {
        codeId: id,
        orderId: "b",
      });
      assert.equal(released.usedCount, 0);
      await assert.rejects(
        system.bus.request(discountsRedemption.confirm, { codeId: id, orderId: "b" }),
        ConflictError,
      );
    },
  );
  await t.step("a released order may reserve again", async () => {
    const back = await reserve("a", 1);
    assert.equal(back.reservation.state, "reserved");
    assert.equal(back.usedCount, 1);
  });
  await t.step("unknown reservations and codes are 404", async () => {
    await assert.rejects(
      system.bus.request(discountsRedemption.confirm, { codeId: id, orderId: "nope" }),
      NotFoundError,
    );
    await assert.rejects(
      system.bus.request(discountsRedemption.release, { codeId: id, orderId: "nope" }),
      NotFoundError,
    );
    await assert.rejects(
      system.bus.request(discountsRedemption.reserve, {
        codeId: "999999",
        orderId: "x",
        quantity: 1,
      }),
      NotFoundError,
    );
  });
  await t.step("every change published a fact, repeats none", async () => {
    await system.discounts[0].relay.flush();
    const facts = (await system.readFacts()).filter((f) =>
      f.type.startsWith("discounts.discount-code.")
    );
    const verbs = facts.filter((f) => f.data.id === id).map((f) => f.type.split(".")[2]);
    assert.deepEqual(verbs, [
      "created",
      "reserved",
      "released",
      "reserved",
      "confirmed",
      "released",
      "reserved",
    ]);
    const reserved = facts.find((f) => f.type.endsWith(".reserved"))!;
    assert.equal(reserved.data.code !== undefined, true);
    assert.deepEqual(reserved.data.reservation, {
      "order-id": "a",
      quantity: 2,
      state: "reserved",
    });
  });
});

Deno.test("[discounts] reserve refuses inactive, early and expired codes with 422 saying which", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const make = (attributes: Record<string, unknown>) =>
    system.createCode(cast.owner.token, { eventId: cast.event.id, attributes });
  const inactive = await make({ "is-active": false });
  const early = await make({ "valid-from": "2099-01-01T00:00:00Z" });
  const late = await make({
    "valid-from": "2000-01-01T00:00:00Z",
    "valid-till": "2000-01-02T00:00:00+08:00",
  });
  const cases: [string, RegExp][] = [[inactive, /not active/], [early, /valid from/], [
    late,
    /expired/,
  ]];
  for (const [codeId, detail] of cases) {
    await assert.rejects(
      system.bus.request(discountsRedemption.reserve, { codeId, orderId: "o", quantity: 1 }),
      (e: Error) => e instanceof UnprocessableError && detail.test(e.message),
    );
  }
  const [{ n }] = await system.dsql`select count(*)::int as n from redemptions`;
  assert.equal(n, 0);
});

Deno.test("[discounts] reserve of an unlimited code always succeeds and reports remaining null", async () => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, { eventId: cast.event.id });
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      system.bus.request(discountsRedemption.reserve, {
        codeId: id,
        orderId: `o${i}`,
        quantity: 2,
      })),
  );
  assert.ok(answers.every((a) => a.remaining === null));
  const [row] = await system.dsql`select used_count from discount_codes where id = ${id}`;
  assert.equal(row.used_count, 40);
});

Deno.test("[discounts] reserve refuses more than max-quantity, less than min-quantity and event codes", async (t) => {
  await using system = await startDiscountsSystem();
  const cast = await system.eventWithCast();
  const id = await system.createCode(cast.owner.token, {
    eventId: cast.event.id,
    attributes: { "tickets-number": 100, "min-quantity": 2, "max-quantity": 5 },
  });
  const eventCode = await system.createCode(system.admin.token, {
    usedFor: "event",
    eventIds: [cast.event.id],
  });
  const reserve = (codeId: string, orderId: string, quantity: number) =>
    system.bus.request(discountsRedemption.reserve, { codeId, orderId, quantity });
  const refusedWith = (pattern: RegExp) => (e: Error) => {
    assert.ok(e instanceof UnprocessableError, String(e));
    assert.match(e.message, pattern);
    return true;
  };
  await t.step("more than max-quantity: 422", async () => {
    await assert.rejects(reserve(id, "big", 6), refusedWith(/at most 5/));
  });
  await t.step("fewer than min-quantity: 422", async () => {
    await assert.rejects(reserve(id, "small", 1), refusedWith(/at least 2/));
  });
  await t.step("within the limits: reserved", async () => {
    assert.equal((await reserve(id, "ok", 5)).usedCount, 5);
  });
  await t.step("an event code does not discount ticket orders: 422", async () => {
    await assert.rejects(reserve(eventCode, "ev", 1), refusedWith(/event discount code/));
  });
  await t.step("nothing was taken by the refusals", async () => {
    const [row] = await system.dsql`select used_count from discount_codes where id = ${id}`;
    assert.equal(row.used_count, 5);
    const [ev] = await system.dsql`select used_count from discount_codes where id = ${eventCode}`;
    assert.equal(ev.used_count, 0);
  });
  await t.step("a used-up code is still a 409", async () => {
    await system.dsql`update discount_codes set tickets_number = 6 where id = ${id}`;
    await assert.rejects(reserve(id, "late", 2), ConflictError);
  });
});

Deno.test("[discounts] confirm and release wait for the code's lock, and a wait cut short is no 404", async (t) => {
  await using system = await startDiscountsSystem();
  const { id } = await codeWithCap(system);
  for (const orderId of ["a", "b"]) {
    await system.bus.request(discountsRedemption.reserve, { codeId: id, orderId, quantity: 1 });
  }
  /** `step` in a transaction that gives up waiting for a lock after 200 ms. */
  const impatient = (step: typeof confirm, orderId: string) =>
    system.dsql.begin(async (tx) => {
      await tx`set local lock_timeout = '200ms'`;
      return await step(tx, { codeId: id, orderId });
    });
  await system.dsql.begin(async (holder) => {
    // Another change of the code holds its row (a reserve, a PATCH).
    await holder`select id from discount_codes where id = ${id} for update`;
    await t.step(
      "confirm waits like every other change of the code (its facts stay in order)",
      async () => {
        await assert.rejects(impatient(confirm, "a"), (error: { code?: string }) => {
          assert.equal(error.code, "55P03", String(error));
          return true;
        });
      },
    );
    await t.step("release's wait cut short is that error, not 'no reservation' (404)", async () => {
      await assert.rejects(impatient(release, "b"), (error: unknown) => {
        assert.ok(!(error instanceof NotFoundError), String(error));
        assert.equal((error as { code?: string }).code, "55P03");
        return true;
      });
    });
  });
  const [held] = await system.dsql`select count(*)::int as n from redemptions
    where discount_code_id = ${id} and state = 'reserved'`;
  assert.equal(held.n, 2, "both reservations still held");
});
