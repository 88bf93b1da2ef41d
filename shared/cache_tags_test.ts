import assert from "node:assert/strict";
import { cacheHeaders, EVERY_TAG, pathTags, readTags, touchedBy, writeTags } from "./cache_tags.ts";
import { catalogContract, discountsContract } from "./contracts/mod.ts";
import type { HttpRequest } from "./schemas/http.ts";

function request(path: string, query: Record<string, string> = {}, actor = false): HttpRequest {
  return { actor: actor ? { id: "1" } : null, params: {}, path, query, requestId: "r" };
}

const sorted = (tags: string[] | undefined) => [...tags ?? []].sort();

Deno.test("[cache_tags] pathTags names each resource and collection of a path", () => {
  assert.deepEqual(pathTags("/v1/events/5/tickets"), {
    pairs: ["event:5"],
    collections: ["events", "tickets"],
  });
  assert.deepEqual(pathTags("/v1/event-topics/3/relationships/events"), {
    pairs: ["event-topic:3"],
    collections: ["event-topics", "events"],
  });
  assert.deepEqual(pathTags("/v1/events/a1b2c3d4/discount-codes/SUMMER").pairs, [
    "event:a1b2c3d4",
    "discount-code:SUMMER",
  ]);
  assert.deepEqual(pathTags("/v1/events/%35/event-topic").pairs, ["event:5"]);
  assert.deepEqual(pathTags("/v1/events/a%20b").pairs, [], "nothing that is no plain id");
});

Deno.test("[cache_tags] readTags tags what a reply shows and the lists it belongs to", async (t) => {
  await t.step("a resource, with what it includes and the lists include may add to", () => {
    const body = {
      data: { type: "event", id: "5" },
      included: [{ type: "ticket", id: "9" }, { type: "event-topic", id: "2" }],
    };
    assert.deepEqual(
      sorted(readTags(request("/v1/events/5", { include: "tickets,event-topic" }), 200, body)),
      ["event-topic:2", "event-topics", "event:5", "ticket:9", "tickets"],
    );
  });
  await t.step("an included list named with underscores, as the original took it", () => {
    const body = { data: { type: "event-topic", id: "3" }, included: [] };
    const asked = (include: string) =>
      sorted(readTags(request("/v1/event-topics/3", { include }), 200, body));
    assert.deepEqual(asked("event_sub_topics"), ["event-sub-topics", "event-topic:3"]);
    assert.deepEqual(asked("event_sub_topics"), asked("event-sub-topics"));
  });
  await t.step("what a resource links to one-to-one, which a cascading delete changes", () => {
    const body = {
      data: {
        type: "event-sub-topic",
        id: "7",
        relationships: {
          "event-topic": { data: { type: "event-topic", id: "3" } },
          "events": { links: { related: "/v1/event-sub-topics/7/events" } },
        },
      },
    };
    const tags = readTags(request("/v1/event-sub-topics/7"), 200, body);
    assert.deepEqual(sorted(tags), ["event-sub-topic:7", "event-topic:3"]);
    // The topic's permanent delete (one fact, about the topic) reaches this entry.
    assert.ok(touchedBy("event-topic", { id: "3" }).some((tag) => tags!.includes(tag)));
  });
  await t.step("a list carries its collection, even empty", () => {
    assert.deepEqual(readTags(request("/v1/events/5/tickets"), 200, { data: [] }), [
      "event:5",
      "tickets",
    ]);
    assert.deepEqual(
      sorted(
        readTags(request("/v1/event-topics"), 200, { data: [{ type: "event-topic", id: 1 }] }),
      ),
      ["event-topic:1", "event-topics"],
    );
  });
  await t.step("a list filtered through relationships carries their collections", () => {
    const filter = JSON.stringify([
      { name: "state", op: "eq", val: "published" },
      {
        or: [{
          not: { name: "event_topic", op: "has", val: { name: "name", op: "eq", val: "X" } },
        }],
      },
      { name: "tickets", op: "any", val: { name: "type", op: "eq", val: "free" } },
    ]);
    assert.deepEqual(sorted(readTags(request("/v1/events", { filter }), 200, { data: [] })), [
      "event-topics",
      "events",
      "tickets",
    ]);
    // One whose collection no change names is not cached: nothing would drop it.
    const unknown = JSON.stringify([{ name: "speakers", op: "any", val: {} }]);
    assert.equal(
      readTags(request("/v1/events", { filter: unknown }), 200, { data: [] }),
      undefined,
    );
  });
  await t.step("a bracketed relationship filter carries them as its JSON form does", () => {
    // open-event-frontend's has-many queries send the filter as jQuery.param does.
    const query = {
      "filter[0][name]": "event-topic",
      "filter[0][op]": "has",
      "filter[0][val][name]": "name",
      "filter[0][val][op]": "eq",
      "filter[0][val][val]": "X",
      "filter[1][not][name]": "tickets",
      "filter[1][not][op]": "any",
      "filter[1][not][val][0][name]": "type",
      "filter[1][not][val][0][op]": "eq",
      "filter[1][not][val][0][val]": "free",
    };
    assert.deepEqual(sorted(readTags(request("/v1/events", query), 200, { data: [] })), [
      "event-topics",
      "events",
      "tickets",
    ]);
    const unknown = { "filter[0][name]": "speakers", "filter[0][op]": "any" };
    assert.equal(readTags(request("/v1/events", unknown), 200, { data: [] }), undefined);
  });
  await t.step("a 404 carries every collection of its path; other errors are not cached", () => {
    assert.deepEqual(
      sorted(readTags(request("/v1/events/5/discount-codes/X"), 404, undefined)),
      ["discount-code:X", "discount-codes", "event:5", "events"],
    );
    assert.equal(readTags(request("/v1/events/5"), 422, {}), undefined);
    assert.equal(readTags(request("/v1/events/5"), 401, {}), undefined);
  });
});

Deno.test("[cache_tags] a change touches itself, its collection and what its service declares", () => {
  assert.ok(catalogContract && discountsContract, "the contracts declare their touches");
  assert.deepEqual(sorted(touchedBy("event", { id: "5", identifier: "a1b2c3d4" })), [
    "event:5",
    "event:a1b2c3d4",
    "events",
  ]);
  assert.deepEqual(sorted(touchedBy("stripe-authorization", { id: "3", event: "5" })), [
    "event:5",
    "stripe-authorization:3",
    "stripe-authorizations",
  ]);
  assert.deepEqual(
    sorted(writeTags(request("/v1/events/5"), 200, {
      data: { type: "event", id: "5", attributes: { identifier: "a1b2c3d4" } },
    })),
    ["event:5", "event:a1b2c3d4", "events"],
  );
  assert.deepEqual(sorted(writeTags(request("/v1/tickets/9"), 204, undefined)), [
    "ticket:9",
    "tickets",
  ]);
  assert.equal(writeTags(request("/v1/tickets/9"), 403, {}), undefined);
});

Deno.test("[cache_tags] cacheHeaders marks anonymous public reads only, with their expiry", () => {
  const read = { role: "read" as const, expires: () => 1234 };
  const body = { data: { type: "discount-code", id: "8" } };
  const path = "/v1/events/5/discount-codes/X";
  assert.deepEqual(cacheHeaders(read, request(path), { status: 200, body }), {
    "Cache-Tags": "event:5 discount-code:X discount-code:8",
    "Cache-Expires": "1234",
  });
  assert.equal(cacheHeaders(read, request(path, {}, true), { status: 200, body }), undefined);
  assert.equal(cacheHeaders(read, request(path), { status: 422, body }), undefined);
});

Deno.test("[cache_tags] a DELETE by identifier drops the pages of the id too", () => {
  const reply = {
    status: 200,
    body: { meta: { message: "Object successfully deleted" } },
    deleted: { type: "event", record: { id: "5", identifier: "ab12cd34" } },
  };
  const headers = cacheHeaders({ role: "write" }, request("/v1/events/ab12cd34", {}, true), reply);
  const tags = headers?.["Cache-Tags"].split(" ") ?? [];
  for (const tag of ["event:ab12cd34", "event:5", "events"]) assert.ok(tags.includes(tag), tag);
  const withoutRecord = cacheHeaders({ role: "write" }, request("/v1/events/ab12cd34"), {
    status: 200,
    body: reply.body,
  });
  assert.ok(!withoutRecord?.["Cache-Tags"].split(" ").includes("event:5"), "the path alone");
});

Deno.test("[cache_tags] a write names each tag once, and says everything past what a reply can carry", () => {
  const unlinked = (count: number) => ({
    status: 200,
    body: { meta: { message: "Object successfully deleted" } },
    cascaded: Array.from({ length: count }, (_, i) => ({
      type: "event",
      record: { id: String(i + 1), identifier: `e${String(i + 1).padStart(7, "0")}` },
    })),
  });
  const tagsOf = (count: number) =>
    cacheHeaders({ role: "write" }, request("/v1/event-topics/3", {}, true), unlinked(count))?.[
      "Cache-Tags"
    ].split(" ");
  const few = tagsOf(3)!;
  assert.equal(few.filter((tag) => tag === "events").length, 1, few.join(" "));
  assert.ok(
    few.includes("event:3") && few.includes("event:e0000003") && few.includes("event-topic:3"),
  );
  // About 550 events fit in 16 KiB of tags; a topic of 1,000 is named as everything.
  assert.equal(tagsOf(400)!.length, 2 + 400 * 2 + 1);
  assert.deepEqual(tagsOf(1_000), [EVERY_TAG]);
});

Deno.test("[cache_tags] tags and expiry come from the whole resource, whatever fieldset trimmed it", () => {
  // PATCH /v1/events/5?fields[event]=name: the client sees no identifier, its pages still drop.
  const write = cacheHeaders({ role: "write" }, request("/v1/events/5", {}, true), {
    status: 200,
    body: { data: { type: "event", id: "5", attributes: { name: "N" } } },
    unsparse: { type: "event", id: "5", attributes: { name: "N", identifier: "a1b2c3d4" } },
  });
  assert.ok(write?.["Cache-Tags"].split(" ").includes("event:a1b2c3d4"));
  // A lookup with fields[discount-code]=code still ends at the code's valid-till.
  const till = "2030-01-01T00:00:00.000Z";
  const read = {
    role: "read" as const,
    expires: (body: unknown) =>
      Date.parse(
        (body as { data: { attributes: { "valid-till": string } } }).data.attributes[
          "valid-till"
        ],
      ),
  };
  const lookup = cacheHeaders(read, request("/v1/events/5/discount-codes/X"), {
    status: 200,
    body: { data: { type: "discount-code", id: "8", attributes: { code: "X" } } },
    unsparse: { type: "discount-code", id: "8", attributes: { code: "X", "valid-till": till } },
  });
  assert.equal(lookup?.["Cache-Expires"], String(Date.parse(till)));
});
