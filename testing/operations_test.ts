/**
 * Operations, end to end on real processes (Deno's OpenTelemetry is only on in a process started
 * with OTEL_DENO=true): one request through gateway -> discounts -> catalog whose fact reaches
 * audit arrives at an OTLP receiver as one trace with the expected parents and links; log lines
 * carry its ids; `GET /metrics` parses as Prometheus text, shows every instance and moves with
 * load; a consumer that cannot keep up shows its lag.
 */
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import postgres from "postgres";
import { freePort } from "@shared/net.ts";
import { factStreamRemoval, testBackends, testDatabase } from "@shared/testing.ts";
import { eventually } from "./eventually.ts";
import { type ReceivedSpan, SPAN_KIND, startOtlpReceiver } from "./otlp_receiver.ts";
import { type LogLine, spawnProcess, type TestProcess } from "./processes.ts";

const JSONAPI = "application/vnd.api+json";
const METRICS_TOKEN = crypto.randomUUID();

interface Running {
  url: string;
  token: string;
  processes: Record<string, TestProcess>;
}

async function login(url: string, admin: { email: string; password: string }): Promise<string> {
  let last = "no answer";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const reply = await fetch(`${url}/v1/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(admin),
    }).catch((error) => error as Error);
    if (reply instanceof Response) {
      const body = await reply.json().catch(() => ({}));
      if (reply.status === 200) return body.access_token;
      last = `${reply.status}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Cannot log in as the admin: ${last}`);
}

async function call(
  system: Running,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const reply = await fetch(`${system.url}${path}`, {
    method,
    headers: {
      Accept: JSONAPI,
      Authorization: `JWT ${system.token}`,
      ...(options.body ? { "Content-Type": JSONAPI } : {}),
      ...options.headers,
    },
    body: options.body ? JSON.stringify(options.body) : undefined,
  });
  const text = await reply.text();
  return { status: reply.status, body: text ? JSON.parse(text) : {} };
}

async function createEvent(system: Running): Promise<string> {
  const reply = await call(system, "POST", "/v1/events", {
    body: {
      data: {
        type: "event",
        attributes: {
          name: "Traced summit",
          "starts-at": "2031-03-01T09:00:00+00:00",
          "ends-at": "2031-03-02T18:00:00+00:00",
          timezone: "UTC",
          state: "published",
        },
      },
    },
  });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return (reply.body.data as { id: string }).id;
}

function codeBody(eventId: string) {
  return {
    data: {
      type: "discount-code",
      attributes: {
        code: `TRACE${crypto.randomUUID().slice(0, 6)}`,
        value: 10,
        type: "percent",
        "used-for": "event",
      },
      relationships: { events: { data: [{ type: "event", id: eventId }] } },
    },
  };
}

/**
 * Reads `/metrics` with the token and parses it with an independent Prometheus parser (which
 * throws on a malformed line). That parser folds labelled histograms into one sample, so each
 * histogram series' `_count` is read from the text too, and checked against its `+Inf` bucket.
 */
async function scrape(system: Running): Promise<PrometheusFamily[]> {
  const reply = await fetch(`${system.url}/metrics`, {
    headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
  });
  assert.equal(reply.status, 200);
  assert.match(reply.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await reply.text();
  const families = (parsePrometheus(text) as PrometheusFamily[]).filter((f) =>
    f.type !== "HISTOGRAM"
  );
  const names = text.match(/^# TYPE (\S+)/gm)!.map((line) => line.slice(7));
  assert.equal(new Set(names).size, names.length, "one TYPE line per family");
  for (const name of text.match(/^# TYPE \S+ histogram$/gm)!.map((l) => l.split(" ")[2])) {
    families.push({ name, type: "HISTOGRAM", metrics: histogramCounts(text, name) });
  }
  return families;
}

/** Each series of a histogram with its `_count`, after checking it equals its `+Inf` bucket. */
function histogramCounts(text: string, name: string): PrometheusSample[] {
  const samples: PrometheusSample[] = [];
  for (
    const [, labels, count] of text.matchAll(new RegExp(`^${name}_count\\{(.*)\\} (\\S+)$`, "gm"))
  ) {
    const inf = text.match(
      new RegExp(`^${name}_bucket\\{${escape(labels)},le="\\+Inf"\\} (\\S+)$`, "m"),
    );
    assert.equal(inf?.[1], count, `${name}{${labels}}: +Inf bucket equals count`);
    const parsed = Object.fromEntries(
      [...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k, v]),
    );
    samples.push({ labels: parsed, count });
  }
  return samples;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The README's metrics table: each metric it names, with the labels its row names (`oe_bus_errors_total`
 * also takes `status`, in parentheses there; every series also carries `service` and `instance`).
 */
async function documentedMetrics(): Promise<Map<string, Set<string>>> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const start = readme.indexOf("| Metric ");
  const rows = readme.slice(start, readme.indexOf("\n\n", start)).split("\n").slice(2);
  const documented = new Map<string, Set<string>>();
  for (const row of rows) {
    const [, names, labels] = row.split("|");
    const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    for (const name of ticked(names)) {
      documented.set(name, new Set([...ticked(labels), "service", "instance"]));
    }
  }
  return documented;
}

interface PrometheusSample {
  labels?: Record<string, string>;
  value?: string;
  count?: string;
  buckets?: Record<string, string>;
}

interface PrometheusFamily {
  name: string;
  type: string;
  metrics: PrometheusSample[];
}

/** The sum over samples of `name` whose labels include `labels` (value, or count). */
function total(families: PrometheusFamily[], name: string, labels: Record<string, string>) {
  const family = families.find((f) => f.name === name);
  if (!family) return undefined;
  let sum = 0;
  for (const sample of family.metrics) {
    if (!Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)) continue;
    sum += Number(sample.value ?? sample.count ?? 0);
  }
  return sum;
}

/** The `service.instance.id`s each `service.name` exported over OTLP (any signal). */
function exportedInstanceIds(exports: string[]): Map<string, Set<string>> {
  const ids = new Map<string, Set<string>>();
  for (const entry of exports) {
    const body = JSON.parse(entry.slice(entry.indexOf(" ") + 1));
    const resources = [
      ...(body.resourceSpans ?? []),
      ...(body.resourceMetrics ?? []),
      ...(body.resourceLogs ?? []),
    ];
    for (const { resource } of resources) {
      const attribute = (key: string) =>
        resource?.attributes?.find((a: { key: string }) => a.key === key)?.value?.stringValue;
      const service = attribute("service.name");
      const id = attribute("service.instance.id");
      if (service === undefined || id === undefined) continue;
      ids.set(service, (ids.get(service) ?? new Set()).add(id));
    }
  }
  return ids;
}

/** Spans of one trace by their name and service; fails naming what is missing. */
function findSpan(spans: ReceivedSpan[], service: string, name: string, kind: number) {
  const found = spans.find((s) => s.service === service && s.name === name && s.kind === kind);
  assert.ok(
    found,
    `no ${service} span "${name}" (kind ${kind}); got ${
      JSON.stringify(spans.map((s) => `${s.service}:${s.name}:${s.kind}`))
    }`,
  );
  return found;
}

function ancestors(spans: ReceivedSpan[], span: ReceivedSpan): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let at = span; at.parentSpanId;) {
    const parent = spans.find((s) => s.spanId === at.parentSpanId);
    if (!parent) break;
    chain.push(parent);
    at = parent;
  }
  return chain;
}

Deno.test("[operations] one request is one trace across every hop; /metrics shows every instance and its lag", async (t) => {
  const { natsUrl } = await testBackends();
  await using otlp = startOtlpReceiver();
  await using database = await testDatabase();
  const prefix = `ops${crypto.randomUUID().slice(0, 8)}`;
  const port = freePort();
  const admin = { email: "admin@example.test", password: crypto.randomUUID() };
  const env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "",
    DATABASE_URL: database.url,
    NATS_URL: natsUrl,
    BUS_PREFIX: prefix,
    JWT_SECRET: crypto.randomUUID(),
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    PASSWORD_ITERATIONS: "1000",
    PORT: String(port),
    LOG_LEVEL: "info",
    METRICS_TOKEN,
    OTEL_DENO: "true",
    ...otlp.env,
  };
  const start = (name: string, main: string, more: Record<string, string> = {}) =>
    spawnProcess(name, main, { ...env, OTEL_SERVICE_NAME: name, ...more });
  // Removed after the processes stop (disposal runs in reverse): removed while they ran, the
  // services made the stream again (as after a lost JetStream store), and it was left behind.
  await using _streams = factStreamRemoval(natsUrl, prefix);
  await using catalog = start("catalog", "services/catalog/main.ts");
  // A pool of its own size: the operator's setting reaches the process and its metrics.
  await using discounts = start("discounts", "services/discounts/main.ts", {
    DATABASE_POOL_MAX: "7",
  });
  await using audit = start("audit", "services/audit/main.ts");
  await using gateway = start("gateway", "gateway/main.ts");
  const url = `http://127.0.0.1:${port}`;
  const system: Running = {
    url,
    token: await login(url, admin),
    processes: { catalog, discounts, audit, gateway },
  };
  for (const name of ["catalog", "discounts", "audit"]) {
    await system.processes[name].waitForLog((line) => line.message === `${name} ready`, 30_000);
  }
  const eventId = await createEvent(system);

  await t.step(
    "a discount code's creation is one trace, down to audit's handling of its fact",
    async () => {
      const traceId = crypto.randomUUID().replaceAll("-", "");
      const rootSpanId = "00f067aa0ba902b7";
      const reply = await call(system, "POST", "/v1/discount-codes", {
        body: codeBody(eventId),
        headers: { traceparent: `00-${traceId}-${rootSpanId}-01` },
      });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      const inTrace = () => otlp.spans.filter((s) => s.traceId === traceId);
      // Each process exports on its own schedule (audit's batch may come before discounts'):
      // wait for the last span of every hop checked below.
      const fact = "facts.discounts.discount-code.created";
      const hops: [string, string, number][] = [
        ["gateway", "POST /v1/discount-codes", SPAN_KIND.server],
        ["discounts", "discounts.discount-codes.create", SPAN_KIND.server],
        ["discounts", `publish ${fact}`, SPAN_KIND.producer],
        ["catalog", "catalog.internal.access", SPAN_KIND.server],
        ["audit", "process discounts.discount-code.created", SPAN_KIND.consumer],
      ];
      await eventually(
        () =>
          hops.every(([service, name, kind]) =>
            inTrace().some((s) => s.service === service && s.name === name && s.kind === kind)
          ),
        20_000,
        "the last span of every hop: gateway, discounts (served, published), catalog, audit",
      );
      const spans = inTrace();
      const http = findSpan(spans, "gateway", "POST /v1/discount-codes", SPAN_KIND.server);
      assert.equal(http.parentSpanId, rootSpanId);
      assert.equal(http.attributes["http.route"], "/v1/discount-codes");
      const sent = findSpan(spans, "gateway", "discounts.discount-codes.create", SPAN_KIND.client);
      assert.equal(sent.parentSpanId, http.spanId);
      const served = findSpan(spans, "discounts", sent.name, SPAN_KIND.server);
      assert.equal(served.parentSpanId, sent.spanId);
      // discounts asks the catalog who the caller is, within its own handling.
      const asks = findSpan(spans, "discounts", "catalog.internal.access", SPAN_KIND.client);
      assert.ok(ancestors(spans, asks).includes(served));
      const answers = findSpan(spans, "catalog", "catalog.internal.access", SPAN_KIND.server);
      assert.equal(answers.parentSpanId, asks.spanId);
      const tx = findSpan(spans, "discounts", "transaction", SPAN_KIND.internal);
      assert.ok(ancestors(spans, tx).includes(served));
      // The fact: published in the trace of the transaction that recorded it...
      const published = findSpan(spans, "discounts", `publish ${fact}`, SPAN_KIND.producer);
      assert.equal(published.parentSpanId, tx.spanId);
      // Where it went, as bus requests say theirs: the subject with its prefix.
      assert.equal(published.attributes["messaging.destination.name"], `${prefix}.${fact}`);
      // ...and handled by audit as its child, linked to the batch that did the work.
      const handled = findSpan(
        spans,
        "audit",
        "process discounts.discount-code.created",
        SPAN_KIND.consumer,
      );
      assert.equal(handled.parentSpanId, published.spanId);
      assert.equal(handled.links.length, 1);
      // The batch span ends after the facts it handled (their activities' insert is in it), so it
      // may be exported in a later export than theirs (a CI run, 2026-12-04).
      const batchOf = () => otlp.spans.find((s) => s.spanId === handled.links[0].spanId);
      await eventually(() => batchOf() !== undefined, 20_000, "the batch span is exported");
      const batch = batchOf()!;
      assert.equal(batch.service, "audit");
      assert.ok(batch.links.some((l) => l.traceId === traceId && l.spanId === published.spanId));
      // The gateway's access log line names the request's trace and span.
      const logged = await gateway.waitForLog(
        (line: LogLine) => line.message === "request" && line.trace_id === traceId,
        5_000,
      );
      assert.equal(logged.span_id, http.spanId);
    },
  );

  await t.step("the same figures go out as OpenTelemetry metrics", async () => {
    const expected = [
      "gateway/oe_http_request_duration_seconds",
      "gateway/oe_bus_requests",
      "discounts/oe_bus_request_duration_seconds",
      "discounts/oe_outbox_backlog",
      "audit/oe_fact_consumer_lag",
      "catalog/process_cpu_seconds",
      // Made at start and never counted here: exported at 0 all the same.
      "audit/oe_facts_poisoned",
    ];
    await eventually(
      () => expected.every((name) => otlp.metrics.has(name)),
      15_000,
      `OTLP metrics ${expected.join(", ")}`,
    );
  });

  await t.step("/metrics needs the token", async () => {
    const without = await fetch(`${url}/metrics`);
    assert.equal(without.status, 401);
    await without.body?.cancel();
    const wrong = await fetch(`${url}/metrics`, { headers: { Authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
  });

  await t.step(
    "/metrics parses as Prometheus text, labels every instance and moves with load",
    async () => {
      const before = await scrape(system);
      for (const service of ["catalog", "discounts", "audit", "gateway"]) {
        assert.equal(total(before, "oe_instances", { service }), 1, service);
      }
      const requestsBefore = total(before, "oe_http_requests_total", {
        method: "GET",
        route: "/v1/events/:id",
        status: "200",
      }) ?? 0;
      const servedBefore = total(before, "oe_bus_requests_total", {
        service: "catalog",
        side: "server",
        endpoint: "catalog.events.get",
      }) ?? 0;
      const load = 40;
      for (let i = 0; i < load; i++) {
        assert.equal((await call(system, "GET", `/v1/events/${eventId}`)).status, 200);
      }
      const after = await scrape(system);
      assert.equal(
        total(after, "oe_http_requests_total", {
          method: "GET",
          route: "/v1/events/:id",
          status: "200",
        }),
        requestsBefore + load,
      );
      assert.equal(
        total(after, "oe_bus_requests_total", {
          service: "catalog",
          side: "server",
          endpoint: "catalog.events.get",
        }),
        servedBefore + load,
      );
      assert.ok(
        (total(after, "oe_bus_request_duration_seconds", {
          service: "gateway",
          side: "client",
          endpoint: "catalog.events.get",
        }) ?? 0) >= load,
        "the gateway's client-side latency histogram counted the requests",
      );
      for (
        const name of ["oe_outbox_backlog", "oe_db_pool_connections", "process_cpu_seconds_total"]
      ) {
        assert.ok(total(after, name, { service: "discounts" }) !== undefined, name);
      }
      assert.equal(total(after, "oe_db_pool_max", { service: "discounts" }), 7);
      assert.equal(total(after, "oe_db_pool_max", { service: "catalog" }), 10);
    },
  );

  await t.step(
    "every family /metrics shows is in the README's table, with its labels",
    async () => {
      const documented = await documentedMetrics();
      assert.ok(documented.size > 30, "the README's metrics table was found");
      for (const family of await scrape(system)) {
        const labels = documented.get(family.name);
        assert.ok(labels, `${family.name} is not in the README's metrics table`);
        for (const sample of family.metrics) {
          for (const label of Object.keys(sample.labels ?? {})) {
            assert.ok(labels.has(label), `${family.name}'s label ${label} is not in the README`);
          }
        }
      }
    },
  );

  await t.step(
    "each instance's /metrics series join its traces by service.instance.id",
    async () => {
      const services = ["catalog", "discounts", "audit", "gateway"];
      await eventually(
        () => services.every((s) => exportedInstanceIds(otlp.exports).get(s)?.size),
        15_000,
        "every service exported over OTLP",
      );
      const exported = exportedInstanceIds(otlp.exports);
      const info = (await scrape(system)).find((f) => f.name === "oe_instance_info");
      for (const service of services) {
        const samples = info?.metrics.filter((m) => m.labels?.service === service) ?? [];
        assert.equal(samples.length, 1, `one oe_instance_info of ${service}`);
        const id = samples[0].labels?.service_instance_id;
        assert.deepEqual([...exported.get(service)!], [id], `${service}'s OTLP instance id`);
      }
    },
  );

  await t.step("a consumer that cannot keep up shows its lag", async () => {
    // Audit's inserts wait behind a lock held here: the facts pile up unhandled.
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const topics = 5;
      await sql.begin(async (tx) => {
        await tx`lock table audit.activities in access exclusive mode`;
        for (let i = 0; i < topics; i++) {
          const reply = await call(system, "POST", "/v1/event-topics", {
            body: { data: { type: "event-topic", attributes: { name: `Lagging ${i}` } } },
          });
          assert.equal(reply.status, 201);
        }
        await eventually(
          async () => {
            const lag = total(await scrape(system), "oe_fact_consumer_lag", {
              service: "audit",
              durable: "audit",
            });
            return (lag ?? 0) >= topics;
          },
          15_000,
          "audit's lag to show the facts waiting",
        );
      });
      await eventually(
        async () => {
          const lag = total(await scrape(system), "oe_fact_consumer_lag", {
            service: "audit",
            durable: "audit",
          });
          return lag === 0;
        },
        40_000,
        "audit's lag to fall back to 0 once it can write",
      );
    } finally {
      await sql.end();
    }
  });
});
