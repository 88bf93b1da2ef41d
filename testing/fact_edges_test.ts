/**
 * The fact contract at the edges of what the API accepts: nulls in every nullable attribute,
 * unicode (astral, combining, right-to-left), strings at their maximum length, zeros and the
 * largest numbers, date-times at the first and last instants stored, offsets far from UTC, and
 * the states a subscriber must mirror (trash, restore, purge, a topic's deletion trashing its
 * sub-topics and unlinking its events, a sub-topic moved). Every fact on the stream is checked
 * with ajv against the published documents only (blueprint/asyncapi.yaml as the AsyncAPI parser
 * reads it, blueprint/fact-schemas.json), and the last fact of each resource against what the API
 * shows: testing/fact_subscriber_test.ts covers the ordinary flows.
 */
import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { discountsRedemption, facts } from "@shared/subjects.ts";
import {
  codeBody,
  type DiscountsTestSystem,
  startDiscountsSystem,
} from "../services/discounts/_test_utils.ts";
import { storedMessages } from "@testing/facts.ts";
import { eventually } from "@testing/eventually.ts";
import { type CallResult, expectStatus } from "@testing/system.ts";
import { jetstreamManager } from "@nats-io/jetstream";

type Json = Record<string, unknown>;

function newAjv(): Ajv {
  // The parser adds `x-parser-*` annotations to every schema: not keywords, so not strict.
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  return ajv;
}

/** A validator per channel address (the AsyncAPI payload) and per type (the recorded data). */
async function documents() {
  const asyncapi = await Deno.readTextFile(new URL("../blueprint/asyncapi.yaml", import.meta.url));
  const { document } = await new Parser().parse(asyncapi);
  assert.ok(document, "the AsyncAPI document parses");
  const ajv = newAjv();
  const channels = new Map<string, ValidateFunction>();
  const descriptions = new Map<string, string>();
  for (const channel of document.channels().all()) {
    const [message] = channel.messages().all();
    channels.set(channel.address()!, ajv.compile(message.payload()!.json()));
    const type = channel.address()!.replace("{prefix}.facts.", "");
    descriptions.set(type, `${channel.description() ?? ""} ${message.summary() ?? ""}`);
  }
  const record = JSON.parse(
    await Deno.readTextFile(new URL("../blueprint/fact-schemas.json", import.meta.url)),
  );
  const data = new Map<string, ValidateFunction>(
    Object.entries(record.data as Record<string, Json>).map(([type, s]) => [type, ajv.compile(s)]),
  );
  return { channels, descriptions, envelope: ajv.compile(record.envelope), data };
}

const LONG = (n: number, unit: string) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
/** Astral (two UTF-16 units), combining, right-to-left and CJK characters. */
const UNICODE = "Zoë 🎉 café\u0301 שלום 東京 𝔘𝔫𝔦";
const FIRST = "0001-01-01T00:00:00Z";
const LAST = "9999-12-31T23:59:59.999Z";

async function ok(reply: Promise<CallResult>, status = 200): Promise<Json> {
  const answer = await reply;
  expectStatus(answer, status);
  return answer.body?.data;
}

const body = (type: string, id: string | undefined, attributes: Json, relationships?: Json) => ({
  data: { type, ...(id ? { id } : {}), attributes, ...(relationships ? { relationships } : {}) },
});
const rel = (type: string, id: string | null) => ({ data: id ? { type, id } : null });

/** Users and topics at their edges, restored and purged. */
async function peopleAndTopics(s: DiscountsTestSystem) {
  const admin = s.admin.token;
  const user = await s.signUp();
  const patchUser = (attributes: Json, query = "") =>
    ok(s.call("PATCH", `/v1/users/${user.id}${query}`, {
      token: admin,
      body: body("user", user.id, attributes),
    }));
  await patchUser({ "first-name": LONG(255, UNICODE), "last-name": LONG(255, "ß") });
  await patchUser({ "first-name": null, "last-name": null });
  await ok(s.call("DELETE", `/v1/users/${user.id}`, { token: admin }));
  await patchUser({ "deleted-at": null }, "?get_trashed=true");
  // A deletion ends the user's sessions: a restored user logs in again.
  user.token = await s.login(user.email, user.password);
  const topic = (await ok(
    s.call("POST", "/v1/event-topics", {
      token: admin,
      body: body("event-topic", undefined, {
        name: LONG(255, UNICODE),
        "system-image-url": `https://example.com/${LONG(1980, "é")}`.slice(0, 2000),
      }),
    }),
    201,
  )).id as string;
  await ok(s.call("PATCH", `/v1/event-topics/${topic}`, {
    token: admin,
    body: body("event-topic", topic, { "system-image-url": null }),
  }));
  const other = await s.createTopic("Ελληνικά");
  const sub = await s.createSubTopic(topic, LONG(255, "東"));
  const moved = await s.createSubTopic(topic, "moved");
  return { user, topic, other, sub, moved };
}

/** Events and tickets at their edges. */
async function eventsAndTickets(
  s: DiscountsTestSystem,
  made: Awaited<ReturnType<typeof peopleAndTopics>>,
) {
  const owner = made.user.token;
  const event = await s.createEvent(owner, {
    attributes: {
      name: LONG(255, UNICODE),
      description: LONG(20_000, UNICODE),
      "location-name": LONG(500, "ü"),
      // The first and last instants stored, written with offsets far from UTC.
      "starts-at": "0001-01-01T12:00:00+12:00",
      "ends-at": "9999-12-31T12:59:59.999-11:00",
      timezone: "Pacific/Kiritimati",
      "payment-currency": "eur",
      "can-pay-by-stripe": true,
      state: "published",
      privacy: "private",
    },
    relationships: {
      "event-topic": rel("event-topic", made.topic),
      "event-sub-topic": rel("event-sub-topic", made.sub),
    },
  });
  const patchEvent = (attributes: Json, relationships?: Json) =>
    ok(s.call("PATCH", `/v1/events/${event.id}`, {
      token: owner,
      body: body("event", event.id, attributes, relationships),
    }));
  await patchEvent({ description: null, "location-name": null, "payment-currency": null });
  const second = await s.createEvent(owner, {
    attributes: { "starts-at": FIRST, "ends-at": LAST },
    relationships: {
      "event-topic": rel("event-topic", made.topic),
      "event-sub-topic": rel("event-sub-topic", made.moved),
    },
  });
  const free = await s.createTicket(owner, event.id, {
    type: "free",
    price: 0,
    quantity: 0,
    description: null,
    "sales-starts-at": FIRST,
    "sales-ends-at": LAST,
  });
  const paid = await s.createTicket(owner, event.id, {
    name: LONG(255, UNICODE),
    description: LONG(20_000, "😀"),
    price: 9_999_999_999.99,
    quantity: 10_000_000,
  });
  await ok(s.call("PATCH", `/v1/tickets/${paid}`, {
    token: owner,
    body: body("ticket", paid, { "sales-starts-at": null, "sales-ends-at": null, quantity: 1 }),
  }));
  return { event: event.id, second: second.id, free, paid };
}

/** Discount codes at their edges: nulls, zeros, the largest counts, the extreme dates. */
async function codes(
  s: DiscountsTestSystem,
  events: Awaited<ReturnType<typeof eventsAndTickets>>,
  owner: string,
) {
  const post = (b: unknown) =>
    ok(s.call("POST", "/v1/discount-codes", { token: owner, body: b }), 201);
  const edge = (await post(codeBody({
    eventId: events.event,
    ticketIds: [events.paid],
    attributes: {
      code: LONG(64, "Z"),
      value: 0,
      type: "amount",
      "discount-url": `https://example.com/${LONG(1980, "x")}`,
      "tickets-number": 2_147_483_647,
      "min-quantity": 0,
      "max-quantity": 2_147_483_647,
      "valid-from": FIRST,
      "valid-till": LAST,
      "is-active": false,
    },
  }))).id as string;
  await ok(s.call("PATCH", `/v1/discount-codes/${edge}`, {
    token: owner,
    body: body("discount-code", edge, {
      value: 9_999_999_999.99,
      "discount-url": null,
      "tickets-number": null,
      "valid-from": null,
      "valid-till": null,
      "is-active": true,
    }),
  }));
  await post(codeBody({ eventId: events.event, attributes: { type: "percent", value: 100 } }));
  // Redemptions of the most uses an order may hold, under the longest unicode order ids.
  for (const [orderId, end] of [[LONG(128, UNICODE), "confirm"], [LONG(128, "ø"), "release"]]) {
    const step = { codeId: edge, orderId };
    await s.bus.request(discountsRedemption.reserve, { ...step, quantity: 1_000_000 });
    await s.bus.request(discountsRedemption[end as "confirm" | "release"], step);
  }
}

/** Cascades and the trash: a topic's deletion, a sub-topic moved, restores and purges. */
async function cascades(
  s: DiscountsTestSystem,
  made: Awaited<ReturnType<typeof peopleAndTopics>>,
  events: Awaited<ReturnType<typeof eventsAndTickets>>,
) {
  const admin = s.admin.token;
  const restore = (path: string, type: string, id: string) =>
    ok(s.call("PATCH", `${path}/${id}?get_trashed=true`, {
      token: admin,
      body: body(type, id, { "deleted-at": null }),
    }));
  await ok(s.call("PATCH", `/v1/event-sub-topics/${made.moved}`, {
    token: admin,
    body: body("event-sub-topic", made.moved, {}, {
      "event-topic": rel("event-topic", made.other),
    }),
  }));
  await ok(s.call("DELETE", `/v1/event-topics/${made.topic}`, { token: admin }));
  await restore("/v1/event-topics", "event-topic", made.topic);
  await ok(s.call("DELETE", `/v1/event-sub-topics/${made.sub}`, { token: admin }));
  await restore("/v1/event-sub-topics", "event-sub-topic", made.sub);
  await ok(s.call("DELETE", `/v1/tickets/${events.free}`, { token: made.user.token }));
  await ok(s.call("DELETE", `/v1/events/${events.event}`, { token: made.user.token }));
  await restore("/v1/events", "event", events.event);
  await ok(s.call("DELETE", `/v1/event-topics/${made.other}?permanent=true`, { token: admin }));
  await ok(s.call("DELETE", `/v1/events/${events.second}?permanent=true`, { token: admin }));
  await ok(s.call("DELETE", `/v1/tickets/${events.paid}?permanent=true`, { token: admin }));
  await ok(s.call("DELETE", `/v1/events/${events.event}?permanent=true`, { token: admin }));
}

/** Waits until every follower has handled every fact and each outbox is drained. */
async function settle(s: DiscountsTestSystem) {
  const jsm = await jetstreamManager(s.bus.nc);
  const stream = facts.stream(s.prefix);
  let before = -1;
  await eventually(
    async () => {
      await s.catalog.relay.flush();
      await Promise.all(s.discounts.map((d) => d.relay.flush()));
      for await (const info of await jsm.consumers.list(stream)) {
        if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
      }
      const { state } = await jsm.streams.info(stream);
      const same = state.messages === before;
      before = state.messages;
      return same;
    },
    30_000,
    "the followers settled",
  );
}

/** What the documents find wrong with a fact, or what a subscriber could not mirror. */
function problemsOf(
  fact: Json,
  subject: string,
  docs: Awaited<ReturnType<typeof documents>>,
  prefix: string,
): string[] {
  const where = `${fact.type} ${fact.subject}`;
  const payload = docs.channels.get(subject.replace(`${prefix}.`, "{prefix}."));
  if (!payload) return [`${where}: no channel`];
  const out: string[] = [];
  if (!payload(fact)) out.push(`${where}: ${JSON.stringify(payload.errors)}`);
  if (!docs.envelope(fact)) out.push(`${where}: envelope ${JSON.stringify(docs.envelope.errors)}`);
  const data = docs.data.get(String(fact.type));
  if (!data?.(fact.data)) out.push(`${where}: recorded ${JSON.stringify(data?.errors)}`);
  // `changed` names only what `data` carries, so a subscriber finds each name there.
  for (const name of String(fact.changed ?? "").split(",").filter(Boolean)) {
    if (!(name in (fact.data as Json))) out.push(`${where}: changed names ${name}, not in data`);
  }
  return out;
}

/**
 * The restores (an `updated` taking a soft-deleted resource's `deleted-at` back to null) whose
 * channel does not say so: a subscriber holding only the document would not expect a resource
 * it keeps in the trash to come back on an update.
 */
function undocumentedRestores(list: Json[], descriptions: Map<string, string>): string[] {
  const trashed = new Set<string>();
  const out = new Set<string>();
  for (const fact of list) {
    const subject = String(fact.subject);
    const deletedAt = (fact.data as Json)["deleted-at"];
    if (String(fact.type).endsWith(".deleted") && !fact.purged) trashed.add(subject);
    else if (trashed.has(subject) && deletedAt === null) {
      trashed.delete(subject);
      const type = String(fact.type);
      if (!/restor/i.test(descriptions.get(type) ?? "")) out.add(`${type}: restore not described`);
    }
  }
  return [...out];
}

/** Where the last fact of each resource differs from what the API shows an admin. */
async function driftFromApi(s: DiscountsTestSystem, list: Json[]): Promise<string[]> {
  const last = new Map<string, Json>();
  for (const fact of list) last.set(String(fact.subject), fact);
  const out: string[] = [];
  for (const [subject, fact] of last) {
    const reply = await s.call("GET", `${subject}?get_trashed=true`, { token: s.admin.token });
    if (fact.purged) {
      if (reply.status !== 404) out.push(`${subject}: ${reply.status} after its purge`);
      continue;
    }
    if (reply.status !== 200) {
      out.push(`${subject}: ${reply.status} after ${fact.type}`);
      continue;
    }
    const shown: Json = { ...reply.body.data.attributes };
    for (
      const [name, value] of Object.entries(reply.body.data.relationships ?? {}) as [string, Json][]
    ) {
      if (!("data" in value)) continue;
      const linkage = value.data as { id: string } | { id: string }[] | null;
      shown[name] = Array.isArray(linkage) ? linkage.map((item) => item.id) : linkage?.id ?? null;
    }
    for (const [key, value] of Object.entries(fact.data as Json)) {
      if (key in shown && JSON.stringify(shown[key]) !== JSON.stringify(value)) {
        out.push(
          `${subject} ${key}: fact ${JSON.stringify(value)}, API ${JSON.stringify(shown[key])}`,
        );
      }
    }
  }
  return out;
}

Deno.test("[facts] facts of edge data (nulls, unicode, longest strings, extreme numbers and dates, trash and cascades) match the published documents", async () => {
  await using s = await startDiscountsSystem();
  const made = await peopleAndTopics(s);
  const events = await eventsAndTickets(s, made);
  await codes(s, events, made.user.token);
  await cascades(s, made, events);
  await settle(s);

  const docs = await documents();
  const messages = await storedMessages(s.bus, facts.stream(s.prefix));
  const list = messages.map((m) => m.json<Json>());
  const problems = messages.flatMap((m, i) => problemsOf(list[i], m.subject, docs, s.prefix));
  assert.deepEqual(problems, []);
  assert.deepEqual(undocumentedRestores(list, docs.descriptions), []);
  // Each resource's facts come in the order made, their times too: projections keep the later.
  const lastTime = new Map<string, string>();
  for (const fact of list) {
    const before = lastTime.get(String(fact.subject)) ?? "";
    assert.ok(String(fact.time) >= before, `${fact.type} ${fact.subject} at ${fact.time}`);
    lastTime.set(String(fact.subject), String(fact.time));
  }
  // The checks have teeth: a column name where an attribute belongs, a changed name not in data.
  const broken = structuredClone(list[0]) as Json & { data: Json };
  broken.data.created_at = broken.data["created-at"];
  delete broken.data["created-at"];
  broken.changed = "password";
  const found = problemsOf(broken, messages[0].subject, docs, s.prefix);
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found[0], /missingProperty.*created-at/);
  assert.match(found[1], /: recorded /);
  assert.match(found[2], /changed names password, not in data/);
  // Nothing secret travels: no password, no hash, no token.
  const wire = messages.map((m) => m.string()).join("\n");
  assert.doesNotMatch(wire, /password|\$argon2|eyJ[\w-]+\.eyJ/i);
  assert.ok(!wire.includes(made.user.password));
  // The extremes arrive as the instants sent, in UTC.
  const created = list.find((f) => f.type === "catalog.event.created") as { data: Json };
  assert.equal(created.data["starts-at"], "0001-01-01T00:00:00.000Z");
  assert.equal(created.data["ends-at"], "9999-12-31T23:59:59.999Z");
  assert.equal(created.data["payment-currency"], "EUR");
  assert.equal(created.data.name, LONG(255, UNICODE));
  // A subscriber applying each fact ends with what the API shows (or nothing, once purged).
  assert.deepEqual(await driftFromApi(s, list), []);
  // The cascades were announced: sub-topics trashed with the topic and restored with it.
  const types = new Set(list.map((f) => `${f.type} ${f.subject}`));
  assert.ok(types.has(`catalog.event-sub-topic.deleted /v1/event-sub-topics/${made.sub}`));
  assert.ok(types.has(`catalog.event-sub-topic.updated /v1/event-sub-topics/${made.sub}`));
});
