/**
 * The fact contract as a subscriber written elsewhere meets it: real flows across catalog,
 * discounts and payments (creates, updates, soft deletes, an event's restore, purges, logins,
 * redemptions, Stripe links, a deauthorization webhook and the followers' own facts), then every
 * message is read from the stream with its NATS headers by a plain JetStream consumer and checked
 * only against the published documents, blueprint/asyncapi.yaml (as the AsyncAPI parser reads it)
 * and blueprint/fact-schemas.json, with ajv: never with the services' own schemas.
 */
import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { z } from "zod";
import { factKinds } from "@shared/fact_catalog.ts";
import { discountsRedemption } from "@shared/subjects.ts";
import { asyncApiDocument, jsonSchemaOf } from "../scripts/asyncapi.ts";
import { codeBody, discountsFixture } from "../services/discounts/_test_utils.ts";
import { type PaymentsSystem, startPaymentsSystem } from "../services/payments/_test_utils.ts";
import { signStripePayload } from "../services/payments/webhook_signature.ts";
import { eventually } from "@testing/eventually.ts";
import { type CallResult, expectStatus } from "@testing/system.ts";

const ASYNCAPI = new URL("../blueprint/asyncapi.yaml", import.meta.url);
const FACT_SCHEMAS = new URL("../blueprint/fact-schemas.json", import.meta.url);

type Json = Record<string, unknown>;

/** A message as a subscriber receives it. */
interface Received {
  subject: string;
  headers: Record<string, string[]>;
  text: string;
  body: Json;
  redelivered: boolean;
}

/** What the AsyncAPI document says about one channel. */
interface Channel {
  description: string;
  payload: ValidateFunction;
  headers: ValidateFunction;
  contentType: string;
  example: { headers: Record<string, string>; payload: Json };
}

function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  return ajv;
}

/** Every channel of the committed AsyncAPI document, by address. */
async function channelsByAddress(): Promise<Map<string, Channel>> {
  const { document, diagnostics } = await new Parser().parse(await Deno.readTextFile(ASYNCAPI));
  assert.ok(document, `the AsyncAPI document parses: ${JSON.stringify(diagnostics)}`);
  const ajv = newAjv();
  const out = new Map<string, Channel>();
  for (const channel of document.channels().all()) {
    const messages = channel.messages().all();
    assert.equal(messages.length, 1, `one message on ${channel.address()}`);
    const [message] = messages;
    const [example] = message.examples().all();
    out.set(channel.address()!, {
      description: `${channel.description() ?? ""} ${message.summary() ?? ""}`,
      payload: ajv.compile(message.payload()!.json()),
      headers: ajv.compile(message.headers()!.json()),
      contentType: message.contentType() ?? document.defaultContentType() ?? "",
      example: {
        headers: example.headers() as Record<string, string>,
        payload: example.payload() ?? {},
      },
    });
  }
  return out;
}

/** The recorded envelope and payload schemas (blueprint/fact-schemas.json), compiled. */
async function recordedSchemas() {
  const record = JSON.parse(await Deno.readTextFile(FACT_SCHEMAS));
  const ajv = newAjv();
  const data = new Map<string, ValidateFunction>();
  for (const [type, schema] of Object.entries(record.data as Record<string, Json>)) {
    data.set(type, ajv.compile(schema));
  }
  return { envelope: ajv.compile(record.envelope), data };
}

/**
 * Every message on `<PREFIX>_FACTS`, through an ordered consumer on its own connection to the
 * test's NATS; fails after `timeoutMs` with the count it got.
 */
async function receiveAll(
  natsUrl: string,
  prefix: string,
  timeoutMs = 20_000,
): Promise<Received[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const stream = `${prefix.replaceAll(/[^A-Za-z0-9_-]/g, "_").toUpperCase()}_FACTS`;
    const { state } = await (await jetstreamManager(nc)).streams.info(stream);
    const consumer = await jetstream(nc).consumers.get(stream, {
      filter_subjects: `${prefix}.facts.>`,
    });
    const out: Received[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < state.messages) {
      if (Date.now() > deadline) {
        assert.fail(`${out.length} of ${state.messages} facts received within ${timeoutMs} ms`);
      }
      const batch = await consumer.fetch({ max_messages: state.messages, expires: 2000 });
      for await (const m of batch) {
        const headers: Record<string, string[]> = {};
        for (const [key, values] of m.headers ?? []) headers[key] = values;
        out.push({
          subject: m.subject,
          headers,
          text: m.string(),
          body: m.json(),
          redelivered: m.redelivered,
        });
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}

type Ctx = { p: PaymentsSystem; admin: string };

async function ok(reply: Promise<CallResult>, status = 200): Promise<string> {
  const answer = await reply;
  expectStatus(answer, status);
  return answer.body?.data?.id;
}

const patch = (type: string, id: string, attributes: Json, relationships: Json = {}) => ({
  body: { data: { type, id, attributes, relationships } },
});
const rel = (type: string, id: string | null) => ({ data: id ? { type, id } : null });

/** Topics, sub-topics (one moved), users, logins, roles, events and tickets. */
async function catalogFlows({ p, admin }: Ctx) {
  const s = p.system;
  const topic = await s.createTopic("Subscriber");
  const other = await s.createTopic("Elsewhere");
  await ok(
    s.call("PATCH", `/v1/event-topics/${topic}`, {
      token: admin,
      ...patch("event-topic", topic, { name: "Subscribers" }),
    }),
  );
  const sub = await s.createSubTopic(topic, "Schemas");
  const user = await s.signUp();
  await s.login(user.email, user.password);
  await ok(
    s.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      ...patch("user", user.id, { "first-name": "Ada" }),
    }),
  );
  const cast = await p.stripeEvent();
  const owner = cast.owner.token;
  await ok(s.call("PATCH", `/v1/events/${cast.event.id}`, {
    token: owner,
    ...patch("event", cast.event.id, { name: "Renamed" }, {
      "event-topic": rel("event-topic", topic),
      "event-sub-topic": rel("event-sub-topic", sub),
    }),
  }));
  // The sub-topic moves to another topic: its events leave the old one.
  await ok(s.call("PATCH", `/v1/event-sub-topics/${sub}`, {
    token: admin,
    ...patch("event-sub-topic", sub, { name: "JSON" }, {
      "event-topic": rel("event-topic", other),
    }),
  }));
  const grant = cast.grants.coorganizer;
  await ok(s.call("PATCH", `/v1/users-events-roles/${grant}`, {
    token: owner,
    ...patch("users-events-role", grant, {}, { role: rel("role", "organizer") }),
  }));
  await ok(s.call("DELETE", `/v1/users-events-roles/${grant}`, { token: owner }));
  const ticket = await s.createTicket(owner, cast.event.id, { price: 20 });
  await ok(
    s.call("PATCH", `/v1/tickets/${ticket}`, {
      token: owner,
      ...patch("ticket", ticket, { quantity: 7 }),
    }),
  );
  return { topic, other, sub, user, cast, ticket };
}

type Made = Awaited<ReturnType<typeof catalogFlows>>;

/** Ticket and event codes, a redemption round, Stripe links and a deauthorization webhook. */
async function discountFlows({ p, admin }: Ctx, made: Made) {
  const s = p.system;
  const owner = made.cast.owner.token;
  const eventId = made.cast.event.id;
  const post = (token: string, body: unknown) =>
    ok(s.call("POST", "/v1/discount-codes", { token, body }), 201);
  const code = await post(owner, codeBody({ eventId, ticketIds: [made.ticket] }));
  await ok(
    s.call("PATCH", `/v1/discount-codes/${code}`, {
      token: owner,
      ...patch("discount-code", code, { value: 3 }),
    }),
  );
  for (const orderId of ["sub-1", "sub-2"]) {
    await s.bus.request(discountsRedemption.reserve, { codeId: code, orderId, quantity: 1 });
  }
  await s.bus.request(discountsRedemption.confirm, { codeId: code, orderId: "sub-1" });
  await s.bus.request(discountsRedemption.release, { codeId: code, orderId: "sub-2" });
  const gone = await post(owner, codeBody({ eventId }));
  await ok(s.call("DELETE", `/v1/discount-codes/${gone}`, { token: owner }));
  const purged = await post(owner, codeBody({ eventId }));
  await ok(s.call("DELETE", `/v1/discount-codes/${purged}?permanent=true`, { token: admin }));
  await post(admin, codeBody({ usedFor: "event", eventIds: [eventId] }));
}

async function stripeFlows({ p }: Ctx, made: Made) {
  const owner = made.cast.owner.token;
  const eventId = made.cast.event.id;
  const link = async () => {
    const grant = p.grant();
    return { id: await ok(p.link(owner, eventId, grant.code), 201), grant };
  };
  const first = await link();
  await ok(p.call("PATCH", `/v1/stripe-authorizations/${first.id}`, {
    token: owner,
    ...patch("stripe-authorization", first.id, { "stripe-auth-code": p.grant().code }),
  }));
  await ok(p.call("DELETE", `/v1/stripe-authorizations/${first.id}`, { token: owner }));
  const second = await link();
  const payload = JSON.stringify({
    id: `evt_${crypto.randomUUID()}`,
    type: "account.application.deauthorized",
    account: second.grant.accountId,
  });
  const signature = await signStripePayload(p.secrets().get("STRIPE_WEBHOOK_SECRET")!, payload);
  await ok(p.call("POST", "/v1/webhooks/stripe", {
    body: payload,
    headers: { "Content-Type": "application/json", "Stripe-Signature": signature },
  }));
  await waitFor(async () =>
    (await p.call("GET", `/v1/events/${eventId}/stripe-authorization`, { token: owner })).status ===
      404
  );
  // A third link, which the event's deletion releases (a follower's fact).
  await link();
}

async function waitFor(check: () => Promise<boolean>, ms = 5000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("Cannot wait any longer");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Soft deletes, an event's restore, purges (with what they take along). */
async function deletions({ p, admin }: Ctx, made: Made) {
  const s = p.system;
  const owner = made.cast.owner.token;
  const eventId = made.cast.event.id;
  await ok(s.call("DELETE", `/v1/tickets/${made.ticket}`, { token: owner }));
  await ok(s.call("DELETE", `/v1/events/${eventId}`, { token: owner }));
  await ok(s.call("PATCH", `/v1/events/${eventId}?get_trashed=true`, {
    token: admin,
    ...patch("event", eventId, { "deleted-at": null }),
  }));
  // A second event with a ticket, purged with its tickets and roles.
  const doomed = await s.createEvent(owner, {
    relationships: { "event-topic": rel("event-topic", made.other) },
  });
  await s.createTicket(owner, doomed.id);
  await ok(s.call("DELETE", `/v1/events/${doomed.id}?permanent=true`, { token: admin }));
  await ok(s.call("DELETE", `/v1/event-sub-topics/${made.sub}`, { token: admin }));
  await ok(s.call("DELETE", `/v1/event-topics/${made.topic}`, { token: admin }));
  await ok(s.call("DELETE", `/v1/event-topics/${made.other}?permanent=true`, { token: admin }));
  // A user who owns an event, purged.
  const leaving = await s.signUp();
  const left = await s.createEvent(leaving.token);
  // Another owner first (a sole owner cannot go); the event then loses its first owner.
  await s.grantRole(leaving.token, { userId: made.cast.owner.id, eventId: left.id, role: "owner" });
  // Their code on a ticket of it: the purges unset its marketer and detach the ticket.
  const ticket = await s.createTicket(leaving.token, left.id);
  const body = codeBody({ eventId: left.id, ticketIds: [ticket] });
  await ok(s.call("POST", "/v1/discount-codes", { token: leaving.token, body }), 201);
  await ok(s.call("DELETE", `/v1/users/${made.user.id}`, { token: admin }));
  await ok(s.call("DELETE", `/v1/users/${leaving.id}?permanent=true`, { token: admin }));
  await ok(s.call("DELETE", `/v1/tickets/${ticket}?permanent=true`, { token: admin }));
  await ok(s.call("DELETE", `/v1/events/${eventId}?permanent=true`, { token: admin }));
}

/**
 * Waits until the followers have answered and every outbox is drained: each consumer of the
 * stream has nothing pending or unacknowledged (by the server's count), the outboxes are
 * flushed, and the stream took no fact meanwhile. Three reads 400 ms apart that found the stream
 * unchanged declared it before a follower slower than that had answered.
 */
async function settle(p: PaymentsSystem, relays: { flush(): Promise<unknown> }[]) {
  const jsm = await jetstreamManager(p.system.bus.nc);
  const stream = `${p.system.prefix.replaceAll(/[^A-Za-z0-9_-]/g, "_").toUpperCase()}_FACTS`;
  const caughtUp = async () => {
    for await (const info of await jsm.consumers.list(stream)) {
      if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
    }
    return true;
  };
  for (let before = -1;;) {
    await Promise.all(relays.map((relay) => relay.flush()));
    await eventually(caughtUp, 30_000, "every follower caught up");
    await Promise.all(relays.map((relay) => relay.flush()));
    const { state } = await jsm.streams.info(stream);
    if (state.messages === before) return;
    before = state.messages;
  }
}

/** What a subscriber holding only the documents finds wrong with one message. */
function problemsOf(
  m: Received,
  docs: {
    prefix: string;
    channels: Map<string, Channel>;
    recorded: Awaited<ReturnType<typeof recordedSchemas>>;
  },
): string[] {
  const out: string[] = [];
  const type = String(m.body.type);
  const where = `${type} ${m.body.subject}`;
  const channel = docs.channels.get(m.subject.replace(`${docs.prefix}.`, "{prefix}."));
  if (m.subject !== `${docs.prefix}.facts.${type}`) out.push(`${where}: on subject ${m.subject}`);
  if (!channel) return [...out, `${where}: no channel for ${m.subject}`];
  if (!channel.payload(m.body)) {
    out.push(`${where}: payload ${JSON.stringify(channel.payload.errors)}`);
  }
  const headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v[0]]));
  if (!channel.headers(headers)) {
    out.push(`${where}: headers ${JSON.stringify(channel.headers.errors)}`);
  }
  for (const name of Object.keys(channel.example.headers)) {
    if (!(name in headers)) out.push(`${where}: header ${name} missing`);
  }
  if (headers["Nats-Msg-Id"] !== m.body.id) out.push(`${where}: Nats-Msg-Id is not the fact id`);
  const mediaType = (text = "") => text.split(";")[0].trim().toLowerCase();
  if (mediaType(headers["content-type"]) !== mediaType(channel.contentType)) {
    out.push(
      `content-type header ${headers["content-type"]}, document says ${channel.contentType}`,
    );
  }
  if (!docs.recorded.envelope(m.body)) {
    out.push(`${where}: recorded envelope ${JSON.stringify(docs.recorded.envelope.errors)}`);
  }
  const data = docs.recorded.data.get(type);
  if (!data) out.push(`${where}: no recorded data schema`);
  else if (!data(m.body.data)) out.push(`${where}: recorded data ${JSON.stringify(data.errors)}`);
  const collection = String(channel.example.payload.subject).replace(/[^/]+$/, "");
  const id = (m.body.data as Json)?.id;
  if (m.body.subject !== `${collection}${id}`) {
    out.push(`${where}: subject is not ${collection}${id}`);
  }
  if (m.body.source !== type.split(".")[0]) out.push(`${where}: source ${m.body.source}`);
  return [...out, ...envelopeRules(m.body)];
}

/**
 * What every fact keeps beyond its schema, as the README tells subscribers: `purged` only on a
 * deletion, and a deletion either `purged` or a soft one (its `deleted-at` set); an actor whole.
 */
function envelopeRules(fact: Json): string[] {
  const out: string[] = [];
  const type = String(fact.type);
  const where = `${type} ${fact.subject}`;
  const deletedAt = (fact.data as Json)?.["deleted-at"];
  if ("purged" in fact && !type.endsWith(".deleted")) out.push(`${where}: purged on a ${type}`);
  if (type.endsWith(".deleted") && !fact.purged && typeof deletedAt !== "string") {
    out.push(`${where}: neither purged nor in the trash`);
  }
  if (("actorid" in fact) !== ("actoremail" in fact)) out.push(`${where}: half an actor`);
  return out;
}

/**
 * Where the last fact of each resource differs from what the HTTP API shows an admin (the trash
 * included): a subscriber applying `data` must end with the resource as clients know it, and
 * drop it for good on a `purged` one.
 */
async function driftFromApi(p: PaymentsSystem, messages: Received[]): Promise<string[]> {
  const last = new Map<string, Received>();
  for (const m of messages) last.set(String(m.body.subject), m);
  const out: string[] = [];
  for (const [subject, m] of last) {
    const reply = await p.call("GET", `${subject}?get_trashed=true`, {
      token: p.system.admin.token,
    });
    if (m.body.purged) {
      if (reply.status !== 404) out.push(`${subject}: ${reply.status} after it was purged`);
      continue;
    }
    if (reply.status !== 200) {
      out.push(`${subject}: ${reply.status} after ${m.body.type}`);
      continue;
    }
    const { id, attributes, relationships } = reply.body.data;
    const shown: Json = { id, ...attributes };
    for (const [name, value] of Object.entries(relationships ?? {}) as [string, Json][]) {
      if (!("data" in value)) continue;
      const linkage = value.data as { id: string } | { id: string }[] | null;
      shown[name] = Array.isArray(linkage) ? linkage.map((item) => item.id) : linkage?.id ?? null;
    }
    for (const [key, value] of Object.entries(m.body.data as Json)) {
      if (key in shown && JSON.stringify(shown[key]) !== JSON.stringify(value)) {
        out.push(
          `${subject} ${key}: fact ${JSON.stringify(value)}, API ${JSON.stringify(shown[key])}`,
        );
      }
    }
  }
  return out;
}

/**
 * What the documents promise about the stream: facts kept a year, a re-publish of a fact (same
 * Nats-Msg-Id) within ten minutes stored once.
 */
async function streamPromises(natsUrl: string, prefix: string, again: Received): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const stream = `${prefix.replaceAll(/[^A-Za-z0-9_-]/g, "_").toUpperCase()}_FACTS`;
    const { config } = await (await jetstreamManager(nc)).streams.info(stream);
    assert.deepEqual(config.subjects, [`${prefix}.facts.>`]);
    assert.equal(config.max_age, 365 * 24 * 3600 * 1e9);
    assert.equal(config.duplicate_window, 10 * 60 * 1e9);
    const ack = await jetstream(nc).publish(again.subject, again.text, {
      msgID: again.headers["Nats-Msg-Id"][0],
    });
    assert.equal(ack.duplicate, true, "a re-published fact is de-duplicated");
  } finally {
    await nc.close();
  }
}

/**
 * Changes a subscriber can only read right if the document says how they come: an event's
 * restore (a soft `deleted`, then an `updated` with `deleted-at` back to null) and its Stripe
 * link changing (`is-stripe-linked`, on a fact of the payments service).
 */
function undocumented(messages: Received[], channels: Map<string, Channel>): string[] {
  const before = new Map<string, Json>();
  const out = new Set<string>();
  for (const m of messages) {
    const previous = before.get(String(m.body.subject));
    before.set(String(m.body.subject), m.body);
    if (!previous || m.body.type !== "catalog.event.updated") continue;
    const { description } = channels.get("{prefix}.facts.catalog.event.updated")!;
    const [was, now] = [previous.data as Json, m.body.data as Json];
    if (previous.type === "catalog.event.deleted" && now["deleted-at"] === null) {
      if (!/restor/i.test(description)) out.add("catalog.event.updated: restore not described");
    }
    if (was["is-stripe-linked"] !== now["is-stripe-linked"] && !/stripe/i.test(description)) {
      out.add("catalog.event.updated: Stripe link changes not described");
    }
  }
  return [...out];
}

/** Secrets and private values that may never travel in a fact. */
function leaksOf(messages: Received[], secrets: Map<string, string>): string[] {
  const patterns = [
    /password/i,
    /\$argon2/,
    /\$2[aby]\$/,
    /\bsk_(test|live)_/,
    /\brt_/,
    /\bacct_/,
    /eyJ[\w-]+\.eyJ/,
  ];
  const out: string[] = [];
  for (const m of messages) {
    const whole = `${JSON.stringify(m.headers)} ${m.text}`;
    for (const [name, value] of secrets) {
      if (whole.includes(value)) out.push(`${m.body.type}: ${name}`);
    }
    for (const pattern of patterns) if (pattern.test(whole)) out.push(`${m.body.type}: ${pattern}`);
  }
  return out;
}

Deno.test("[facts] a subscriber holding only the published documents reads every fact of every flow", async () => {
  await using p = await startPaymentsSystem();
  const { databaseUrl, bus, config } = p.system;
  const discounts = await discountsFixture({ databaseUrl, bus, config, logLevel: "error" }, {
    poolSize: 4,
  });
  p.system.defer(() => discounts[Symbol.asyncDispose]());
  const ctx = { p, admin: p.system.admin.token };
  const made = await catalogFlows(ctx);
  await discountFlows(ctx, made);
  await stripeFlows(ctx, made);
  await deletions(ctx, made);
  const relays = [p.system.catalog.relay, p.payments.relay, discounts.services[0].relay];
  await settle(p, relays);

  const prefix = p.system.prefix;
  const channels = await channelsByAddress();
  const recorded = await recordedSchemas();
  const natsUrl = p.system.config.natsUrl;
  const messages = await receiveAll(natsUrl, prefix);
  const problems = [
    ...new Set(messages.flatMap((m) => problemsOf(m, { prefix, channels, recorded }))),
  ];
  assert.deepEqual(problems, []);
  assert.deepEqual(undocumented(messages, channels), []);
  assert.deepEqual(leaksOf(messages, p.secrets()), []);
  assert.deepEqual(await driftFromApi(p, messages), []);
  await streamPromises(natsUrl, prefix, messages[messages.length - 1]);
  const ids = messages.map((m) => m.body.id);
  assert.equal(new Set(ids).size, ids.length, "fact ids are unique");
  const seen = new Set(messages.map((m) => m.subject.replace(`${prefix}.`, "{prefix}.")));
  assert.deepEqual([...channels.keys()].filter((address) => !seen.has(address)), []);
});

Deno.test("[facts] the AsyncAPI examples are facts the system sends, with the headers required", async () => {
  // De-duplication by fact id needs Nats-Msg-Id, decoding needs content-type: every message
  // carries both, so the document may not call either optional.
  for (const [address, channel] of await channelsByAddress()) {
    const full = channel.example.headers;
    assert.ok(channel.headers(full), `${address}: its example headers match`);
    assert.ok(channel.payload(channel.example.payload), `${address}: its example matches`);
    // An example shows a fact the system can send.
    assert.deepEqual(envelopeRules(channel.example.payload), []);
    for (const name of Object.keys(full)) {
      const without = Object.fromEntries(Object.entries(full).filter(([key]) => key !== name));
      assert.equal(channel.headers(without), false, `${address}: headers without ${name} match`);
    }
  }
});

Deno.test("[facts] a .v2 type whose payload keeps its v1 title is refused; with its own title it is documented with its own payload", () => {
  // The natural way to write a v2: copy the v1 schema, change a field, keep its meta. Filed under
  // the v1 title it would be documented with the v1 payload: the generator refuses instead.
  const v1 = factKinds().find((kind) => kind.type === "catalog.event.updated")!;
  const v2Of = (data: typeof v1.data) =>
    ({
      ...v1,
      type: "catalog.event.updated.v2",
      subject: "facts.catalog.event.updated.v2",
      data,
    }) as unknown as typeof v1;
  const keptTitle = v1.data.extend({ "starts-at": z.string() }).meta({ title: "Event" });
  assert.throws(
    () => asyncApiDocument([...factKinds(), v2Of(keptTitle)]),
    /catalog\.event\.updated\.v2: its payload schema is named Event like a different one/,
  );

  const ownTitle = v1.data.extend({ "starts-at": z.string() }).meta({ title: "EventV2" });
  const document = asyncApiDocument([...factKinds(), v2Of(ownTitle)]);
  const components = document.components as { messages: Json; schemas: Json };
  const message = components.messages.CatalogEventUpdatedV2 as Json;
  const [, own] = (message.payload as { allOf: { properties: { data: { $ref: string } } }[] })
    .allOf;
  assert.equal(own.properties.data.$ref, "#/components/schemas/EventV2");
  assert.deepEqual(components.schemas.EventV2, jsonSchemaOf(ownTitle));
  assert.notDeepEqual(components.schemas.Event, components.schemas.EventV2);
});
