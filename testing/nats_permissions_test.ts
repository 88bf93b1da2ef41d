/**
 * The whole system with a NATS user per process, each allowed only what shared/nats_permissions.ts
 * gives it: every process runs as a subprocess on a private nats-server configured with
 * `authorizationBlock`, a flow through all four services works without one permission refused,
 * and what the permissions are for is refused: another process's replies, a service's requests
 * heard by someone else, a fact announced by the wrong service, an internal operation asked by the
 * gateway.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { type NatsConnection } from "@nats-io/nats-core";
import { inboxPrefixOf } from "@shared/bus.ts";
import { connectNats } from "@shared/nats_transport.ts";
import {
  authorizationBlock,
  BUS_PROCESSES,
  DURABLES,
  natsPermissions,
  passwordVariable,
} from "@shared/nats_permissions.ts";
import { freePort } from "@shared/net.ts";
import { facts } from "@shared/subjects.ts";
import { testDatabase } from "@shared/testing.ts";
import postgres from "postgres";
import { eventually } from "./eventually.ts";
import { adminToken, fakeStripeEnv, faultEnv } from "./fault_env.ts";
import { startNatsServer } from "./nats_server.ts";
import { spawnProcess, type TestProcess } from "./processes.ts";

const JSONAPI = "application/vnd.api+json";

Deno.test("[nats] a NATS user per process, each with only its subjects: the system works, the walls hold", async () => {
  await using stack = new AsyncDisposableStack();
  const prefix = `perm${crypto.randomUUID().slice(0, 6)}`;
  const passwords = Object.fromEntries(
    BUS_PROCESSES.map((name) => [name, crypto.randomUUID().replaceAll("-", "")]),
  );
  const nats = stack.use(
    await startNatsServer({
      jetStream: true,
      config: authorizationBlock(natsPermissions(prefix), passwords),
    }),
  );
  const urlFor = (name: string) => `nats://${name}:${passwords[name]}@127.0.0.1:${nats.port}`;
  const database = stack.use(await testDatabase());
  const { stripe, env: stripeEnv } = await fakeStripeEnv(stack, 2000);
  const port = freePort();
  const env = {
    ...faultEnv({ databaseUrl: database.url, natsUrl: "", prefix, port, requestTimeoutMs: 3000 }),
    ...stripeEnv,
  };
  // The fact stream made beforehand with other settings (as an earlier FACTS_REPLICAS would
  // leave it): no process may change it, each says so and goes on with it as it is.
  const maker = await connectNats({ servers: [urlFor("catalog")], inboxPrefix: "_INBOX.catalog" });
  await (await jetstreamManager(maker)).streams.add({
    name: facts.stream(prefix),
    subjects: [`${prefix}.${facts.all}`],
    duplicate_window: 5 * 60 * 1e9,
  });
  await maker.close();
  const processes: TestProcess[] = [];
  for (const name of BUS_PROCESSES.filter((name) => name !== "gateway")) {
    const process = stack.use(
      spawnProcess(name, `services/${name}/main.ts`, { ...env, NATS_URL: urlFor(name) }),
    );
    processes.push(process);
    await process.waitForLine(`${name} ready`);
  }
  const gateway = stack.use(
    spawnProcess("gateway", "gateway/main.ts", { ...env, NATS_URL: urlFor("gateway") }),
  );
  processes.push(gateway);
  await gateway.waitForLine("gateway listening");

  const as = async (name: string) => {
    const nc = await connectNats({ servers: [urlFor(name)], inboxPrefix: inboxPrefixOf(name) });
    stack.defer(() => nc.close());
    return nc;
  };
  const url = `http://127.0.0.1:${port}`;
  const token = await adminToken(url, env);
  const call = async (method: string, path: string, body?: unknown, signedIn = true) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        Accept: JSONAPI,
        ...(body ? { "Content-Type": JSONAPI } : {}),
        ...(signedIn ? { Authorization: `JWT ${token}` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: response.status === 204 ? {} : await response.json() };
  };
  const expect = (answer: { status: number; body: unknown }, status: number, what: string) =>
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);

  // A flow through every service: an event (catalog), a code (discounts, asking the catalog), a
  // Stripe link (payments), the event with both included, the activity log (audit, from facts),
  // the event's deletion (discounts and payments follow it), /health (discovery).
  const starts = new Date(Date.now() + 24 * 3600_000);
  const event = await call("POST", "/v1/events", {
    data: {
      type: "event",
      attributes: {
        name: "Walled",
        "starts-at": starts.toISOString(),
        "ends-at": new Date(starts.getTime() + 7200_000).toISOString(),
        state: "published",
        "can-pay-by-stripe": true,
      },
    },
  });
  expect(event, 201, "the event");
  const eventId = event.body.data.id;
  const code = await call("POST", "/v1/discount-codes", {
    data: {
      type: "discount-code",
      attributes: { code: "WALL10", value: 10, type: "amount", "used-for": "ticket" },
      relationships: { event: { data: { type: "event", id: eventId } } },
    },
  });
  expect(code, 201, "the event's code");
  const link = await call("POST", "/v1/stripe-authorizations", {
    data: {
      type: "stripe-authorization",
      attributes: { "stripe-auth-code": stripe.grant().code },
      relationships: { event: { data: { type: "event", id: eventId } } },
    },
  });
  expect(link, 201, "the Stripe link");
  const included = await call(
    "GET",
    `/v1/events/${eventId}?include=discount-codes,stripe-authorization`,
  );
  expect(included, 200, "the event with its code and link");
  assert.equal(included.body.included?.length, 2, JSON.stringify(included.body));
  for (let read = 0; read < 2; read++) {
    expect(await call("GET", `/v1/events/${eventId}`, undefined, false), 200, "anonymous read");
  }
  await eventually(
    async () => (await call("GET", "/v1/activities")).body.data?.length >= 3,
    10_000,
    "audit to record the facts",
  );
  expect(await call("DELETE", `/v1/events/${eventId}`), 200, "the event's deletion");
  await eventually(
    async () => (await call("GET", `/v1/discount-codes/${code.body.data.id}`)).status === 404,
    10_000,
    "discounts to follow the deletion",
  );
  await eventually(
    async () =>
      (await call("GET", `/v1/stripe-authorizations/${link.body.data.id}`)).status === 404,
    10_000,
    "payments to follow the deletion",
  );
  const health = await (await fetch(`${url}/health`)).json();
  for (const service of BUS_PROCESSES.filter((name) => name !== "gateway")) {
    assert.ok(health.services?.[service]?.instances >= 1, `${service}: ${JSON.stringify(health)}`);
  }
  // A message on a catalog fact subject that is no fact: its followers park it.
  const catalogUser = await as("catalog");
  catalogUser.publish(`${prefix}.facts.catalog.event.updated`, '{"not":"a fact"}');
  for (const name of ["discounts", "payments", "audit"]) {
    await processes.find((process) => process.name === name)!.waitForLine("parked a message");
  }
  for (const process of processes.filter((process) => process.name !== "gateway")) {
    assert.ok(
      process.lines.some((line) => line.includes("cannot change a stream's settings")),
      `${process.name} said it could not change the stream`,
    );
  }
  // A pull's reply subject is not checked against the puller's permissions: audit (stopped, so
  // its consumer is idle) has a message of its making delivered to the catalog's `users.update`
  // (a review reproduced it: the catalog ran it). Not run: its reply is JetStream's, no inbox.
  const auditProcess = processes.find((process) => process.name === "audit")!;
  await auditProcess.kill("SIGTERM");
  const forger = await as("audit");
  forger.publish(`${prefix}.facts.audit.forged.x`, JSON.stringify({ actor: { admin: true } }));
  await forger.flush();
  forger.publish(
    `$JS.API.CONSUMER.MSG.NEXT.${facts.stream(prefix)}.${DURABLES.audit}`,
    JSON.stringify({ batch: 1, expires: 1e9 }),
    { reply: `${prefix}.catalog.users.update` },
  );
  const catalogProcess = processes.find((process) => process.name === "catalog")!;
  await catalogProcess.waitForLine("a message no requester sent was not run", 5_000);
  // Audit's database restored from an older backup: it lacks activities its durable consumer
  // handed over. It catches up with the replay its user may make (the second review found the one
  // the server named refused: the start failed).
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  stack.defer(() => sql.end());
  const [{ count: logged }] = await sql`select count(*)::int from audit.activities`;
  await sql`delete from audit.activities`;
  await sql`update audit.fact_positions set highest = 0, resume_at = 1`;
  const restored = stack.use(
    spawnProcess("audit", "services/audit/main.ts", { ...env, NATS_URL: urlFor("audit") }),
  );
  processes.splice(processes.indexOf(auditProcess), 0, restored);
  await restored.waitForLine("caught up with the fact consumer", 20_000);
  const [{ count: again }] = await sql`select count(*)::int from audit.activities`;
  assert.ok(again >= logged, `the activities handed over again: ${again} of ${logged}`);
  // Stopped as an operator stops them (each says it left: discovery's subject).
  for (const process of processes.toReversed()) await process.kill("SIGTERM");
  for (const process of processes) {
    // But the stream's update (above), meant to be refused, and said as such too.
    const refused = process.lines.filter((line) =>
      /NATS refused|[Pp]ermissions? [Vv]iolation/.test(line) &&
      !line.includes(`$JS.API.STREAM.UPDATE.${facts.stream(prefix)}`)
    );
    assert.deepEqual(refused, [], `${process.name} was refused nothing else`);
  }

  // The walls: what each process could do to the others without them (a review found the first
  // three open in the first version).
  const audit = await as("audit");
  const gatewayUser = await as("gateway");
  const stream = facts.stream(prefix);
  const publishes: [NatsConnection, string][] = [
    [audit, `${prefix}.catalog.users.update`],
    [audit, `$JS.API.STREAM.UPDATE.${stream}`],
    [audit, `$JS.API.CONSUMER.MSG.NEXT.${stream}.${DURABLES.discounts}`],
    [audit, `$JS.ACK.${stream}.${DURABLES.discounts}.1.1.1.1.1`],
    [audit, `$JS.API.STREAM.DELETE.${stream}`],
    [audit, `${prefix}.facts.catalog.event.deleted`],
    [gatewayUser, `${prefix}.catalog.internal.access`],
  ];
  for (const [nc, subject] of publishes) {
    await assertRefused(nc, "Publish", subject, () => nc.publish(subject, "{}"));
  }
  const subscriptions: [NatsConnection, string][] = [
    [audit, `${prefix}.catalog.>`],
    [audit, "_INBOX.gateway.>"],
    [gatewayUser, `${prefix}.catalog.auth.login`],
  ];
  for (const [nc, subject] of subscriptions) {
    await assertRefused(nc, "Subscription", subject, () => nc.subscribe(subject));
  }
});

/** Whether the server refuses `act` on `nc`: a permissions violation naming `subject`. */
async function assertRefused(
  nc: NatsConnection,
  operation: "Publish" | "Subscription",
  subject: string,
  act: () => unknown,
) {
  const refused = (async () => {
    for await (const status of nc.status()) {
      const text = String((status as { error?: unknown }).error);
      if (status.type === "error" && text.includes(`for ${operation} to "${subject}"`)) return true;
    }
    return false;
  })();
  act();
  await nc.flush();
  const answer = await Promise.race([
    refused,
    new Promise<boolean>((resolve) => setTimeout(resolve, 2_000, false)),
  ]);
  assert.ok(answer, `${operation} to ${subject} refused`);
}

Deno.test("[nats] `deno task nats-permissions` prints a configuration nats-server takes, passwords from its environment", async () => {
  const printed = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/nats_permissions.ts"],
    cwd: new URL("../", import.meta.url),
    env: { BUS_PREFIX: "walls.eu" },
  }).output();
  assert.equal(printed.code, 0, new TextDecoder().decode(printed.stderr));
  const block = new TextDecoder().decode(printed.stdout);
  assert.match(block, /"walls\.eu\.facts\.catalog\.>"/);
  assert.doesNotMatch(block, /password: "/, "no password printed");
  const dir = await Deno.makeTempDir({ prefix: "oe-nats-perm-" });
  try {
    await Deno.writeTextFile(`${dir}/server.conf`, block);
    const check = (env: Record<string, string>) =>
      new Deno.Command("nats-server", { args: ["-c", `${dir}/server.conf`, "-t"], env }).output();
    const passwords = Object.fromEntries(
      BUS_PROCESSES.map((name) => [passwordVariable(name).slice(1), `pw-${name}`]),
    );
    const valid = await check(passwords);
    assert.equal(valid.code, 0, new TextDecoder().decode(valid.stderr));
    const { OE_NATS_PASSWORD_AUDIT: _, ...lacking } = passwords;
    const invalid = await check(lacking);
    assert.notEqual(invalid.code, 0);
    assert.match(new TextDecoder().decode(invalid.stderr), /OE_NATS_PASSWORD_AUDIT/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
