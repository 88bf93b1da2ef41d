/**
 * Postgres faults under the writes of discounts and payments, through the gateway as a client
 * sends them: the catalog, discounts, payments and the gateway run as subprocesses on a private
 * Postgres (payments talks to a fake Stripe). Every answer is recorded and checked against the
 * facts on the stream, the rows and the accounts connected at Stripe: a write answered 503/504
 * must never show up, and each write answered as done has exactly one fact.
 */
import { freePort } from "@shared/net.ts";
import assert from "node:assert/strict";
import type { Fact } from "@shared/facts.ts";
import { facts } from "@shared/subjects.ts";
import { type FakeStripe, startFakeStripe } from "../services/payments/fake_stripe.ts";
import { factBus } from "./fact_bus.ts";
import { storedMessages } from "./facts.ts";
import { type PostgresServer, startPostgresServer } from "./postgres_server.ts";
import { spawnProcess, type TestProcess } from "./processes.ts";

const REQUEST_TIMEOUT_MS = 2000;
const JSONAPI = "application/vnd.api+json";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface WriteSystem extends AsyncDisposable {
  url: string;
  token: string;
  stripe: FakeStripe;
  processes: Record<string, TestProcess>;
  readFacts(): Promise<Fact[]>;
}

/** One HTTP exchange and what came of it (times in epoch ms). */
export interface Answer {
  op: string;
  /** What marks the write in its fact (a code text, a URL, a publishable key, an id). */
  mark: string;
  status: number;
  body: Record<string, unknown> | undefined;
  sent: number;
  answered: number;
}

async function adminToken(url: string, env: Record<string, string>): Promise<string> {
  const login = await fetch(`${url}/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }),
  });
  return (await login.json()).access_token;
}

function randomKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

/** The catalog, discounts, payments and a gateway as subprocesses on `databaseUrl`. */
async function startWriteSystem(databaseUrl: string): Promise<WriteSystem> {
  await using stack = new AsyncDisposableStack();
  const testbus = stack.use(await factBus());
  const secretKey = `sk_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const clientId = `ca_${crypto.randomUUID().slice(0, 12)}`;
  const stripe = stack.use(await startFakeStripe({ secretKey, clientId }));
  const port = freePort();
  const env = {
    ...Deno.env.toObject(),
    DATABASE_URL: databaseUrl,
    NATS_URL: testbus.natsUrl,
    BUS_PREFIX: testbus.prefix,
    PORT: String(port),
    JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
    ADMIN_EMAIL: "admin@example.test",
    ADMIN_PASSWORD: crypto.randomUUID(),
    PASSWORD_ITERATIONS: "1000",
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    STRIPE_SECRET_KEY: secretKey,
    STRIPE_CLIENT_ID: clientId,
    STRIPE_CONNECT_URL: stripe.url,
    STRIPE_WEBHOOK_SECRET: `whsec_${crypto.randomUUID()}`,
    PAYMENTS_ENCRYPTION_KEY: randomKey(),
    STRIPE_TIMEOUT_MS: "1000",
    LOG_LEVEL: "info",
  };
  const processes: Record<string, TestProcess> = {};
  for (const name of ["catalog", "discounts", "payments"]) {
    const proc = stack.use(spawnProcess(name, `services/${name}/main.ts`, env));
    processes[name] = proc;
    await proc.waitForLine(`${name} ready`);
  }
  const gateway = stack.use(spawnProcess("gateway", "gateway/main.ts", env));
  processes.gateway = gateway;
  await gateway.waitForLine("gateway listening");
  const url = `http://127.0.0.1:${port}`;
  const token = await adminToken(url, env);
  const owned = stack.move();
  return {
    url,
    token,
    stripe,
    processes,
    async readFacts() {
      const messages = await storedMessages(testbus.bus, facts.stream(testbus.prefix));
      return messages.map((message) => message.json<Fact>());
    },
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}

/** Sends one request as the admin; never throws (a failed fetch is status 0). */
async function send(
  system: WriteSystem,
  request: {
    op: string;
    mark: string;
    method: string;
    path: string;
    body?: unknown;
    headers?: Record<string, string>;
  },
): Promise<Answer> {
  const sent = Date.now();
  let status = 0;
  let body: Record<string, unknown> | undefined;
  try {
    const reply = await fetch(`${system.url}${request.path}`, {
      method: request.method,
      headers: {
        "Content-Type": JSONAPI,
        Authorization: `JWT ${system.token}`,
        ...request.headers,
      },
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
    });
    status = reply.status;
    const text = await reply.text();
    body = text ? JSON.parse(text) : undefined;
  } catch {
    status = 0;
  }
  return { op: request.op, mark: request.mark, status, body, sent, answered: Date.now() };
}

async function created(system: WriteSystem, path: string, data: unknown): Promise<string> {
  const answer = await send(system, {
    op: "setup",
    mark: "",
    method: "POST",
    path,
    body: { data },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return (answer.body!.data as { id: string }).id;
}

/** A published event that takes Stripe, with a paid ticket. */
async function eventWithTicket(system: WriteSystem, n: number) {
  const starts = new Date(Date.now() + 24 * 3600_000);
  const eventId = await created(system, "/v1/events", {
    type: "event",
    attributes: {
      name: `Fault ${n}`,
      "starts-at": starts.toISOString(),
      "ends-at": new Date(starts.getTime() + 7200_000).toISOString(),
      state: "published",
      "can-pay-by-stripe": true,
    },
  });
  const ticketId = await created(system, "/v1/tickets", {
    type: "ticket",
    attributes: { name: `Ticket ${n}`, type: "paid", price: 20 },
    relationships: { event: { data: { type: "event", id: eventId } } },
  });
  return { eventId, ticketId };
}

let serial = 0;

/**
 * One writer of discount codes on `eventId`: creates a code, changes its URL twice, deletes it,
 * again and again. The code text marks a POST, the URL a PATCH, the id a DELETE.
 */
async function codeWriter(
  system: WriteSystem,
  target: { eventId: string; ticketId: string },
  answers: Answer[],
  running: () => boolean,
) {
  let id: string | undefined;
  let patches = 0;
  while (running()) {
    const n = ++serial;
    if (id === undefined) {
      const code = `F${n}X${crypto.randomUUID().slice(0, 6)}`;
      const answer = await send(system, {
        op: "code POST",
        mark: code,
        method: "POST",
        path: "/v1/discount-codes",
        body: {
          data: {
            type: "discount-code",
            attributes: { code, value: 5, type: "amount", "used-for": "ticket" },
            relationships: {
              event: { data: { type: "event", id: target.eventId } },
              tickets: { data: [{ type: "ticket", id: target.ticketId }] },
            },
          },
        },
      });
      answers.push(answer);
      if (answer.status === 201) id = (answer.body!.data as { id: string }).id;
      patches = 0;
    } else if (patches < 2) {
      const url = `https://x.test/${n}`;
      const answer = await send(system, {
        op: "code PATCH",
        mark: url,
        method: "PATCH",
        path: `/v1/discount-codes/${id}`,
        body: { data: { type: "discount-code", id, attributes: { "discount-url": url } } },
      });
      answers.push(answer);
      if (answer.status === 200) patches++;
      if (answer.status === 404) id = undefined;
    } else {
      const answer = await send(system, {
        op: "code DELETE",
        mark: id,
        method: "DELETE",
        path: `/v1/discount-codes/${id}`,
      });
      answers.push(answer);
      if (answer.status === 200 || answer.status === 404) id = undefined;
    }
    await sleep(20);
  }
}

/**
 * One writer of the Stripe authorization of `eventId`: links it, re-links it with a new code,
 * unlinks it, again and again. The publishable key marks a POST or PATCH, the id a DELETE.
 */
async function stripeWriter(
  system: WriteSystem,
  eventId: string,
  answers: Answer[],
  running: () => boolean,
) {
  let id: string | undefined;
  let patched = false;
  while (running()) {
    if (id === undefined) {
      const grant = system.stripe.grant();
      const answer = await send(system, {
        op: "stripe POST",
        mark: grant.publishableKey,
        method: "POST",
        path: "/v1/stripe-authorizations",
        body: {
          data: {
            type: "stripe-authorization",
            attributes: { "stripe-auth-code": grant.code },
            relationships: { event: { data: { type: "event", id: eventId } } },
          },
        },
      });
      answers.push(answer);
      if (answer.status === 201) id = (answer.body!.data as { id: string }).id;
      if (answer.status === 409) id = await authorizationOf(system, eventId);
      patched = false;
    } else if (!patched) {
      const grant = system.stripe.grant();
      const answer = await send(system, {
        op: "stripe PATCH",
        mark: grant.publishableKey,
        method: "PATCH",
        path: `/v1/stripe-authorizations/${id}`,
        body: {
          data: {
            type: "stripe-authorization",
            id,
            attributes: { "stripe-auth-code": grant.code },
          },
        },
      });
      answers.push(answer);
      if (answer.status === 200) patched = true;
      if (answer.status === 404) id = undefined;
    } else {
      const answer = await send(system, {
        op: "stripe DELETE",
        mark: id,
        method: "DELETE",
        path: `/v1/stripe-authorizations/${id}`,
      });
      answers.push(answer);
      if (answer.status === 200 || answer.status === 404) id = undefined;
    }
    await sleep(20);
  }
}

async function authorizationOf(system: WriteSystem, eventId: string) {
  for (;;) {
    const answer = await send(system, {
      op: "read",
      mark: "",
      method: "GET",
      path: `/v1/events/${eventId}/stripe-authorization`,
    });
    if (answer.status === 200) return (answer.body!.data as { id: string }).id;
    if (answer.status === 404) return undefined;
    await sleep(100);
  }
}

/** Writers of codes and of Stripe links, until `stop()`. */
function writeLoad(
  system: WriteSystem,
  targets: { eventId: string; ticketId: string }[],
) {
  let running = true;
  const answers: Answer[] = [];
  const writers = targets.flatMap((target) => [
    codeWriter(system, target, answers, () => running),
    stripeWriter(system, target.eventId, answers, () => running),
  ]);
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(writers);
      return answers;
    },
  };
}

/** The mark each fact carries, as the writers set it. */
function factMark(fact: Fact): { op: string; mark: string } | undefined {
  const data = fact.data as Record<string, unknown>;
  switch (fact.type) {
    case "discounts.discount-code.created":
      return { op: "code POST", mark: String(data.code) };
    case "discounts.discount-code.updated":
      return { op: "code PATCH", mark: String(data["discount-url"]) };
    case "discounts.discount-code.deleted":
      return { op: "code DELETE", mark: String(data.id) };
    case "payments.stripe-authorization.created":
      return { op: "stripe POST", mark: String(data["stripe-publishable-key"]) };
    case "payments.stripe-authorization.updated":
      return { op: "stripe PATCH", mark: String(data["stripe-publishable-key"]) };
    case "payments.stripe-authorization.deleted":
      return { op: "stripe DELETE", mark: String(data.id) };
  }
  return undefined;
}

const okStatus: Record<string, number> = {
  "code POST": 201,
  "code PATCH": 200,
  "code DELETE": 200,
  "stripe POST": 201,
  "stripe PATCH": 200,
  "stripe DELETE": 200,
};

/**
 * Every write answered as done has exactly one fact, and no write answered otherwise has one,
 * but for writes in flight during `windows` (epoch ms: a COMMIT made durable without an answer
 * to say so, the README's commit window). Returns what breaks that.
 */
export async function wrongOutcomes(
  system: WriteSystem,
  answers: Answer[],
  windows: { from: number; to: number }[] = [],
): Promise<string[]> {
  const counts = new Map<string, number>();
  for (const fact of await system.readFacts()) {
    const marked = factMark(fact);
    if (!marked) continue;
    const key = `${marked.op} ${marked.mark}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const wrong: string[] = [];
  const writes = answers.filter((a) => okStatus[a.op] !== undefined);
  const byKey = Map.groupBy(writes, (a) => `${a.op} ${a.mark}`);
  for (const [key, group] of byKey) {
    const ok = group.filter((a) => a.status === okStatus[a.op]).length;
    const inWindow = group.filter((a) =>
      a.status !== okStatus[a.op] && windows.some((w) =>
        a.sent <= w.to && a.answered >= w.from
      )
    ).length;
    const found = counts.get(key) ?? 0;
    if (found < ok || found > ok + inWindow) {
      wrong.push(`${key}: ${found} facts for ${group.map((a) => a.status).join(",")}`);
    }
  }
  return wrong;
}

function statusCounts(answers: Answer[]) {
  const out: Record<string, number> = {};
  for (const a of answers) out[`${a.op} ${a.status}`] = (out[`${a.op} ${a.status}`] ?? 0) + 1;
  return out;
}

/** Pids of the private server: the postmaster and its children. */
async function serverPids(pg: PostgresServer): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", "--", `-p ${pg.port} `] }).output();
  const main = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean).map(Number);
  const pids = [...main];
  for (const pid of main) {
    const kids = await new Deno.Command("pgrep", { args: ["-P", String(pid)] }).output();
    pids.push(
      ...new TextDecoder().decode(kids.stdout).trim().split("\n").filter(Boolean).map(Number),
    );
  }
  return pids;
}

function signalAll(pids: number[], signal: Deno.Signal) {
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

export { REQUEST_TIMEOUT_MS, serverPids, signalAll, sleep, startWriteSystem, statusCounts };

Deno.test({
  name: "[faults] probe",
  sanitizeResources: false,
  sanitizeOps: false,
  ignore: Deno.env.get("PROBE") === undefined,
  fn: async () => {
    await using pg = await startPostgresServer();
    await using system = await startWriteSystem(pg.url);
    const targets = [];
    for (let i = 0; i < 3; i++) targets.push(await eventWithTicket(system, i));
    const mode = Deno.env.get("PROBE");
    const load = writeLoad(system, targets);
    await sleep(1500);
    const from = Date.now();
    const windows: { from: number; to: number }[] = [];
    if (mode === "kill") {
      await pg.kill();
      windows.push({ from, to: Date.now() });
      await sleep(4000);
      await pg.start();
    } else if (mode === "stop") {
      const pids = await serverPids(pg);
      console.log("pids", pids);
      signalAll(pids, "SIGSTOP");
      await sleep(4000);
      signalAll(pids, "SIGCONT");
    }
    const backAt = Date.now();
    await sleep(3000);
    const answers = await load.stop();
    await sleep(REQUEST_TIMEOUT_MS + 1500);
    const slow = answers.filter((a) => a.sent > from && a.answered - a.sent > 1000);
    console.log(JSON.stringify(
      {
        statuses: statusCounts(answers),
        slow: slow.map((a) => `${a.op} ${a.status} ${a.answered - a.sent}ms @${a.sent - from}`),
        firstOkAfter: answers.filter((a) =>
          a.sent >= backAt && a.status < 300
        ).map((a) => a.answered - backAt)[0],
        after: answers.filter((a) =>
          a.sent >= backAt + 500 && a.status >= 300
        ).map((a) => `${a.op} ${a.status} ${JSON.stringify(a.body?.errors)}`),
        wrong: await wrongOutcomes(system, answers, windows),
        connected: system.stripe.connected.size,
      },
      null,
      1,
    ));
  },
});

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(100);
  }
  return await check();
}

Deno.test({
  name:
    "[payments] a link whose Postgres dies after the exchange: 503, and the account is released",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using pg = await startPostgresServer();
    await using system = await startWriteSystem(pg.url);
    for (const keyed of [false, true]) {
      await t.step(keyed ? "with an Idempotency-Key" : "without a key", async () => {
        const { eventId } = await eventWithTicket(system, keyed ? 1 : 0);
        const grant = system.stripe.grant({ delayMs: 700 });
        const post = send(system, {
          op: "stripe POST",
          mark: grant.publishableKey,
          method: "POST",
          path: "/v1/stripe-authorizations",
          headers: keyed ? { "Idempotency-Key": crypto.randomUUID() } : {},
          body: {
            data: {
              type: "stripe-authorization",
              attributes: { "stripe-auth-code": grant.code },
              relationships: { event: { data: { type: "event", id: eventId } } },
            },
          },
        });
        // The exchange is under way (the accounts lock's transaction open): Postgres goes.
        await eventually(() => system.stripe.calls.some((c) => c.form.code === grant.code), 2000);
        await pg.kill();
        const answer = await post;
        // Down until after the exchange has answered: its release cannot be queued right then.
        await sleep(1500);
        await pg.start();
        console.log(answer.status, answer.answered - answer.sent, "ms");
        assert.ok([503, 504].includes(answer.status), `${answer.status}`);
        assert.ok(answer.answered - answer.sent < 1000, `${answer.answered - answer.sent} ms`);
        // Exchanged (the fake answers after its delay), stored nowhere: it must not stay
        // connected once Postgres is back.
        const exchanged = () =>
          system.stripe.connected.has(grant.accountId) ||
          system.stripe.calls.some((c) => c.form.stripe_user_id === grant.accountId);
        assert.ok(await eventually(exchanged, 3000), "the code was not exchanged");
        const released = await eventually(
          () => !system.stripe.connected.has(grant.accountId),
          8000,
        );
        assert.ok(released, "the exchanged account is still connected at Stripe");
        assert.deepEqual(await wrongOutcomes(system, [answer]), []);
      });
    }
  },
});
