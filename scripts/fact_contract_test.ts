/**
 * The facts real services publish keep the published contract: a scripted scenario runs across
 * every publishing service (catalog, discounts, payments with the fake Stripe), then every fact
 * it left on the stream is validated with ajv against the schema the committed
 * blueprint/asyncapi.yaml gives its channel (as read by the AsyncAPI parser).
 */
import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { factKinds } from "@shared/fact_catalog.ts";
import { discountsRedemption, facts } from "@shared/subjects.ts";
import { codeBody, discountsFixture } from "../services/discounts/_test_utils.ts";
import { type PaymentsSystem, startPaymentsSystem } from "../services/payments/_test_utils.ts";
import { storedMessages } from "@testing/facts.ts";
import { expectStatus } from "@testing/system.ts";
import { OUTPUT } from "./asyncapi.ts";

/** One ajv validator per channel address, from the committed document. */
async function validatorsByAddress(): Promise<Map<string, ValidateFunction>> {
  const { document } = await new Parser().parse(await Deno.readTextFile(OUTPUT));
  assert.ok(document, "the AsyncAPI document parses");
  // The parser adds `x-parser-*` annotations to every schema: not keywords, so not strict.
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  const out = new Map<string, ValidateFunction>();
  for (const channel of document.channels().all()) {
    const [message] = channel.messages().all();
    out.set(channel.address()!, ajv.compile(message.payload()!.json()));
  }
  return out;
}

/** Every raw message on the test system's fact stream: its subject and body. */
async function rawFacts(p: PaymentsSystem): Promise<{ subject: string; body: unknown }[]> {
  await p.system.catalog.relay.flush();
  await p.payments.relay.flush();
  const messages = await storedMessages(p.system.bus, facts.stream(p.system.prefix));
  return messages.map((message) => ({ subject: message.subject, body: message.json() }));
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

Deno.test("[facts] every fact of a scenario across all services matches its AsyncAPI schema", async () => {
  await using p = await startPaymentsSystem();
  const discounts = await withDiscounts(p);
  const made = await catalogScenario(p);
  await discountsAndPaymentsScenario(p, made);
  await deletions(p, made);
  // The discounts follower detaches the deleted ticket and deletes the event's codes.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await discounts.relay.flush();

  const validators = await validatorsByAddress();
  const prefix = p.system.prefix;
  const seen = new Set<string>();
  const messages = await rawFacts(p);
  for (const { subject, body } of messages) {
    const address = subject.replace(`${prefix}.`, "{prefix}.");
    const validate = validators.get(address);
    assert.ok(validate, `no channel in the document for ${subject}`);
    assert.ok(validate(body), `${subject}: ${JSON.stringify(validate.errors)}`);
    seen.add((body as { type: string }).type);
  }
  // The scenario reaches every registered fact type (so every schema met a real fact).
  const missing = factKinds().map((kind) => kind.type).filter((type) => !seen.has(type));
  assert.deepEqual(missing, [], "fact types the scenario did not produce");
  // And the check has teeth: a column name where an attribute belongs fails.
  const [first] = messages;
  const broken = structuredClone(first.body) as { data: Record<string, unknown> };
  broken.data.created_at = broken.data["created-at"];
  delete broken.data["created-at"];
  const validate = validators.get(first.subject.replace(`${prefix}.`, "{prefix}."))!;
  assert.equal(validate(broken), false);
});
