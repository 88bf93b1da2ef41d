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
import { type SilentProxy, silentProxyTo } from "./silent_proxy.ts";
import { testDatabase } from "@shared/testing.ts";

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

/**
 * Catalog instance(s) and a gateway as subprocesses on `databaseUrl`, a bus prefix of its own;
 * `settings` adds to their environment.
 */
async function startFaultSystem(
  databaseUrl: string,
  catalogs = 1,
  settings: Record<string, string> = {},
): Promise<FaultSystem> {
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
    ...settings,
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

/** When every write answered 200 had its fact announced (epoch ms); waits until `until` at most. */
async function everyOkAnnounced(system: FaultSystem, answers: Answer[], until: number) {
  const ok = answers.filter((answer) => answer.status === 200).map((answer) => answer.name);
  while (Date.now() < until) {
    const announced = await announcedNames(system);
    if (ok.every((name) => announced.has(name))) break;
    await sleep(250);
  }
  return Date.now();
}

/** The catalog's pool in the lost-host test (DATABASE_POOL_MAX): small, so it fills fast. */
const LOST_HOST_POOL = 4;
/** The pool and the relay's own connection. */
const CATALOG_CONNECTIONS = LOST_HOST_POOL + 1;

/**
 * Reads `topic` signed in (never cached), many at once, until the catalog has opened every
 * connection it may through `proxy`; says how many it opened.
 */
async function openPool(system: FaultSystem, proxy: SilentProxy, topic: string): Promise<number> {
  const giveUpAt = Date.now() + 10_000;
  const read = () =>
    fetch(`${system.url}/v1/event-topics/${topic}?include=events`, {
      headers: { Accept: JSONAPI, Authorization: `JWT ${system.token}` },
    }).then((reply) => reply.body?.cancel());
  while (proxy.accepted < CATALOG_CONNECTIONS && Date.now() < giveUpAt) {
    await Promise.all(Array.from({ length: 60 }, read));
  }
  assert.ok(proxy.accepted >= CATALOG_CONNECTIONS, `only ${proxy.accepted} connections opened`);
  return proxy.accepted;
}

// A host lost without a word (no FIN, no RST: a failover to another address, a dead network
// path): each connection with a statement in flight waited until the kernel gave up on it, over
// ten minutes, and once all were stuck the catalog answered 504 to everything though a new
// connection would have worked at once. Now a connection silent past its statement timeout
// (plus shared/db.ts's ANSWER_MARGIN_S) is ended, and the pool connects anew.
Deno.test({
  name:
    "[catalog] PATCH when the Postgres host is lost without a word: fast 504s, then served again",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using db = await testDatabase();
    await using proxy = silentProxyTo(db.url);
    await using system = await startFaultSystem(proxy.url, 1, {
      DATABASE_POOL_MAX: String(LOST_HOST_POOL),
    });
    const topics: string[] = [];
    for (let i = 0; i < 3; i++) topics.push(await system.createTopic(`Topic ${i}`));

    // Every connection of the catalog's pool open, as in a busy service: a pool with room left
    // would hide the stuck ones behind new connections.
    const opened = await openPool(system, proxy, topics[0]);
    const load = patchLoad(system, topics);
    await sleep(1000);
    const lostAt = Date.now();
    proxy.loseHost();
    const served = async () => {
      while (Date.now() - lostAt < 15_000) {
        const back = load.answers.find((a) => a.sent > lostAt && a.status === 200);
        if (back) return back;
        await sleep(100);
      }
    };
    const firstBack = await served();
    await sleep(2000);
    const answers = await load.stop();
    // Longer than any deadline: a write held back anywhere would show by now.
    await sleep(REQUEST_TIMEOUT_MS + 1500);
    // The relay's batch caught by the loss still holds its rows on the server, where the lost
    // connection lives on, until facts.ts's DRAIN_HOLD_LIMIT (15 s) ends it; the facts behind
    // them wait for that.
    const published = await everyOkAnnounced(system, answers, lostAt + 25_000);

    const statuses: Record<number, number> = {};
    for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    const afterLoss = answers.filter((a) => a.sent > lostAt);
    console.log(JSON.stringify({
      opened,
      factsPublishedAfterLossMs: published - lostAt,
      statuses,
      failedButApplied: (await failedButApplied(system, answers)).length,
      slowestAfterLossMs: Math.max(...afterLoss.map((a) => a.answered - a.sent)),
      firstOkAfterLossMs: firstBack && firstBack.answered - lostAt,
    }));
    const said = () => system.catalogs[0].lines.slice(-40).join("\n");
    assert.ok(firstBack, `no 200 within 15 s of the loss; the catalog said:\n${said()}`);
    for (const answer of afterLoss) {
      assert.ok([200, 503, 504].includes(answer.status), `${answer.name}: ${answer.status}`);
      assert.ok(
        answer.answered - answer.sent < REQUEST_TIMEOUT_MS + 500,
        `${answer.name} took ${answer.answered - answer.sent} ms`,
      );
    }
    const late = answers.filter((a) => a.sent > firstBack.answered + 1000 && a.status !== 200);
    assert.deepEqual(late, [], "every connection of the lost host was ended by then");
    // A COMMIT Postgres received just before the loss may have been applied unanswered.
    await assertOnlyAnsweredWritesApplied(system, answers, { from: lostAt, to: lostAt });
    await assertFinalState(db.url, answers);
    // The operator reads it as an outage (logged when a check through the pool fails, which
    // depends on where the check's statement lands) that ended: each "lost" has its "back".
    const lines = system.catalogs[0].lines;
    assert.equal(
      count(lines, "lost the connection to Postgres"),
      count(lines, "Postgres is reachable again"),
      lines.join("\n"),
    );
  },
});

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
      // With the catalog's own words: a CI run once saw none, and fast 503s (no responders?).
      const said = () => system.catalogs[0].lines.slice(-40).join("\n");
      assert.ok(firstBack, `no 200 after Postgres came back; the catalog said:\n${said()}`);
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
