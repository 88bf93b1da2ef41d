/**
 * The facts real services publish keep the published contract: a scripted scenario runs across
 * every publishing service (catalog, discounts, payments with the fake Stripe), then every fact
 * it left on the stream is validated with ajv against the schema and the headers the committed
 * blueprint/asyncapi.yaml gives its channel (as read by the AsyncAPI parser), and against the
 * envelope and payload schemas blueprint/fact-schemas.json records: the two published contracts
 * a subscriber may build on.
 */
import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { factKinds } from "@shared/fact_catalog.ts";
import { discountsRedemption, facts } from "@shared/subjects.ts";
import { codeBody, discountsFixture } from "../services/discounts/_test_utils.ts";
import { type PaymentsSystem, startPaymentsSystem } from "../services/payments/_test_utils.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { eventually } from "@testing/eventually.ts";
import { storedMessages } from "@testing/facts.ts";
import { expectStatus } from "@testing/system.ts";
import { OUTPUT } from "./asyncapi.ts";
import { readSnapshot } from "./fact_schemas.ts";

/** A channel's validators: the message payload and its headers. */
interface ChannelCheck {
  payload: ValidateFunction;
  headers: ValidateFunction;
}

/** ajv as the checks use it: formats on, every error reported. */
function newAjv(): Ajv {
  // The parser adds `x-parser-*` annotations to every schema: not keywords, so not strict.
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  return ajv;
}

/** One payload and one headers validator per channel address, from the committed document. */
async function validatorsByAddress(): Promise<Map<string, ChannelCheck>> {
  const { document } = await new Parser().parse(await Deno.readTextFile(OUTPUT));
  assert.ok(document, "the AsyncAPI document parses");
  const ajv = newAjv();
  const out = new Map<string, ChannelCheck>();
  for (const channel of document.channels().all()) {
    const [message] = channel.messages().all();
    out.set(channel.address()!, {
      payload: ajv.compile(message.payload()!.json()),
      headers: ajv.compile(message.headers()!.json()),
    });
  }
  return out;
}

/**
 * Validators from the committed blueprint/fact-schemas.json (the envelope, and each type's data).
 */
async function recordedValidators() {
  const snapshot = await readSnapshot();
  const ajv = newAjv();
  const data = new Map(
    Object.entries(snapshot.data).map(([type, schema]) => [type, ajv.compile(schema)]),
  );
  return { envelope: ajv.compile(snapshot.envelope!), data };
}

/** A raw message on the fact stream: its subject, headers (first value each) and body. */
interface RawFact {
  subject: string;
  headers: Record<string, string>;
  body: unknown;
}

/** Every raw message on the test system's fact stream. */
async function rawFacts(p: PaymentsSystem): Promise<RawFact[]> {
  await p.system.catalog.relay.flush();
  await p.payments.relay.flush();
  const messages = await storedMessages(p.system.bus, facts.stream(p.system.prefix));
  return messages.map((message) => ({
    subject: message.subject,
    headers: Object.fromEntries(
      [...(message.header?.keys() ?? [])].map((key) => [key, message.header.get(key)]),
    ),
    body: message.json(),
  }));
}

/** The discounts service on the payments test system (catalog, payments already run there). */
async function withDiscounts(p: PaymentsSystem) {
  const { databaseUrl, bus, config } = p.system;
  const discounts = await discountsFixture({ databaseUrl, bus, config, logLevel: "error" }, {
    poolSize: 4,
  });
  p.system.defer(() => discounts[Symbol.asyncDispose]());
  return discounts.services[0];
}

/** The durable consumers of the services running here, each answering facts with its own. */
const FOLLOWERS = ["discounts-catalog", "payments-catalog", "catalog-stripe-links"];

/**
 * Waits until the followers have handled every fact and what they wrote is published: all
 * relays flushed, no follower with a fact pending or unacknowledged, twice in a row with no
 * new fact in between.
 */
async function followersSettled(
  p: PaymentsSystem,
  discounts: { relay: { flush(): Promise<void> } },
) {
  const jsm = await jetstreamManager(p.system.bus.nc);
  const stream = facts.stream(p.system.prefix);
  let before: { idle: boolean; last: number } | undefined;
  await eventually(
    async () => {
      await p.system.catalog.relay.flush();
      await p.payments.relay.flush();
      await discounts.relay.flush();
      const infos = await Promise.all(FOLLOWERS.map((name) => jsm.consumers.info(stream, name)));
      const idle = infos.every((info) => info.num_pending === 0 && info.num_ack_pending === 0);
      const now = { idle, last: (await jsm.streams.info(stream)).state.last_seq };
      const settled = idle && before?.idle === true && before.last === now.last;
      before = now;
      return settled;
    },
    20_000,
    "the followers settled",
  );
}

/** Users, roles, topics, events and tickets through the catalog. */
async function catalogScenario(p: PaymentsSystem) {
  const { system } = p;
  const admin = system.admin.token;
  const topic = await system.createTopic("Contract");
  expectStatus(
    await system.call("PATCH", `/v1/event-topics/${topic}`, {
      token: admin,
      body: { data: { type: "event-topic", id: topic, attributes: { name: "Contracts" } } },
    }),
    200,
  );
  const subTopic = await system.createSubTopic(topic, "Schemas");
  expectStatus(
    await system.call("PATCH", `/v1/event-sub-topics/${subTopic}`, {
      token: admin,
      body: { data: { type: "event-sub-topic", id: subTopic, attributes: { name: "JSON" } } },
    }),
    200,
  );
  const user = await system.signUp();
  await system.login(user.email, user.password);
  expectStatus(
    await system.call("PATCH", `/v1/users/${user.id}`, {
      token: user.token,
      body: { data: { type: "user", id: user.id, attributes: { "first-name": "Ada" } } },
    }),
    200,
  );
  const cast = await p.stripeEvent();
  expectStatus(
    await system.call("PATCH", `/v1/events/${cast.event.id}`, {
      token: cast.owner.token,
      body: { data: { type: "event", id: cast.event.id, attributes: { name: "Renamed" } } },
    }),
    200,
  );
  const grant = cast.grants.coorganizer;
  expectStatus(
    await system.call("PATCH", `/v1/users-events-roles/${grant}`, {
      token: cast.owner.token,
      body: {
        data: {
          type: "users-events-role",
          id: grant,
          relationships: { role: { data: { type: "role", id: "organizer" } } },
        },
      },
    }),
    200,
  );
  expectStatus(
    await system.call("DELETE", `/v1/users-events-roles/${grant}`, { token: cast.owner.token }),
    200,
  );
  const ticket = await system.createTicket(cast.owner.token, cast.event.id, { price: 20 });
  expectStatus(
    await system.call("PATCH", `/v1/tickets/${ticket}`, {
      token: cast.owner.token,
      body: { data: { type: "ticket", id: ticket, attributes: { quantity: 7 } } },
    }),
    200,
  );
  return { topic, subTopic, user, cast, ticket };
}

/** Codes, a redemption round and a Stripe link through discounts and payments. */
async function discountsAndPaymentsScenario(
  p: PaymentsSystem,
  { cast, ticket }: Awaited<ReturnType<typeof catalogScenario>>,
) {
  const { system } = p;
  const owner = cast.owner.token;
  const post = (body: unknown) => system.call("POST", "/v1/discount-codes", { token: owner, body });
  const created = await post(codeBody({ eventId: cast.event.id, ticketIds: [ticket] }));
  expectStatus(created, 201);
  const code = created.body.data.id;
  expectStatus(
    await system.call("PATCH", `/v1/discount-codes/${code}`, {
      token: owner,
      body: { data: { type: "discount-code", id: code, attributes: { value: 3 } } },
    }),
    200,
  );
  for (const orderId of ["contract-1", "contract-2"]) {
    await system.bus.request(discountsRedemption.reserve, { codeId: code, orderId, quantity: 1 });
  }
  await system.bus.request(discountsRedemption.confirm, { codeId: code, orderId: "contract-1" });
  await system.bus.request(discountsRedemption.release, { codeId: code, orderId: "contract-2" });
  const other = await post(codeBody({ eventId: cast.event.id }));
  expectStatus(other, 201);
  expectStatus(
    await system.call("DELETE", `/v1/discount-codes/${other.body.data.id}`, { token: owner }),
    200,
  );
  const linked = await p.link(owner, cast.event.id, p.grant().code);
  expectStatus(linked, 201);
  const authorization = linked.body.data.id;
  expectStatus(
    await p.call("PATCH", `/v1/stripe-authorizations/${authorization}`, {
      token: owner,
      body: {
        data: {
          type: "stripe-authorization",
          id: authorization,
          attributes: { "stripe-auth-code": p.grant().code },
        },
      },
    }),
    200,
  );
  expectStatus(
    await p.call("DELETE", `/v1/stripe-authorizations/${authorization}`, { token: owner }),
    200,
  );
}

/** Deletions, which the followers answer with facts of their own. */
async function deletions(p: PaymentsSystem, made: Awaited<ReturnType<typeof catalogScenario>>) {
  const { system } = p;
  const admin = system.admin.token;
  const owner = made.cast.owner.token;
  expectStatus(await system.call("DELETE", `/v1/tickets/${made.ticket}`, { token: owner }), 200);
  expectStatus(
    await system.call("DELETE", `/v1/events/${made.cast.event.id}`, { token: owner }),
    200,
  );
  expectStatus(
    await system.call("DELETE", `/v1/event-sub-topics/${made.subTopic}`, { token: admin }),
    200,
  );
  expectStatus(
    await system.call("DELETE", `/v1/event-topics/${made.topic}`, { token: admin }),
    200,
  );
  expectStatus(await system.call("DELETE", `/v1/users/${made.user.id}`, { token: admin }), 200);
}

Deno.test("[facts] every fact of a scenario across all services matches its AsyncAPI message and recorded schemas", async () => {
  await using p = await startPaymentsSystem();
  const discounts = await withDiscounts(p);
  const made = await catalogScenario(p);
  await discountsAndPaymentsScenario(p, made);
  await deletions(p, made);
  // The discounts follower detaches the deleted ticket and deletes the event's codes: its facts
  // are checked too, however long it takes (after a fixed pause, a slow follower's were not).
  await followersSettled(p, discounts);

  const validators = await validatorsByAddress();
  const recorded = await recordedValidators();
  const prefix = p.system.prefix;
  const seen = new Set<string>();
  const messages = await rawFacts(p);
  for (const { subject, headers, body } of messages) {
    const address = subject.replace(`${prefix}.`, "{prefix}.");
    const check = validators.get(address);
    assert.ok(check, `no channel in the document for ${subject}`);
    assert.ok(check.payload(body), `${subject}: ${JSON.stringify(check.payload.errors)}`);
    // The headers the document says every fact has (subscribers may rely on them).
    assert.ok(
      check.headers(headers),
      `${subject} headers: ${JSON.stringify(check.headers.errors)}`,
    );
    const fact = body as { type: string; id: string; data: unknown };
    assert.equal(headers["Nats-Msg-Id"], fact.id, `${subject}: the message id is the fact id`);
    // And the record subscribers' schemas are checked against.
    assert.ok(recorded.envelope(body), `${subject}: ${JSON.stringify(recorded.envelope.errors)}`);
    const data = recorded.data.get(fact.type);
    assert.ok(data, `${fact.type} is not in blueprint/fact-schemas.json`);
    assert.ok(data(fact.data), `${subject} data: ${JSON.stringify(data.errors)}`);
    seen.add(fact.type);
  }
  // The scenario reaches every registered fact type (so every schema met a real fact).
  const missing = factKinds().map((kind) => kind.type).filter((type) => !seen.has(type));
  assert.deepEqual(missing, [], "fact types the scenario did not produce");
  // And the check has teeth: a column name where an attribute belongs fails.
  const [first] = messages;
  const broken = structuredClone(first.body) as { data: Record<string, unknown> };
  broken.data.created_at = broken.data["created-at"];
  delete broken.data["created-at"];
  const check = validators.get(first.subject.replace(`${prefix}.`, "{prefix}."))!;
  assert.equal(check.payload(broken), false);
  assert.equal(recorded.data.get((first.body as { type: string }).type)!(broken.data), false);
  assert.equal(check.headers({ ...first.headers, "content-type": "application/json" }), false);
});
