/**
 * Idempotency-Key end to end: through the gateway app, the bus and the owning service (catalog,
 * and discounts for a second service), with the real Postgres and NATS.
 */
import assert from "node:assert/strict";
import type { CallOptions } from "@testing/system.ts";
import { holdTableLock, untilWaitingForLocks } from "@testing/table_lock.ts";
import { startDiscountsSystem } from "../services/discounts/_test_utils.ts";
import { type Bus } from "./bus.ts";
import { type Handler, httpEndpoint, route } from "./bus_endpoints.ts";
import { type Sql, transaction } from "./db.ts";
import { COMMIT_MARGIN_MS } from "./deadline.ts";
import { withIdempotency } from "./idempotency.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";
import { keyedStore, serveKeyed } from "@testing/keyed_store.ts";

function topicBody(name: string) {
  return { data: { type: "event-topic", attributes: { name } } };
}

function keyed(key: string, options: CallOptions): CallOptions {
  return { ...options, headers: { ...options.headers, "Idempotency-Key": key } };
}

Deno.test("[catalog] POST/PATCH/DELETE with Idempotency-Key are done once", async (t) => {
  await using system = await startDiscountsSystem();
  const token = system.admin.token;
  const topicCount = async (name: string) =>
    Number((await system.sql`select count(*) from event_topics where name = ${name}`)[0].count);
  const factsAbout = async (type: string, verb: string, id: string) =>
    (await system.readFacts()).filter((f) =>
      f.type === `catalog.${type}.${verb}` && f.data.id === id
    );
  /** POST /v1/event-topics named `name`, with `key` as its Idempotency-Key (none if undefined). */
  const postTopic = (name: string, key?: string, as = token) => {
    const options = { token: as, body: topicBody(name) };
    return system.call("POST", "/v1/event-topics", key ? keyed(key, options) : options);
  };

  await t.step("a repeated POST gets the same answer, one row and one fact", async () => {
    const key = crypto.randomUUID();
    const first = await postTopic("Once", key);
    const again = await postTopic("Once", key);
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.equal(again.text, first.text);
    assert.equal(again.headers.get("Location"), first.headers.get("Location"));
    assert.equal(await topicCount("Once"), 1);
    assert.equal((await factsAbout("event-topic", "created", first.body.data.id)).length, 1);
  });

  await t.step("the same key with another body is 422 and changes nothing", async () => {
    const key = crypto.randomUUID();
    const first = await postTopic("First body", key);
    const other = await postTopic("Other body", key);
    assert.equal(first.status, 201);
    assert.equal(other.status, 422);
    assert.equal(other.body.errors[0].source.header, "Idempotency-Key");
    assert.equal(await topicCount("Other body"), 0);
  });

  // Found by a mutation review: with the query left out of the request's hash no test failed,
  // yet the permanent delete would get the soft delete's stored 200 and never purge the topic.
  await t.step("the same key with another query is 422 and changes nothing", async () => {
    const id = await system.createTopic("Query differs");
    const key = crypto.randomUUID();
    const path = `/v1/event-topics/${id}`;
    const trashed = await system.call("DELETE", path, keyed(key, { token }));
    const purged = await system.call("DELETE", `${path}?permanent=true`, keyed(key, { token }));
    assert.equal(trashed.status, 200, trashed.text);
    assert.equal(purged.status, 422, purged.text);
    assert.equal(purged.body.errors[0].source.header, "Idempotency-Key");
    const [{ count }] = await system.sql`select count(*)::int as count from event_topics
      where id = ${id}`;
    assert.equal(count, 1, "the trashed topic is still there, not purged");
  });

  // Found by a mutation review: with the expiry left out of the claim no test failed, yet a key
  // kept past its 24 hours (until the purge drops it) would stay 422 for a new request. The purge
  // cannot have dropped this row first: this pool's purge ran at the first keyed request of this
  // test and runs at most once a minute.
  await t.step("an expired key is a new request: another body is served, not 422", async () => {
    const key = crypto.randomUUID();
    const first = await postTopic("Before expiry", key);
    assert.equal(first.status, 201, first.text);
    await system.sql`update idempotency_keys set expires_at = now() - interval '1 second'
      where key = ${key}`;
    const later = await postTopic("After expiry", key);
    assert.equal(later.status, 201, later.text);
    assert.notEqual(later.body.data.id, first.body.data.id);
    assert.equal(await topicCount("After expiry"), 1);
  });

  await t.step("a retry while the first still runs is 409; the first then succeeds", async () => {
    const key = crypto.randomUUID();
    // Hold the first request inside its insert with a table lock from another session.
    await using lock = await holdTableLock(system.databaseUrl, "catalog.event_topics");
    const firstCall = postTopic("Slow", key);
    // The retry once the first is held at its insert (after a fixed 300 ms, a first request
    // slower than that let the retry go first and wait at the lock itself).
    await untilWaitingForLocks(system.sql, { count: 1, what: "the first POST" });
    const during = await postTopic("Slow", key);
    await lock.release();
    const first = await firstCall;
    assert.equal(during.status, 409);
    assert.equal(first.status, 201);
    assert.equal(await topicCount("Slow"), 1);
  });

  await t.step(
    "without the header a repeated POST runs again (and meets the unique name)",
    async () => {
      const statuses = [];
      for (let i = 0; i < 2; i++) {
        const reply = await postTopic("Twice");
        statuses.push(reply.status);
      }
      assert.deepEqual(statuses, [201, 409]);
      assert.equal(await topicCount("Twice"), 1);
    },
  );

  await t.step("a repeated PATCH and DELETE change and announce once", async () => {
    const id = await system.createTopic("Patched");
    const patch = { data: { type: "event-topic", id, attributes: { name: "Patched 2" } } };
    const key = crypto.randomUUID();
    const path = `/v1/event-topics/${id}`;
    const first = await system.call("PATCH", path, keyed(key, { token, body: patch }));
    // Someone else changes the row between the two tries: the retry must not undo it.
    await system.sql`update event_topics set name = 'Changed meanwhile' where id = ${id}`;
    const again = await system.call("PATCH", path, keyed(key, { token, body: patch }));
    assert.equal(first.status, 200);
    assert.equal(again.text, first.text);
    assert.equal(await topicCount("Changed meanwhile"), 1);
    assert.equal((await factsAbout("event-topic", "updated", id)).length, 1);

    const deleteKey = crypto.randomUUID();
    const deleted = await system.call("DELETE", path, keyed(deleteKey, { token }));
    const deletedAgain = await system.call("DELETE", path, keyed(deleteKey, { token }));
    assert.equal(deleted.status, 200);
    assert.equal(deletedAgain.status, 200);
    assert.equal(deletedAgain.text, deleted.text);
    assert.equal((await factsAbout("event-topic", "deleted", id)).length, 1);
  });

  await t.step(
    "keys belong to their caller: another user's same key is a new request",
    async () => {
      const key = crypto.randomUUID();
      const alice = await system.signUp();
      const mine = await postTopic("Mine", key);
      const hers = await postTopic("Mine", key, alice.token);
      assert.equal(mine.status, 201);
      assert.equal(hers.status, 403);
    },
  );

  await t.step("a key that is not visible ASCII is 400", async () => {
    const reply = await postTopic("Bad key", "a key");
    assert.equal(reply.status, 400);
    assert.equal(await topicCount("Bad key"), 0);
  });

  await t.step("[discounts] a repeated POST /v1/discount-codes makes one code", async () => {
    const { event, owner } = await system.eventWithCast();
    const key = crypto.randomUUID();
    const body = {
      data: {
        type: "discount-code",
        attributes: { code: "ONCEONLY", value: 5, type: "amount", "used-for": "ticket" },
        relationships: { event: { data: { type: "event", id: event.id } } },
      },
    };
    const first = await system.call(
      "POST",
      "/v1/discount-codes",
      keyed(key, {
        token: owner.token,
        body,
      }),
    );
    const again = await system.call(
      "POST",
      "/v1/discount-codes",
      keyed(key, {
        token: owner.token,
        body,
      }),
    );
    assert.equal(first.status, 201, first.text);
    assert.equal(again.text, first.text);
    const [{ count }] = await system.dsql`select count(*) from discount_codes
      where code = 'ONCEONLY'`;
    assert.equal(Number(count), 1);
    const other = await system.call(
      "POST",
      "/v1/discount-codes",
      keyed(key, {
        token: owner.token,
        body: { data: { ...body.data, attributes: { ...body.data.attributes, value: 6 } } },
      }),
    );
    assert.equal(other.status, 422);
  });

  // A review: each anonymous preview sent with a key of its own was a row for 24 hours.
  await t.step("a price preview stores no key: one key, two previews, each answered", async () => {
    const cast = await system.eventWithCast({ attributes: { state: "published" } });
    const ticket = (price: string) =>
      system.createTicket(cast.owner.token, cast.event.id, { price });
    const [cheap, dear] = [await ticket("5.00"), await ticket("50.00")];
    const key = "fixed-client-key";
    const preview = (id: string) =>
      system.call("POST", "/v1/orders/calculate-amount", {
        body: { tickets: [{ id, quantity: 1 }] },
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      });
    const first = await preview(cheap);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.total, "5.00");
    const other = await preview(dear);
    assert.equal(other.status, 200, other.text);
    assert.equal(other.body.total, "50.00");
    const [{ count }] = await system.sql`select count(*)::int as count
      from discounts.idempotency_keys where key = ${key}`;
    assert.equal(count, 0);
    // Ignored, but a malformed key is still the 400 every write gives it (a review).
    const malformed = await system.call("POST", "/v1/orders/calculate-amount", {
      body: { tickets: [{ id: cheap, quantity: 1 }] },
      headers: { "Content-Type": "application/json", "Idempotency-Key": "k".repeat(300) },
    });
    assert.equal(malformed.status, 400, malformed.text);
  });

  await t.step("a key is never stored for a login, a sign-up or a password change", async () => {
    const keys = async () =>
      Number((await system.sql`select count(*) from idempotency_keys`)[0].count);
    const before = await keys();
    const email = `keyed-${crypto.randomUUID()}@example.test`;
    const password = "a long enough password";
    const signUp = await system.call(
      "POST",
      "/v1/users",
      keyed(crypto.randomUUID(), {
        body: { data: { type: "user", attributes: { email, password } } },
      }),
    );
    assert.equal(signUp.status, 201);
    const key = crypto.randomUUID();
    const login = () =>
      system.call("POST", "/v1/auth/login", {
        body: { email, password },
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      });
    const first = await login();
    const second = await login();
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.notEqual(first.body.access_token, undefined);
    assert.equal(await keys(), before, "no key row holds a password hash or a token");
  });
});

/**
 * One request to `handler` wrapped by `withIdempotency`, served on a real bus and sent to it with
 * an `Idempotency-Key` header and `deadline`. Returns the answer and the key; when the served
 * handler threw, throws that (the requester only gets a status back).
 */
async function keyedCall(
  bus: Bus,
  sql: Sql,
  handler: Handler<HttpRequest, HttpReply>,
  deadline: number,
) {
  const endpoint = httpEndpoint("test.hooks");
  const [wrapped] = withIdempotency(sql, [route(endpoint, handler)]);
  let thrown: { error: unknown } | undefined;
  const service = bus.serve({ name: "idempotency-test", version: "0.0.0" }, [
    route(endpoint, async (req: HttpRequest, msg) => {
      try {
        return await wrapped.handler(req, msg);
      } catch (error) {
        thrown = { error };
        throw error;
      }
    }),
  ]);
  const key = crypto.randomUUID();
  const req: HttpRequest = { actor: null, params: {}, path: "/t", query: {}, requestId: "r" };
  try {
    const reply = await bus.forward(endpoint, req, {
      timeoutMs: deadline - Date.now(),
      idempotencyKey: key,
    }).catch((error) => ({ error }));
    // Every answer is sent (and the handler done) once the service has stopped.
    await service.stop();
    if (thrown) throw thrown.error;
    if ("error" in reply) throw reply.error;
    return { reply, key };
  } finally {
    await service.stop();
  }
}

Deno.test("[idempotency] a held change that does not commit runs its afterRollback hook", async (t) => {
  await using store = await keyedStore("held");
  const { bus, sql } = store;
  const change = (ran: string[]) => () =>
    transaction(sql, (tx) => tx`select 1`, {
      afterCommit: () => ran.push("commit"),
      afterRollback: () => ran.push("rollback"),
    });
  await t.step("refused at commit after the handler returned: rollback", async () => {
    const ran: string[] = [];
    // Room for the change on a loaded machine (a 350 ms deadline ran out before it began,
    // once, in a full parallel run); the answer then waits until less than
    // COMMIT_MARGIN_MS is left.
    const deadline = Date.now() + 2_000;
    const handler = async () => {
      await change(ran)();
      const answerAt = deadline - COMMIT_MARGIN_MS / 2;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, answerAt - Date.now())));
      return { status: 200, body: null };
    };
    await assert.rejects(keyedCall(bus, sql, handler, deadline), /Cannot commit/);
    assert.deepEqual(ran, ["rollback"]);
  });
  await t.step("the handler fails after its change: rollback", async () => {
    const ran: string[] = [];
    const handler = async (): Promise<HttpReply> => {
      await change(ran)();
      throw new Error("after the change");
    };
    await assert.rejects(keyedCall(bus, sql, handler, Date.now() + 5000), /after the change/);
    assert.deepEqual(ran, ["rollback"]);
  });
  await t.step(
    "a hook that throws: the caller still gets the change's own error, at once",
    async () => {
      const handler = async (): Promise<HttpReply> => {
        await transaction(sql, () => Promise.reject(new Error("the change failed")), {
          afterRollback: () => {
            throw new Error("the hook failed");
          },
        });
        return { status: 200, body: null };
      };
      const began = Date.now();
      await assert.rejects(
        keyedCall(bus, sql, handler, Date.now() + 3000),
        /the change failed/,
      );
      assert.ok(Date.now() - began < 1000, `${Date.now() - began} ms`);
    },
  );
  await t.step("committed: afterCommit only", async () => {
    const ran: string[] = [];
    const handler = async () => {
      await change(ran)();
      return { status: 200, body: null };
    };
    const { reply, key } = await keyedCall(bus, sql, handler, Date.now() + 5000);
    assert.equal(reply.status, 200);
    assert.deepEqual(ran, ["commit"]);
    // The key came with the request: its answer is stored under it.
    const stored = await sql`select key from idempotency_keys where reply is not null`;
    assert.deepEqual(stored.map((row) => row.key), [key]);
  });
});

// A security review: anonymous callers shared one namespace, so a second client reusing a fixed
// key for another request got 422. Their keys are scoped to the request (a Stripe webhook is such
// a caller).
Deno.test("[idempotency] anonymous callers' keys are their request's", async () => {
  await using store = await keyedStore("keys", { max: 2 });
  const { bus, sql } = store;
  let runs = 0;
  const endpoint = httpEndpoint("test.anonymous");
  await using _service = serveKeyed(bus, sql, endpoint, (req: HttpRequest) => {
    runs++;
    return Promise.resolve({ status: 200, body: { echo: req.body, run: runs } });
  });
  const send = (body: unknown) =>
    bus.forward(endpoint, {
      actor: null,
      params: {},
      path: "/t",
      query: {},
      requestId: "r",
      body,
    }, { timeoutMs: 5000, idempotencyKey: "fixed-client-key" });
  const answer = async (body: unknown) => {
    const reply = await send(body);
    assert.equal(reply.status, 200);
    return JSON.parse(new TextDecoder().decode(reply.body));
  };
  assert.deepEqual(await answer({ n: 1 }), { echo: { n: 1 }, run: 1 });
  const other = await answer({ n: 2 });
  assert.deepEqual(other, { echo: { n: 2 }, run: 2 }, "another request with the key is its own");
  assert.deepEqual(
    await answer({ n: 1 }),
    { echo: { n: 1 }, run: 1 },
    "a retry finds its answer",
  );
  assert.equal(runs, 2);
});
