import assert from "node:assert/strict";
import { eventually } from "@testing/eventually.ts";
import { expectError, expectStatus, startTestSystem } from "@testing/system.ts";
import { firstError, JSONAPI, topicsGateway } from "./_test_utils.ts";
import { matchesStrongly } from "./middleware/write_preconditions.ts";

const rename = (id: string, name: string) => ({
  data: { type: "event", id, attributes: { name } },
});

Deno.test("[gateway] If-Match compares tags the strong way; * matches any", () => {
  assert.equal(matchesStrongly('"a"', '"a"'), true);
  assert.equal(matchesStrongly(' "b" , "a"', '"a"'), true);
  assert.equal(matchesStrongly("*", '"a"'), true);
  assert.equal(matchesStrongly('W/"a"', '"a"'), false, "a weak tag never matches");
  assert.equal(matchesStrongly('"b"', '"a"'), false);
});

// Two organizers edit one event: the one who read it before the other's change must not undo it
// unknowingly. Until 2026-12-05 If-Match was ignored and the stale write applied.
Deno.test("[gateway] a write with If-Match goes ahead only on the representation it names", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, {
    attributes: { name: "First", state: "published" },
  });
  const path = `/v1/events/${event.id}`;
  const read = async () => {
    const reply = await system.call("GET", path, { token: owner.token });
    expectStatus(reply, 200);
    return { etag: reply.headers.get("ETag")!, name: reply.body.data.attributes.name };
  };
  const patch = (name: string, ifMatch: string) =>
    system.call("PATCH", path, {
      token: owner.token,
      body: rename(event.id, name),
      headers: { "If-Match": ifMatch },
    });
  const first = await read();

  await t.step("the tag just read: applied", async () => {
    expectStatus(await patch("Second", first.etag), 200);
    assert.equal((await read()).name, "Second");
  });
  await t.step("the tag from before that change: 412 at If-Match, nothing changed", async () => {
    expectError(await patch("Third", first.etag), 412, { header: "If-Match" });
    assert.equal((await read()).name, "Second");
  });
  await t.step("a list naming the current tag, or *: applied", async () => {
    const { etag } = await read();
    expectStatus(await patch("Third", `${first.etag}, ${etag}`), 200);
    expectStatus(await patch("Fourth", "*"), 200);
    assert.equal((await read()).name, "Fourth");
  });
  await t.step("the current tag sent weak: 412 (If-Match compares strongly)", async () => {
    const { etag } = await read();
    expectError(await patch("Fifth", `W/${etag}`), 412, { header: "If-Match" });
  });
  await t.step("a DELETE with a stale tag: 412, the event stays", async () => {
    const reply = await system.call("DELETE", path, {
      token: owner.token,
      headers: { "If-Match": first.etag },
    });
    expectError(reply, 412, { header: "If-Match" });
    expectStatus(await system.call("GET", path, { token: owner.token }), 200);
  });
  await t.step("a target with no current representation answers for itself (404)", async () => {
    const missing = "/v1/events/987654321";
    const reply = await system.call("PATCH", missing, {
      token: owner.token,
      body: rename("987654321", "Nobody"),
      headers: { "If-Match": first.etag },
    });
    expectError(reply, 404);
  });
  await t.step("a write the caller may not make, on the tag they read: 403 as before", async () => {
    const stranger = await system.signUp();
    const theirs = await system.call("GET", path, { token: stranger.token });
    expectStatus(theirs, 200);
    const etag = theirs.headers.get("ETag")!;
    const reply = await system.call("PATCH", path, {
      token: stranger.token,
      body: rename(event.id, "Stolen"),
      headers: { "If-Match": etag },
    });
    expectError(reply, 403);
    assert.equal((await read()).name, "Fourth");
  });
});

// The gateway checks If-Match on a read of its own, then forwards the write: a change committed
// between the two went unnoticed, and the conditional write undid it (until 2026-12-06, "not
// atomic" in the README). Here the conditional write is held after its read (a topic it links is
// locked), another organizer's rename commits meanwhile, and then the held write goes on.
Deno.test("[gateway] a change committed between If-Match's read and the write makes it 412", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { name: "First" } });
  const topic = await system.createTopic();
  const path = `/v1/events/${event.id}`;
  const read = async () => await system.call("GET", path, { token: owner.token });
  const etag = (await read()).headers.get("ETag")!;
  const held = await system.sql.reserve();
  try {
    await held`begin`;
    await held`select id from event_topics where id = ${topic} for update`;
    const conditional = system.call("PATCH", path, {
      token: owner.token,
      headers: { "If-Match": etag },
      body: {
        data: {
          type: "event",
          id: event.id,
          attributes: { name: "Held" },
          relationships: { "event-topic": { data: { type: "event-topic", id: topic } } },
        },
      },
    });
    await eventually(
      async () => {
        const [{ waiting }] = await system.sql`select count(*)::int as waiting
        from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
        return waiting > 0;
      },
      5_000,
      "the conditional write waiting for the topic's lock",
    );
    await t.step("the other rename commits while it waits", async () => {
      expectStatus(
        await system.call("PATCH", path, { token: owner.token, body: rename(event.id, "Other") }),
        200,
      );
    });
    await held`rollback`;
    await t.step("the held write: 412 at If-Match, the other rename stays", async () => {
      expectError(await conditional, 412, { header: "If-Match" });
      const now = await read();
      assert.equal(now.body.data.attributes.name, "Other");
      assert.equal(now.body.data.relationships?.["event-topic"]?.data ?? null, null);
    });
  } finally {
    held.release();
  }
  await t.step("the same write with the tag read now: applied", async () => {
    const current = (await read()).headers.get("ETag")!;
    const reply = await system.call("PATCH", path, {
      token: owner.token,
      headers: { "If-Match": current },
      body: rename(event.id, "Third"),
    });
    expectStatus(reply, 200);
    assert.equal((await read()).body.data.attributes.name, "Third");
  });
});

// Two organizers send their change on the same tag at the same moment: both reads may come before
// either write, and both went ahead (a race review, 2026-12-05: 10 of 10 pairs). One must be 412.
Deno.test("[gateway] of two writes sent at once on one tag, exactly one goes ahead", async () => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { name: "First" } });
  const path = `/v1/events/${event.id}`;
  for (let pair = 0; pair < 10; pair++) {
    const etag = (await system.call("GET", path, { token: owner.token })).headers.get("ETag")!;
    const names = [`A${pair}`, `B${pair}`];
    const replies = await Promise.all(names.map((name) =>
      system.call("PATCH", path, {
        token: owner.token,
        headers: { "If-Match": etag },
        body: rename(event.id, name),
      })
    ));
    const statuses = replies.map((reply) => reply.status).sort();
    assert.deepEqual(statuses, [200, 412], `pair ${pair}`);
    const applied = names[replies.findIndex((reply) => reply.status === 200)];
    const now = await system.call("GET", path, { token: owner.token });
    assert.equal(now.body.data.attributes.name, applied, `pair ${pair}: the one answered 200`);
  }
});

// A keyed write whose reply was lost is retried as it was sent: its own change made the tag stale,
// so a 412 would tell the client its change was refused when it was applied (RFC 9110 §13.2.2 lets
// an origin answer 2xx for a change already made; shared/idempotency.ts promises the same answer).
Deno.test("[gateway] a retried keyed write with If-Match gets its first answer, not 412", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { name: "First" } });
  const path = `/v1/events/${event.id}`;
  const read = await system.call("GET", path, { token: owner.token });
  const etag = read.headers.get("ETag")!;
  const patch = (name: string, key: string, ifMatch = etag) =>
    system.call("PATCH", path, {
      token: owner.token,
      body: rename(event.id, name),
      headers: { "If-Match": ifMatch, "Idempotency-Key": key },
    });

  await t.step("the retry replays the first 200", async () => {
    const first = await patch("Second", "retried");
    expectStatus(first, 200);
    const again = await patch("Second", "retried");
    expectStatus(again, 200);
    assert.deepEqual(again.body, first.body);
  });
  await t.step("a new key on the stale tag: 412, nothing changed, the key stays free", async () => {
    expectError(await patch("Third", "fresh"), 412, { header: "If-Match" });
    const now = await system.call("GET", path, { token: owner.token });
    assert.equal(now.body.data.attributes.name, "Second");
    const current = now.headers.get("ETag")!;
    expectStatus(await patch("Third", "fresh", current), 200);
  });
});

// RFC 9110 §13.1.2: a write whose If-None-Match names the current tag (or `*`, any current
// representation) must not be performed; it was ignored on writes, so a client guarding a change
// with it ("only if it is no longer what I saw") had it applied regardless.
Deno.test("[gateway] a write whose If-None-Match names the current representation is 412", async (t) => {
  await using system = await startTestSystem();
  const owner = await system.signUp();
  const event = await system.createEvent(owner.token, { attributes: { name: "First" } });
  const path = `/v1/events/${event.id}`;
  const current = async () => {
    const reply = await system.call("GET", path, { token: owner.token });
    return { etag: reply.headers.get("ETag")!, name: reply.body.data.attributes.name };
  };
  const patch = (name: string, headers: Record<string, string>) =>
    system.call("PATCH", path, { token: owner.token, body: rename(event.id, name), headers });

  await t.step("the current tag, weak or strong, or *: 412 at If-None-Match", async () => {
    const { etag } = await current();
    for (const ifNoneMatch of [etag, `W/${etag}`, "*"]) {
      expectError(await patch("Second", { "If-None-Match": ifNoneMatch }), 412, {
        header: "If-None-Match",
      });
    }
    assert.equal((await current()).name, "First");
  });
  await t.step("another tag: applied", async () => {
    expectStatus(await patch("Second", { "If-None-Match": '"other"' }), 200);
    assert.equal((await current()).name, "Second");
  });
  await t.step("If-Match is evaluated first: a stale one is 412 at If-Match", async () => {
    const headers = { "If-Match": '"stale"', "If-None-Match": (await current()).etag };
    expectError(await patch("Third", headers), 412, { header: "If-Match" });
  });
});

// RFC 9110 §13.2.1: preconditions are ignored where the request without them would not be a 2xx,
// and a method the route does not have is a 405 whatever it carries. The read that evaluates them
// ran for any method: `PUT` on a readable URL with a stale If-Match was a 412, and with the
// service down a 503, where the same request without the header was the path's 405 (a review).
Deno.test("[gateway] a method the route does not have is 405 with or without preconditions", async (t) => {
  await using gw = await topicsGateway();
  const { gateway } = gw;
  const send = (method: string, path: string, headers: Record<string, string>) =>
    gateway.app.fetch(
      new Request(`http://gateway.test${path}`, {
        method,
        headers: { Accept: JSONAPI, "Content-Type": JSONAPI, ...headers },
        body: method === "GET" ? undefined : "{}",
      }),
    );
  const read = await send("GET", "/v1/event-topics", {});
  assert.equal(read.status, 200);
  await read.body?.cancel();
  const cases: [string, string, string, Record<string, string>][] = [
    ["a stale If-Match on a readable URL", "PUT", "/v1/event-topics", { "If-Match": '"stale"' }],
    ["its current tag in If-None-Match", "PATCH", "/v1/event-topics", {
      "If-None-Match": read.headers.get("ETag")!,
    }],
    ["If-Match where the service is down", "PUT", "/v1/users/1", { "If-Match": "*" }],
    ["an unknown method with If-None-Match: *", "FOO", "/v1/event-topics", {
      "If-None-Match": "*",
    }],
  ];
  for (const [what, method, path, headers] of cases) {
    await t.step(`${what}: 405 with Allow`, async () => {
      const reply = await send(method, path, headers);
      const error = await firstError(reply);
      assert.equal(reply.status, 405, JSON.stringify(error));
      assert.ok(reply.headers.get("Allow")?.includes("GET"));
    });
  }
});
