/**
 * Faults on real processes: the catalog and the gateway run as subprocesses on a private
 * Postgres, which is killed and restarted (or locked) under a PATCH load; a catalog instance is
 * SIGKILLed while another runs. Every answer is recorded and checked against what the database
 * and the fact stream hold afterwards: a write answered 504 or 503 must never show up.
 */
import { freePort } from "@shared/net.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import type { Fact } from "@shared/facts.ts";
import { factBus } from "./fact_bus.ts";
import { startPostgresServer } from "./postgres_server.ts";
import { holdTableLock } from "./table_lock.ts";
import { adminToken, faultEnv, spawnFaultSystem, storedFacts } from "./fault_env.ts";
import type { TestProcess } from "./processes.ts";

const REQUEST_TIMEOUT_MS = 2000;
const JSONAPI = "application/vnd.api+json";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FaultSystem extends AsyncDisposable {
  url: string;
  token: string;
  catalogs: TestProcess[];
  readFacts(): Promise<Fact[]>;
  createTopic(name: string): Promise<string>;
}

/** Catalog instance(s) and a gateway as subprocesses on `databaseUrl`, a bus prefix of its own. */
async function startFaultSystem(databaseUrl: string, catalogs = 1): Promise<FaultSystem> {
  await using stack = new AsyncDisposableStack();
  const testbus = stack.use(await factBus());
  const port = freePort();
  const env = {
    ...faultEnv({
      databaseUrl,
      natsUrl: testbus.natsUrl,
      prefix: testbus.prefix,
      port,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    }),
  };
  const labels = Array.from({ length: catalogs }, (_, i) => [`catalog-${i}`, "catalog"] as const);
  const processes = await spawnFaultSystem(stack, env, labels);
  const url = `http://127.0.0.1:${port}`;
  const token = await adminToken(url, env);
  const owned = stack.move();
  return {
    url,
    token,
    catalogs: labels.map(([label]) => processes[label]),
    readFacts: () => storedFacts(testbus),
    async createTopic(name) {
      const reply = await fetch(`${url}/v1/event-topics`, {
        method: "POST",
        headers: { "Content-Type": JSONAPI, Authorization: `JWT ${token}` },
        body: JSON.stringify({ data: { type: "event-topic", attributes: { name } } }),
      });
      assert.equal(reply.status, 201, await reply.clone().text());
      return (await reply.json()).data.id;
    },
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}

/** One request of a load run and what came of it (times in epoch ms). */
interface Answer {
  topic: string;
  name: string;
  status: number;
  sent: number;
  answered: number;
}

async function patchTopic(system: FaultSystem, topic: string, name: string): Promise<Answer> {
  const sent = Date.now();
  let status = 0;
  try {
    const reply = await fetch(`${system.url}/v1/event-topics/${topic}`, {
      method: "PATCH",
      headers: { "Content-Type": JSONAPI, Authorization: `JWT ${system.token}` },
      body: JSON.stringify({ data: { type: "event-topic", id: topic, attributes: { name } } }),
    });
    status = reply.status;
    await reply.body?.cancel();
  } catch {
    status = 0;
  }
  return { topic, name, status, sent, answered: Date.now() };
}

/** PATCHes each topic over and over (one writer per topic, in order) until `stop()`. */
function patchLoad(system: FaultSystem, topics: string[]) {
  let running = true;
  const answers: Answer[] = [];
  const writers = topics.map(async (topic) => {
    for (let n = 0; running; n++) {
      answers.push(await patchTopic(system, topic, `${topic}-v${n}`));
      await sleep(20);
    }
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(writers);
      return answers;
    },
  };
}

/** Names announced by `event-topic updated` facts: every applied PATCH has exactly one. */
async function announcedNames(system: FaultSystem): Promise<Set<string>> {
  return new Set(
    (await system.readFacts())
      .filter((fact) => fact.type === "catalog.event-topic.updated")
      .map((fact) => String(fact.data.name)),
  );
}

/** Failed writes that were applied all the same (what the issue saw: 70 of 71). */
async function failedButApplied(system: FaultSystem, answers: Answer[]): Promise<Answer[]> {
  const announced = await announcedNames(system);
  return answers.filter((answer) => answer.status !== 200 && announced.has(answer.name));
}

/**
 * Every 200 has its fact, and nothing else has one, but for a write in flight when Postgres was
 * killed (`window`, epoch ms): Postgres may have made its COMMIT durable just before, with no
 * answer left to say so (the README's commit window), so either outcome is right for it.
 */
async function assertOnlyAnsweredWritesApplied(
  system: FaultSystem,
  answers: Answer[],
  window?: { from: number; to: number },
) {
  const announced = await announcedNames(system);
  for (const answer of answers) {
    const ok = answer.status === 200;
    const inWindow = window !== undefined && answer.sent <= window.to &&
      answer.answered >= window.from;
    if (inWindow && !ok) continue;
    assert.equal(announced.has(answer.name), ok, `${answer.name} answered ${answer.status}`);
  }
}

/** Each topic ends as its last 200 left it (a failed PATCH applied later would overwrite it). */
async function assertFinalState(databaseUrl: string, answers: Answer[]) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select id::text, name from catalog.event_topics`;
    const stored = new Map(rows.map((row) => [row.id, row.name]));
    for (const topic of new Set(answers.map((answer) => answer.topic))) {
      const last = answers.filter((a) => a.topic === topic && a.status === 200).at(-1);
      if (last) assert.equal(stored.get(topic), last.name, `topic ${topic}`);
    }
  } finally {
    await sql.end();
  }
}

/** The gateway's `/health` report. */
async function health(system: FaultSystem) {
  const response = await fetch(`${system.url}/health`);
  return await response.json();
}

function count(lines: string[], text: string): number {
  return lines.filter((line) => line.includes(text)).length;
}

Deno.test({
  name: "[catalog] PATCH under a Postgres crash: 503 at once, no late writes, back within 1 s",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using pg = await startPostgresServer();
    await using system = await startFaultSystem(pg.url);
    const topics: string[] = [];
    for (let i = 0; i < 3; i++) topics.push(await system.createTopic(`Topic ${i}`));

    await t.step("killed for 4 s under load", async () => {
      const load = patchLoad(system, topics);
      await sleep(1000);
      const killedAt = Date.now();
      await pg.kill();
      const killed = { from: killedAt, to: Date.now() };
      await sleep(4000);
      const healthDown = await health(system);
      await pg.start();
      const backAt = Date.now();
      await sleep(2500);
      const answers = await load.stop();
      const healthBack = await health(system);
      // Longer than any deadline: a write held back anywhere would show by now.
      await sleep(REQUEST_TIMEOUT_MS + 1500);

      const down = answers.filter((a) => a.sent > killedAt + 500 && a.answered < backAt - 100);
      const firstBack = answers.find((a) => a.sent >= backAt && a.status === 200);
      const statuses: Record<number, number> = {};
      for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
      console.log(JSON.stringify({
        statuses,
        failedButApplied: (await failedButApplied(system, answers)).length,
        slowestWhileDownMs: Math.max(...down.map((a) => a.answered - a.sent)),
        firstOkAfterBackMs: firstBack && firstBack.answered - backAt,
      }));
      assert.ok(down.length > 10, `only ${down.length} requests while down`);
      for (const answer of down) {
        assert.equal(answer.status, 503, `${answer.name} while down`);
        assert.ok(answer.answered - answer.sent < 1000, `${answer.name} took too long`);
      }
      assert.ok(firstBack, "no 200 after Postgres came back");
      assert.ok(firstBack.answered - backAt < 1000, `first 200 ${firstBack.answered - backAt} ms`);
      const late = answers.filter((a) => a.sent > backAt + 1000 && a.status !== 200);
      assert.deepEqual(late, []);
      await assertOnlyAnsweredWritesApplied(system, answers, killed);
      await assertFinalState(pg.url, answers);

      // /health names the catalog impaired while its database is gone, and no longer once back
      // (the other services do not run here: they are missing all along).
      assert.deepEqual(healthDown.services.catalog, {
        instances: 1,
        problems: ["database unreachable"],
      });
      assert.deepEqual(healthDown.impaired, ["catalog"]);
      assert.deepEqual(healthBack.services.catalog, { instances: 1 });
      assert.equal(healthBack.impaired, undefined);

      const lines = system.catalogs[0].lines;
      assert.equal(count(lines, "lost the connection to Postgres"), 1, lines.join("\n"));
      // It says where, so an operator knows which database to look at.
      const { hostname, port } = new URL(pg.url);
      const lost = lines.find((line) => line.includes("lost the connection to Postgres"))!;
      assert.equal(JSON.parse(lost).at, `${hostname}:${port}`, lost);
      assert.equal(count(lines, "Postgres is reachable again"), 1, lines.join("\n"));
      // The outage is the one line above, not an error line per failed request.
      assert.equal(count(lines, "request failed"), 0, lines.join("\n"));
    });

    await t.step(
      "a table lock outlasting the deadline: 504, and nothing applied later",
      async () => {
        await using lock = await holdTableLock(pg.url, "catalog.event_topics");
        const answers = await Promise.all(
          topics.map((topic) => patchTopic(system, topic, `${topic}-locked`)),
        );
        await sleep(1000);
        await lock.release();
        await sleep(REQUEST_TIMEOUT_MS);
        assert.deepEqual(answers.map((a) => a.status), topics.map(() => 504));
        await assertOnlyAnsweredWritesApplied(system, answers);
        const [{ locked }] = await lock.sql`select count(*)::int as locked
          from catalog.event_topics where name like '%-locked'`;
        assert.equal(locked, 0);
      },
    );
  },
});

Deno.test({
  name: "[catalog] a SIGKILLed instance fails only the requests it held; the other serves on",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using pg = await startPostgresServer();
    await using system = await startFaultSystem(pg.url, 2);
    const topics: string[] = [];
    for (let i = 0; i < 4; i++) topics.push(await system.createTopic(`Topic ${i}`));
    const load = patchLoad(system, topics);
    await sleep(1000);
    const killedAt = Date.now();
    await system.catalogs[1].kill("SIGKILL");
    const goneAt = Date.now();
    await sleep(REQUEST_TIMEOUT_MS + 1000);
    const answers = await load.stop();

    const failed = answers.filter((a) => a.status !== 200);
    console.log(JSON.stringify({
      answers: answers.length,
      goneAfterMs: goneAt - killedAt,
      failed: failed.map((a) => ({ status: a.status, sentAfterKillMs: a.sent - killedAt })),
    }));
    // Only what was in flight on the killed instance: at most one request per writer, each
    // sent before the process was gone, answered 504 when the gateway's wait ran out.
    assert.ok(failed.length <= topics.length, JSON.stringify(failed));
    for (const answer of failed) {
      assert.equal(answer.status, 504);
      assert.ok(answer.sent <= goneAt + 20, `${answer.name} sent after the instance was gone`);
    }
    assert.ok(answers.filter((a) => a.sent > killedAt && a.status === 200).length > 10);
    // Not the facts check: a write the killed instance committed just before dying answers 504
    // all the same (the commit window); it can never be applied later, so the end state holds.
    await assertFinalState(pg.url, answers);
  },
});
