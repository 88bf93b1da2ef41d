/**
 * Secrets, end to end on real processes (catalog, payments with a fake Stripe, audit, gateway) at
 * debug level with tracing on: sign-up, logins good and bad, both password changes, malformed and
 * mistyped bodies holding passwords, tokens forged, stale and out of place, a Stripe link, re-link,
 * refusal and unlink, a forged webhook. Then every output is searched for every secret planted or
 * issued: answers (but a client's own input echoed back, and a login's own token), each process's
 * stderr, the facts stream, the activities, idempotency rows, `/metrics` and the OTLP exports. And
 * the log is whole: one activity per fact.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { Bus } from "@shared/bus.ts";
import { createLogger } from "@shared/log.ts";
import { freePort } from "@shared/net.ts";
import { factStreamRemoval, testBackends, testDatabase } from "@shared/testing.ts";
import { facts as factSubjects } from "@shared/subjects.ts";
import { startFakeStripe } from "../services/payments/fake_stripe.ts";
import { storedMessages } from "./facts.ts";
import { eventually } from "./eventually.ts";
import { type ReceivedSpan, SPAN_KIND, startOtlpReceiver } from "./otlp_receiver.ts";
import { spawnProcess } from "./processes.ts";

/**
 * An OTLP export without the `url.full`, `url.query` and `url.path` attributes of Deno's HTTP
 * spans: Deno records the raw URL before any handler runs, a known limit the README documents
 * for the query (drop them in the collector); a token in the path goes the same way.
 */
function withoutRawUrl(body: string): string {
  const at = body.indexOf(" ");
  const json = JSON.parse(body.slice(at + 1) || "{}");
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) {
      return value
        .filter((item) => !["url.full", "url.query", "url.path"].includes(item?.key))
        .map(strip);
    }
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strip(v)]));
    }
    return value;
  };
  return `${body.slice(0, at)} ${JSON.stringify(strip(json))}`;
}

const uid = () => crypto.randomUUID().replaceAll("-", "");

/** A request's W3C trace context as the test sends it: the trace and its root (the client's). */
interface SentTrace {
  traceId: string;
  rootSpanId: string;
}

/**
 * What the requests made and the facts they recorded have produced that is not exported yet,
 * named (empty once it all is): each request's gateway span; each fact's publish, its handling by
 * audit and the batch that handled it; every bus request's answering span; and the parent of every
 * span of theirs. Processes export on their own schedules, so only this says the search is whole.
 */
function unexported(spans: ReceivedSpan[], sent: SentTrace[], factIds: string[]): string[] {
  const missing: string[] = [];
  const ids = new Set(spans.map((s) => s.spanId));
  for (const { traceId, rootSpanId } of sent) {
    const served = spans.some((s) =>
      s.service === "gateway" && s.traceId === traceId && s.parentSpanId === rootSpanId
    );
    if (!served) missing.push(`the gateway's span of trace ${traceId}`);
  }
  const ofFact = (id: string, kind: number) =>
    spans.filter((s) => s.kind === kind && s.attributes["messaging.message.id"] === id);
  for (const id of factIds) {
    if (!ofFact(id, SPAN_KIND.producer).length) missing.push(`the publish of fact ${id}`);
    const handled = ofFact(id, SPAN_KIND.consumer).find((s) => s.service === "audit");
    if (!handled) missing.push(`audit's handling of fact ${id}`);
    else if (!ids.has(handled.links[0]?.spanId)) missing.push(`the batch that handled ${id}`);
  }
  const traces = new Set(sent.map((t) => t.traceId));
  const roots = new Set(sent.map((t) => t.rootSpanId));
  for (const span of spans.filter((s) => traces.has(s.traceId))) {
    if (span.parentSpanId && !roots.has(span.parentSpanId) && !ids.has(span.parentSpanId)) {
      missing.push(`the parent of ${span.service}'s ${span.name}`);
    }
    const answered = span.kind !== SPAN_KIND.client || span.attributes["rpc.system"] !== "nats" ||
      spans.some((s) => s.parentSpanId === span.spanId && s.kind === SPAN_KIND.server);
    if (!answered) missing.push(`the answering span of ${span.service}'s ${span.name}`);
  }
  return missing;
}

Deno.test("[secrets] no secret reaches an answer, a log line, a fact, an activity, /metrics or a trace", async () => {
  const { natsUrl } = await testBackends();
  await using otlp = startOtlpReceiver();
  await using database = await testDatabase();
  const secrets = new Map<string, string>();
  const plant = (name: string, value: string) => (secrets.set(name, value), value);
  const stripeKey = plant("STRIPE_SECRET_KEY", `sk_test_${uid()}`);
  const clientId = `ca_${uid()}`;
  await using stripe = await startFakeStripe({ secretKey: stripeKey, clientId });
  const prefix = `sec${uid().slice(0, 8)}`;
  const port = freePort();
  const admin = { email: "admin@example.test", password: plant("ADMIN_PASSWORD", `AdmPw${uid()}`) };
  const metricsToken = plant("METRICS_TOKEN", `mt${uid()}`);
  const env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    DATABASE_URL: database.url,
    NATS_URL: natsUrl,
    BUS_PREFIX: prefix,
    JWT_SECRET: plant("JWT_SECRET", `jwtsecret${uid()}`),
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    PASSWORD_ITERATIONS: "1000",
    PORT: String(port),
    LOG_LEVEL: "debug",
    METRICS_TOKEN: metricsToken,
    STRIPE_SECRET_KEY: stripeKey,
    STRIPE_CLIENT_ID: clientId,
    STRIPE_CONNECT_URL: stripe.url,
    STRIPE_WEBHOOK_SECRET: plant("STRIPE_WEBHOOK_SECRET", `whsec_${uid()}`),
    PAYMENTS_ENCRYPTION_KEY: plant(
      "PAYMENTS_ENCRYPTION_KEY",
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    ),
    OTEL_DENO: "true",
    ...otlp.env,
  };
  const start = (name: string, main: string) =>
    spawnProcess(name, main, { ...env, OTEL_SERVICE_NAME: name });
  // Removed after the processes stop (disposal runs in reverse): removed while they ran, the
  // services made the stream again (as after a lost JetStream store), and it was left behind.
  await using _streams = factStreamRemoval(natsUrl, prefix);
  await using catalog = start("catalog", "services/catalog/main.ts");
  await using payments = start("payments", "services/payments/main.ts");
  await using audit = start("audit", "services/audit/main.ts");
  await using gateway = start("gateway", "gateway/main.ts");
  const url = `http://127.0.0.1:${port}`;
  for (const name of ["catalog", "payments", "audit"]) {
    const p = { catalog, payments, audit }[name]!;
    await p.waitForLog((line) => line.message === `${name} ready`, 60_000);
  }
  /** Each answer with the request it answers: a client's own input echoed back is no leak. */
  const exchanges: { request: string; response: string }[] = [];
  /** The trace of each request made, to wait below for all it produced to be exported. */
  const sent: SentTrace[] = [];
  const traced = () => {
    const trace = { traceId: uid(), rootSpanId: uid().slice(0, 16) };
    return { trace, traceparent: `00-${trace.traceId}-${trace.rootSpanId}-01` };
  };
  const http = async (
    method: string,
    path: string,
    options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } =
      {},
  ) => {
    const json = options.raw === undefined && options.body !== undefined;
    const { trace, traceparent } = traced();
    const reply = await fetch(`${url}${path}`, {
      method,
      headers: {
        traceparent,
        Accept: "application/vnd.api+json, application/json",
        ...(options.token ? { Authorization: `JWT ${options.token}` } : {}),
        ...(options.body !== undefined || options.raw !== undefined
          ? { "Content-Type": "application/vnd.api+json" }
          : {}),
        ...options.headers,
      },
      body: options.raw ?? (json ? JSON.stringify(options.body) : undefined),
    });
    const text = await reply.text();
    sent.push(trace);
    exchanges.push({
      request: `${method} ${path} ${JSON.stringify(options)}`,
      response: `${reply.status} ${[...reply.headers].join(";")} ${text}`,
    });
    return { status: reply.status, text, body: text ? JSON.parse(text) : {} };
  };
  const login = async (email: string, password: string) => {
    const r = await http("POST", "/v1/auth/login", {
      raw: JSON.stringify({ email, password }),
      headers: { "Content-Type": "application/json" },
    });
    if (r.status === 200) plant(`token ${email} ${exchanges.length}`, r.body.access_token);
    return r;
  };
  let adminToken = "";
  for (let i = 0; i < 120 && !adminToken; i++) {
    const r = await login(admin.email, admin.password).catch(() => null);
    if (r?.status === 200) adminToken = r.body.access_token;
    else await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.ok(adminToken);

  // Sign-up, login, bad login, password changes.
  const email = `u${uid().slice(0, 8)}@example.test`;
  const pw1 = plant("pw1", `Pw1${uid()}`);
  const signUp = await http("POST", "/v1/users", {
    body: { data: { type: "user", attributes: { email, password: pw1 } } },
    headers: { "Idempotency-Key": `k${uid()}` },
  });
  assert.equal(signUp.status, 201, signUp.text);
  const userId = signUp.body.data.id;
  const userToken = (await login(email, pw1)).body.access_token;
  const wrong = plant("wrong pw", `Wrong${uid()}`);
  assert.equal((await login(email, wrong)).status, 401);
  assert.equal((await login(`nobody${uid().slice(0, 6)}@example.test`, wrong)).status, 401);
  const pw2 = plant("pw2", `Pw2${uid()}`);
  const patched = await http("PATCH", `/v1/users/${userId}`, {
    token: userToken,
    body: { data: { type: "user", id: userId, attributes: { password: pw2 } } },
    headers: { "Idempotency-Key": `k${uid()}` },
  });
  assert.equal(patched.status, 200, patched.text);
  const t2 = (await login(email, pw2)).body.access_token;
  const pw3 = plant("pw3", `Pw3${uid()}`);
  const changed = await http("POST", "/v1/auth/change-password", {
    token: t2,
    raw: JSON.stringify({ data: { "old-password": pw2, "new-password": pw3 } }),
    headers: { "Content-Type": "application/json" },
  });
  assert.equal(changed.status, 200, changed.text);
  const t3 = (await login(email, pw3)).body.access_token;
  // Old tokens now refused: a 401 must not echo them.
  await http("GET", `/v1/users/${userId}`, { token: userToken });
  // Malformed JSON holding secrets, wrong types, too short.
  const pw4 = plant("pw4", `Pw4${uid()}`);
  await http("POST", "/v1/auth/login", {
    raw: `{"email":"${email}","password":"${pw4}"`,
    headers: { "Content-Type": "application/json" },
  });
  await http("POST", "/v1/auth/login", {
    raw: `{"email":"${email}","password":{"x":"${pw4}"}}`,
    headers: { "Content-Type": "application/json" },
  });
  await http("POST", "/v1/auth/login", {
    raw: `{"email":["${pw4}"],"password":"${pw4}"}`,
    headers: { "Content-Type": "application/json" },
  });
  await http("POST", "/v1/users", {
    raw: `{"data":{"type":"user","attributes":{"email":"x@example.test","password":"${pw4}"}`,
  });
  await http("POST", "/v1/users", {
    body: { data: { type: "user", attributes: { email: "bad", password: pw4 } } },
  });
  const short = plant("short pw", `S${uid().slice(0, 5)}`);
  await http("POST", "/v1/users", {
    body: {
      data: {
        type: "user",
        attributes: { email: `s${uid().slice(0, 6)}@x.test`, password: short },
      },
    },
  });
  await http("POST", "/v1/users", {
    body: {
      data: {
        type: "user",
        attributes: { email: `s${uid().slice(0, 6)}@x.test`, password: [pw4] },
      },
    },
  });
  await http("PATCH", `/v1/users/${userId}`, {
    token: t3,
    body: { data: { type: "user", id: "999999", attributes: { password: pw4 } } },
  });
  await http("PATCH", `/v1/users/${userId}`, {
    token: t3,
    body: { data: { type: "event", id: userId, attributes: { password: pw4 } } },
  });
  await http("POST", "/v1/auth/change-password", {
    token: t3,
    raw: JSON.stringify({ data: { "old-password": pw4, "new-password": pw4 } }),
    headers: { "Content-Type": "application/json" },
  });
  await http("POST", "/v1/auth/change-password", {
    token: t3,
    raw: JSON.stringify({ data: { "old-password": pw3, "new-password": short } }),
    headers: { "Content-Type": "application/json" },
  });
  // Tokens where they do not belong.
  const forged = plant("forged token", `eyJhbGciOiJIUzI1NiJ9.eyJ${uid()}.${uid()}`);
  await http("GET", "/v1/activities", { token: forged });
  await http("GET", "/v1/activities", { headers: { Authorization: `Bearer ${forged}` } });
  await http("GET", "/v1/activities", { headers: { Authorization: `${forged}` } });
  await http("GET", `/v1/activities?access_token=${forged}`);
  await http(
    "GET",
    `/v1/activities?filter=${encodeURIComponent(`[{"name":"${forged}","op":"eq","val":"x"}]`)}`,
    { token: adminToken },
  );
  await http(
    "GET",
    `/v1/activities?filter=${encodeURIComponent(`[{"name":"action","op":"${forged}","val":"x"}]`)}`,
    { token: adminToken },
  );
  await http("GET", `/v1/activities?sort=${forged}`, { token: adminToken });
  await http("GET", `/v1/activities?token=${forged}`, { token: adminToken });
  await http("GET", `/v1/activities/${forged}`, { token: adminToken });
  // A real token where none belongs: its path reaches the gateway's access line.
  await http("GET", `/v1/activities/${adminToken}`, { token: adminToken });
  await http("GET", `/v1/events?password=${pw4}`, { token: adminToken });

  // Stripe.
  const event = await http("POST", "/v1/events", {
    token: t3,
    body: {
      data: {
        type: "event",
        attributes: {
          name: "Stripe summit",
          "starts-at": "2031-03-01T09:00:00+00:00",
          "ends-at": "2031-03-02T18:00:00+00:00",
          state: "published",
          "can-pay-by-stripe": true,
        },
      },
    },
  });
  assert.equal(event.status, 201, event.text);
  const eventId = event.body.data.id;
  const grantOf = () => {
    const g = stripe.grant();
    plant(`code ${g.code}`, g.code);
    plant(`access ${g.code}`, g.accessToken);
    plant(`refresh ${g.code}`, g.refreshToken);
    plant(`account ${g.code}`, g.accountId);
    return g;
  };
  const authBody = (code: string) => ({
    data: {
      type: "stripe-authorization",
      attributes: { "stripe-auth-code": code },
      relationships: { event: { data: { type: "event", id: eventId } } },
    },
  });
  const linked = await http("POST", "/v1/stripe-authorizations", {
    token: t3,
    body: authBody(grantOf().code),
    headers: { "Idempotency-Key": `k${uid()}` },
  });
  assert.equal(linked.status, 201, linked.text);
  const authId = linked.body.data.id;
  const relink = (code: string) =>
    http("PATCH", `/v1/stripe-authorizations/${authId}`, {
      token: t3,
      body: {
        data: {
          type: "stripe-authorization",
          id: authId,
          attributes: { "stripe-auth-code": code },
        },
      },
    });
  assert.equal((await relink(grantOf().code)).status, 200);
  const badCode = plant("bad code", `ac_bad${uid()}`);
  await relink(badCode);
  await http("POST", "/v1/stripe-authorizations", {
    raw: `{"data":{"type":"stripe-authorization","attributes":{"stripe-auth-code":"${badCode}"}`,
    token: t3,
  });
  await http("POST", "/v1/stripe-authorizations", {
    body: { data: { type: "stripe-authorization", attributes: { "stripe-auth-code": [badCode] } } },
    token: t3,
  });
  await http("POST", "/v1/webhooks/stripe", {
    raw: JSON.stringify({ id: "evt_1", type: "x", secret: badCode }),
    headers: { "Content-Type": "application/json", "Stripe-Signature": `t=1,v1=${badCode}` },
  });
  await http("GET", `/v1/stripe-authorizations/${authId}`, { token: t3 });
  const unlinked = await http("DELETE", `/v1/stripe-authorizations/${authId}`, { token: t3 });
  assert.equal(unlinked.status, 200, unlinked.text);
  const scraped = traced();
  const metrics = await fetch(`${url}/metrics`, {
    headers: { Authorization: `Bearer ${metricsToken}`, traceparent: scraped.traceparent },
  });
  const metricsText = await metrics.text();
  sent.push(scraped.trace);
  // Metric exports from here on: the first of a process may hold figures read before the last
  // request ended; its next, read a whole export interval later, holds them all.
  const metricExportsBefore = otlp.metricExports.length;
  // What is searched below must be there: /metrics answered with the figures.
  assert.equal(metrics.status, 200, metricsText);
  assert.match(metricsText, /^oe_http_requests_total\{service="gateway"/m);

  // Every fact on the stream (the outboxes drained), then audit caught up with them.
  const bus = await Bus.connect({ url: natsUrl, prefix, logger: createLogger("t", "error") });
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  const outboxes = ["catalog", "payments"].map((schema) => `${schema}.outbox`);
  const pending = async () => {
    let n = 0;
    for (const table of outboxes) {
      const [row] = await sql`select count(*)::int as n from ${sql(table)}`;
      n += row.n;
    }
    return n;
  };
  await eventually(async () => await pending() === 0, 20_000, "the outboxes drained");
  const stored = await storedMessages(bus, factSubjects.stream(prefix));
  await eventually(
    async () => {
      const [{ n }] = await sql`select count(*)::int as n from audit.activities`;
      return n === stored.length;
    },
    20_000,
    "audit caught up",
  );
  const activities = await sql`select * from audit.activities order by id`;
  const idem = [
    ...await sql`select * from catalog.idempotency_keys`,
    ...await sql`select * from payments.idempotency_keys`,
  ];
  await sql.end();
  const factTexts = stored.map((m) => `${JSON.stringify(m.header)} ${m.string()}`);
  await bus.close();
  // Everything the requests and their facts produced is exported (however slow the exporters),
  // and two metric exports of each process came after them: the search below covers it all.
  const factIds = stored.map((m) => m.json<{ id: string }>().id);
  await eventually(
    () => unexported(otlp.spans, sent, factIds).length === 0,
    30_000,
    "every span of the requests exported",
  ).catch((error) => {
    throw new Error(`${error.message}; missing ${unexported(otlp.spans, sent, factIds)}`);
  });
  const running = { gateway, catalog, payments, audit };
  const exportsAfter = (service: string) =>
    otlp.metricExports.slice(metricExportsBefore).filter((s) => s === service).length;
  await eventually(
    () => Object.keys(running).every((service) => exportsAfter(service) >= 2),
    30_000,
    "two metric exports of every process after the requests",
  );
  // Stopped, each flushes what it has left (Deno does at exit): searched too.
  for (const stopped of Object.values(running)) await stopped[Symbol.asyncDispose]();

  const outputs: [string, string[]][] = [
    ["response", exchanges.map((e) => e.response)],
    ["catalog log", catalog.lines],
    ["payments log", payments.lines],
    ["audit log", audit.lines],
    ["gateway log", gateway.lines],
    ["fact", factTexts],
    ["activity", activities.map((a) => JSON.stringify(a))],
    ["metrics", [metricsText]],
    ["otlp", otlp.exports.map(withoutRawUrl)],
    ["idempotency row", idem.map((r) => JSON.stringify(r))],
  ];
  // Each output searched holds something: an absence in an empty one would prove nothing.
  assert.deepEqual(
    outputs.filter(([, texts]) => texts.join("") === "").map(([where]) => where),
    [],
  );
  // (No /v1/logs: the services write their log lines to stderr, searched above as "... log";
  // Deno exports console output only.)
  for (const path of ["/v1/traces", "/v1/metrics"]) {
    assert.ok(otlp.exports.some((e) => e.startsWith(`${path} `)), `an OTLP export to ${path}`);
  }
  const found: string[] = [];
  for (const [where, texts] of outputs) {
    for (const [name, value] of secrets) {
      for (const [i, text] of texts.entries()) {
        const own = where === "response" && exchanges[i].request.includes(value);
        // A login's answer holds the token it issues.
        const issued = where === "response" && name.startsWith("token ") &&
          name.endsWith(` ${i + 1}`);
        if (text.includes(value) && !own && !issued) {
          const at = text.indexOf(value);
          found.push(`${name} in ${where}: ${text.slice(Math.max(0, at - 300), at + 100)}`);
          break;
        }
      }
    }
  }
  assert.deepEqual(found, []);
  // And the log is whole: one activity per fact, each with its actor.
  assert.deepEqual(activities.map((a) => a.fact_id).sort(), factIds.toSorted());
  const actions = activities.map((a) => `${a.actor} | ${a.action}`);
  const user = `${email} (${userId})`;
  for (
    const expected of [
      `${user} | User "${email}" (${userId}) created`,
      `${user} | Profile of user "${email}" (${userId}) updated`,
      `${user} | Stripe authorization linked for event ${eventId}`,
      `${user} | Stripe authorization re-linked for event ${eventId}`,
      `${user} | Stripe authorization removed for event ${eventId}`,
    ]
  ) assert.ok(actions.includes(expected), `${expected} in ${actions.join("\n")}`);
});
