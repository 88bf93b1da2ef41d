import assert from "node:assert/strict";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { eventually } from "@testing/eventually.ts";
import { factBus } from "@testing/fact_bus.ts";
import { exampleFact } from "@testing/facts.ts";
import { backUpSchema } from "@testing/schema_backup.ts";
import { consumeFacts, type FactConsumer } from "./consumer.ts";
import { openDatabase, type Sql } from "./db.ts";
import { keptPositions } from "./fact_kept_position.ts";
import { createLogger, type Logger } from "./log.ts";
import { facts } from "./subjects.ts";
import { recordingLogger, type TestBus, testDatabase } from "./testing.ts";

const quiet = createLogger("test", "error");
const SCHEMA = "follower";

async function publishTopics(b: TestBus, numbers: number[]): Promise<void> {
  const js = jetstream(b.bus.nc);
  for (const n of numbers) {
    const fact = exampleFact("catalog.event-topic.created", { id: String(n) });
    await js.publish(b.bus.subject("facts.catalog.event-topic.created"), JSON.stringify(fact));
  }
}

/**
 * Runs `test` with a fact bus of its own and a pool on the follower's schema of a database of its
 * own (`url`), all removed after: what every test here starts from.
 */
async function onFollowerDatabase(
  test: (b: TestBus, sql: Sql, url: string) => Promise<void>,
): Promise<void> {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const sql = await openDatabase(db.url, { schema: SCHEMA, log: quiet });
  try {
    await test(b, sql, db.url);
  } finally {
    await sql.end();
  }
}

/**
 * A follower as our services have them: a durable consumer that records each topic it is handed
 * in table `seen` of its schema, and keeps its position there. `handed` lists every topic handed
 * over, in order, replays included.
 */
async function follow(
  b: TestBus,
  sql: Sql,
  handed: number[],
  options: {
    log?: Logger;
    batchSize?: number;
    floorReadMs?: number;
    pause?: () => Promise<void>;
    sayRefusedAfterMs?: number;
  } = {},
): Promise<FactConsumer> {
  return await consumeFacts(b.bus, {
    durable: "follower",
    subject: "facts.catalog.>",
    log: options.log ?? quiet,
    // Read often, so that the kept position leaves the facts settled behind it (a replay's start).
    floorReadMs: options.floorReadMs ?? 50,
    batchSize: options.batchSize,
    keptIn: keptPositions(sql, options.log ?? quiet, {
      sayRefusedAfterMs: options.sayRefusedAfterMs,
    }),
    handle: async (batch) => {
      for (const fact of batch) {
        await options.pause?.();
        handed.push(Number(fact.data.id));
        await sql`insert into seen (n) values (${Number(fact.data.id)}) on conflict do nothing`;
      }
    },
  });
}

/** Follows topics 1 to `count` to the end, then stops: the database and its position hold all. */
async function followed(b: TestBus, sql: Sql, count: number): Promise<void> {
  await sql`create table seen (n int primary key)`;
  const handed: number[] = [];
  const consumer = await follow(b, sql, handed);
  await publishTopics(b, Array.from({ length: count }, (_, i) => i + 1));
  await eventually(() => handed.length === count, 10_000, `topics 1-${count} followed`);
  await consumer.stop();
}

async function seen(sql: Sql): Promise<number[]> {
  return (await sql<{ n: number }[]>`select n from seen order by n`).map((r) => r.n);
}

async function keptResumeAt(sql: Sql): Promise<number> {
  const [row] = await sql`select resume_at from fact_positions where consumer = 'follower'`;
  return Number(row?.resume_at ?? 0);
}

// Found by a backup-and-restore review (2026-12-06): a follower's database restored from a backup
// lacked the facts its durable consumer had settled since, and JetStream never handed them over
// again (a deleted event's discount codes stayed live for good) unless an operator removed the
// durable by hand. The position kept in the database now tells, and the consumer replays them.
Deno.test("[kept position] a follower whose database was restored from a backup gets the facts it lacks again", () =>
  onFollowerDatabase(async (b, sql, url) => {
    await sql`create table seen (n int primary key)`;
    const before: number[] = [];
    let consumer = await follow(b, sql, before);
    await publishTopics(b, [1, 2, 3, 4, 5]);
    await eventually(async () => (await seen(sql)).length === 5, 10_000, "topics 1-5 followed");
    await eventually(async () => await keptResumeAt(sql) === 6, 10_000, "position kept past 5");
    await using backup = await backUpSchema(url, SCHEMA);

    await publishTopics(b, [6, 7, 8]);
    await eventually(async () => (await seen(sql)).length === 8, 10_000, "topics 6-8 followed");
    await consumer.stop();
    await backup.restore();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5], "the restored database lacks 6-8");

    const after: number[] = [];
    consumer = await follow(b, sql, after);
    await publishTopics(b, [9]);
    await eventually(async () => (await seen(sql)).length === 9, 10_000, "6-8 handed over again");
    await consumer.stop();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(after, [6, 7, 8, 9], "from the kept position, in order, 9 after the replay");
  }));

Deno.test("[kept position] a follower whose database is not behind hands nothing over again", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    const first: number[] = [];
    let consumer = await follow(b, sql, first);
    await publishTopics(b, [1, 2, 3]);
    await eventually(async () => (await seen(sql)).length === 3, 10_000, "topics 1-3 followed");
    // The stream's last fact of another subject: the filter moves the consumer past it unhanded
    // (found by the last look: such a follower took itself for behind at every start).
    await jetstream(b.bus.nc).publish(
      b.bus.subject("facts.payments.stripe-authorization.created"),
      JSON.stringify(exampleFact("payments.stripe-authorization.created", { id: "1" })),
    );
    const jsm = await jetstreamManager(b.bus.nc);
    await eventually(
      async () =>
        (await jsm.consumers.info(facts.stream(b.prefix), "follower")).delivered.stream_seq === 4,
      10_000,
      "the consumer moved past fact 4, of another subject",
    );
    await consumer.stop();

    const second: number[] = [];
    const log = recordingLogger();
    consumer = await follow(b, sql, second, { log });
    await publishTopics(b, [4]);
    await eventually(async () => (await seen(sql)).length === 4, 10_000, "topic 4 followed");
    await consumer.stop();
    assert.deepEqual(second, [4]);
    assert.deepEqual(log.lines.map((l) => l.message), [], "not taken for behind");
  }));

// Found by a review: the database was taken as up to date when the highest fact settled reached
// the floor, but with several instances that fact can be above facts another instance still held:
// a backup then (instance A holding 1, 2 and 4, B done with 3 and 5) kept highest 5 and
// resume_at 1, and after its restore 1, 2 and 4 were never handed over again.
Deno.test("[kept position] a restored database missing facts below its highest one gets them again", () =>
  onFollowerDatabase(async (b, sql) => {
    await followed(b, sql, 5);
    // As that backup restored: 3 and 5 in the database, the row such an instance pair writes.
    await sql`delete from seen where n in (1, 2, 4)`;
    await sql`update fact_positions set highest = 5, resume_at = 1`;

    const after: number[] = [];
    const consumer = await follow(b, sql, after);
    await eventually(async () => (await seen(sql)).length === 5, 10_000, "1, 2 and 4 again");
    await consumer.stop();
    assert.deepEqual(after, [1, 2, 3, 4, 5]);
  }));

// Found by a review: after its replay the consumer followed the durable as found at start, and a
// durable removed meanwhile (by hand, as the README's older procedure says) was never made again:
// the facts behind stopped for good, a warning every second.
Deno.test("[kept position] a durable removed while a restored database catches up is made again", () =>
  onFollowerDatabase(async (b, sql) => {
    const jsm = await jetstreamManager(b.bus.nc);
    await followed(b, sql, 6);
    await sql`delete from seen where n > 2`;
    await sql`update fact_positions set highest = 2, resume_at = 3`;

    // The replay holds fact 3 until the durable is gone.
    let removed!: () => void;
    const durableGone = new Promise<void>((resolve) => removed = resolve);
    const after: number[] = [];
    const log = recordingLogger();
    const consumer = await follow(b, sql, after, { log, batchSize: 1, pause: () => durableGone });
    await eventually(
      () => log.lines.some((l) => l.message.startsWith("the database is behind")),
      10_000,
      "the catch-up begun",
    );
    await jsm.consumers.delete(facts.stream(b.prefix), "follower");
    removed();
    await eventually(
      () => log.lines.some((l) => l.message === "caught up with the fact consumer"),
      10_000,
      "caught up",
    );
    await publishTopics(b, [7]);
    await eventually(() => after.includes(7), 10_000, "a new fact followed after the catch-up");
    await consumer.stop();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5, 6, 7]);
  }));

// Found by a review: a database that lost its last commits under a running instance (a failover to
// a standby that was behind) had its kept position written forward again by that instance's next
// batch, and facts the lost commits had applied were never handed over again.
Deno.test("[kept position] a running follower whose database lost commits hands them over again", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    const handed: number[] = [];
    const log = recordingLogger();
    // No floor read within the test: the replay start stays where it began, only `highest` moves
    // (a loss of the last second's commits, which the second review saw go unnoticed).
    const consumer = await follow(b, sql, handed, { log, floorReadMs: 60_000 });
    await publishTopics(b, [1, 2, 3, 4, 5]);
    const kept = async () =>
      (await sql`select highest, resume_at, lost_from from fact_positions`)[0];
    await eventually(async () => Number((await kept())?.highest) === 5, 10_000, "5 kept");
    const { resume_at: resumeAt } = await kept();
    // As a standby promoted without the commits that applied 4 and 5 and kept them.
    await sql`delete from seen where n >= 4`;
    await sql`update fact_positions set highest = 3`;

    await publishTopics(b, [6]);
    await eventually(async () => (await seen(sql)).length === 6, 10_000, "4 and 5 again");
    await eventually(async () => (await kept()).lost_from === null, 10_000, "the loss made good");
    await consumer.stop();
    const lost = log.lines.find((l) => l.message.startsWith("the database lost facts"));
    assert.equal(lost?.fromSequence, Number(resumeAt), "replayed from the kept replay start");
    assert.ok(handed.slice(6).includes(4) && handed.slice(6).includes(5), "4 and 5 again");
  }));

// Found by the second review: nats-server 2.9 reports an acknowledgement floor of 0 until a
// consumer's first acknowledgement, so a durable that never handed a fact over (no fact of its
// subjects yet) kept a replay start of 1, and every start took the database for behind (2.5 s more).
Deno.test("[kept position] a follower that has had no fact yet is not behind at its next start", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    let consumer = await follow(b, sql, []);
    // Facts of other subjects only: the follower's filter hands none of them over.
    const js = jetstream(b.bus.nc);
    for (let i = 0; i < 3; i++) {
      const fact = exampleFact("payments.stripe-authorization.created", { id: String(i + 1) });
      await js.publish(
        b.bus.subject("facts.payments.stripe-authorization.created"),
        JSON.stringify(fact),
      );
    }
    await consumer.stop();

    const log = recordingLogger();
    consumer = await follow(b, sql, [], { log });
    await consumer.stop();
    assert.deepEqual(log.lines.map((l) => l.message), [], "nothing to catch up");
  }));

// Found by the second review: an instance still settling a fact of a lost stream wrote the row back
// to that stream (and cleared a loss marked), its next write of the new stream started the row over
// from 1, and the next write of another instance took its own position for lost.
Deno.test("[kept position] a write of an older stream than the row's changes nothing", async () => {
  await using db = await testDatabase();
  const sql = await openDatabase(db.url, { schema: SCHEMA, log: quiet });
  try {
    const lost: string[] = [];
    const store = keptPositions(sql, quiet);
    store.onLost("follower", () => lost.push("follower"));
    const older = "2026-12-06T09:00:00.000000001Z";
    const newer = "2026-12-06T10:00:00.000000001Z";
    store.note("follower", { stream: newer, highest: 5, resumeAt: 6 });
    await store.flush();
    // Another instance: a fact of the lost stream settled late, then its first of the new one.
    const other = keptPositions(sql, quiet);
    other.note("follower", { stream: older, highest: 90, resumeAt: 91 });
    await other.flush();
    other.note("follower", { stream: newer, highest: 0, resumeAt: 1 });
    await other.flush();
    store.note("follower", { stream: newer, highest: 7, resumeAt: 8 });
    await store.flush();
    const { keptAt: _, ...kept } = (await store.read("follower"))!;
    assert.deepEqual(kept, { stream: newer, highest: 7, resumeAt: 8 });
    assert.deepEqual(lost, []);
  } finally {
    await sql.end();
  }
});

// Found by the third review: a loss under an idle consumer was seen only at its next fact (hours
// away, perhaps), and a mark whose write's answer was lost was never acted on.
Deno.test("[kept position] an idle follower sees a loss, or a loss marked, within a second", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    const log = recordingLogger();
    const consumer = await follow(b, sql, [], { log });
    await publishTopics(b, [1, 2, 3, 4, 5, 6]);
    await eventually(async () => await keptResumeAt(sql) === 7, 10_000, "position kept past 6");
    const lostFrom = async () => (await sql`select lost_from from fact_positions`)[0].lost_from;

    // Commits lost: 5 and 6 with the position that covered them.
    await sql`delete from seen where n >= 5`;
    await sql`update fact_positions set highest = 4, resume_at = 5`;
    await eventually(async () => (await seen(sql)).length === 6, 10_000, "5 and 6 again");
    await eventually(async () => await lostFrom() === null, 10_000, "that loss made good");

    // A loss marked by a write whose answer never came back: 3 to 6 gone, the mark standing.
    await sql`delete from seen where n >= 3`;
    await sql`update fact_positions set lost_from = 3, lost_at = now()`;
    await eventually(async () => (await seen(sql)).length === 6, 10_000, "3 to 6 again");
    await eventually(async () => await lostFrom() === null, 10_000, "the mark made good");
    await consumer.stop();
    const losses = log.lines.filter((l) => l.message.startsWith("the database lost facts"));
    assert.deepEqual(losses.map((l) => l.fromSequence), [5, 3]);
  }));

// Found by the third review: an instance started beside one that held a fact for long (a slow
// handler, a transient failure retried in place) took the database for behind and replayed it.
Deno.test("[kept position] an instance started beside a running one holding a fact does not replay", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    let release!: () => void;
    const released = new Promise<void>((resolve) => release = resolve);
    const first: number[] = [];
    const running = await follow(b, sql, first, {
      batchSize: 1,
      pause: () => first.length === 2 ? released : Promise.resolve(),
    });
    await publishTopics(b, [1, 2, 3]);
    await eventually(async () => (await seen(sql)).length === 2, 10_000, "1 and 2, 3 held");

    const log = recordingLogger();
    const second = await follow(b, sql, [], { log });
    release();
    await eventually(async () => (await seen(sql)).length === 3, 10_000, "3 settled");
    await second.stop();
    await running.stop();
    assert.deepEqual(log.lines.map((l) => l.message), [], "nothing handed over again");
  }));

/** The names of the consumers on the test's fact stream. */
async function consumerNames(b: TestBus): Promise<string[]> {
  const jsm = await jetstreamManager(b.bus.nc);
  const names: string[] = [];
  for await (const info of jsm.consumers.list(facts.stream(b.prefix))) {
    // nats-server 2.9 lists a consumer being removed as null (the replay's, once done: this
    // helper failed so in one run of 2026-12-06).
    if (info) names.push(info.name);
  }
  return names.sort();
}

/** A logger that keeps what instance `who` said, in the order all of them said it. */
function taggedLogger(who: string, said: { who: string; message: string }[]): Logger {
  const keep = (message: string) => said.push({ who, message });
  return { debug: () => {}, info: keep, warn: keep, error: keep };
}

/**
 * Asserts that no instance began a catch-up while another's was running, and that `replays` began
 * in all if given (the others found the database caught up).
 */
function assertOneReplayAtATime(
  said: { who: string; message: string }[],
  { replays }: { replays?: number } = {},
): void {
  if (replays !== undefined) {
    const began = said.filter((l) => l.message.startsWith("the database is behind"));
    assert.equal(began.length, replays, "catch-ups begun");
  }
  let replaying: string | undefined;
  for (const { who, message } of said) {
    if (message.startsWith("the database is behind")) {
      assert.equal(replaying, undefined, `${who} replayed while ${replaying} did`);
      replaying = who;
    } else if (
      message === "caught up with the fact consumer" || message.startsWith("stopping handing") ||
      message.startsWith("stopped before catching up")
    ) replaying = undefined;
  }
}

/** Makes the database of `followed` topics lack those from `from` on, its position kept below. */
async function restoreBefore(sql: Sql, from: number): Promise<void> {
  await sql`delete from seen where n >= ${from}`;
  await sql`update fact_positions set highest = ${from - 1}, resume_at = ${from}`;
}

// Found by the second review of NATS users (2026-12-06): the catch-up replayed with a consumer the
// server named, which a NATS user limited to its own consumers may not make, and the service's
// start failed. It replays now under the durable's name; one left by an instance that died (the
// server removes it 30 s later) is made anew from this start, never pulled as it stands.
Deno.test("[kept position] a catch-up replays under the durable's name, a replay left behind made anew", () =>
  onFollowerDatabase(async (b, sql) => {
    const jsm = await jetstreamManager(b.bus.nc);
    await followed(b, sql, 5);
    await restoreBefore(sql, 3);
    // As an instance that died while replaying leaves it: delivered 1 and 2, unacknowledged.
    await jsm.consumers.add(facts.stream(b.prefix), {
      name: "follower-replay",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: 1,
      inactive_threshold: 30e9,
    });
    await (await jetstream(b.bus.nc).consumers.get(facts.stream(b.prefix), "follower-replay"))
      .fetch({ max_messages: 2, expires: 1_000 });

    const after: number[] = [];
    const log = recordingLogger();
    const consumer = await follow(b, sql, after, { log });
    await eventually(async () => (await seen(sql)).length === 5, 15_000, "3-5 handed over again");
    await eventually(
      () => log.lines.some((l) => l.message === "caught up with the fact consumer"),
      10_000,
      "caught up",
    );
    assert.deepEqual(await consumerNames(b), ["follower"], "the replay removed once done");
    await publishTopics(b, [6]);
    await eventually(() => after.includes(6), 10_000, "a new fact followed after the catch-up");
    await consumer.stop();
    assert.deepEqual(after, [3, 4, 5, 6], "from the kept position, in order");
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5, 6]);
  }));

// Found by a review of the named replay: two instances replaying at once shared its consumer, one
// took the facts the other held for settled and moved the kept position past them (facts lost for
// good). A claim in the database lets one replay at a time.
Deno.test("[kept position] a catch-up waits while another instance's claim on it stands", () =>
  onFollowerDatabase(async (b, sql) => {
    await followed(b, sql, 5);
    await restoreBefore(sql, 3);
    await sql`insert into fact_replays (consumer, claimant, until)
      values ('follower', 'another instance', now() + interval '1 hour')`;

    const after: number[] = [];
    const log = recordingLogger();
    const consumer = await follow(b, sql, after, { log });
    await eventually(
      () => log.lines.some((l) => l.message.startsWith("another instance is handing")),
      10_000,
      "waiting for the other instance",
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(after.length, 0, "nothing handed over while the other's claim stands");
    // Gone with its table (a database made anew from an older dump): made again, not waited on.
    await sql`drop table fact_replays`;
    await eventually(async () => (await seen(sql)).length === 5, 15_000, "3-5 handed over again");
    await consumer.stop();
    assert.deepEqual(after, [3, 4, 5]);
  }));

/**
 * A follower of topics 1-5 whose database is then restored to before 3, started again: its
 * catch-up has begun and its first fact handed over waits for `released`.
 */
async function catchingUpHeld(b: TestBus, sql: Sql, released: Promise<void>) {
  await followed(b, sql, 5);
  await restoreBefore(sql, 3);
  const after: number[] = [];
  const log = recordingLogger();
  const consumer = await follow(b, sql, after, {
    log,
    batchSize: 1,
    pause: () => after.length === 0 ? released : Promise.resolve(),
  });
  try {
    await eventually(
      () => log.lines.some((l) => l.message.startsWith("the database is behind")),
      10_000,
      "the catch-up begun",
    );
  } catch (error) {
    await consumer.stop();
    throw error;
  }
  return { consumer, after, log };
}

Deno.test("[kept position] an instance whose claim on a catch-up is taken over stops replaying, and finishes it later", () =>
  onFollowerDatabase(async (b, sql) => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => release = resolve);
    const { consumer, after, log } = await catchingUpHeld(b, sql, released);
    // As another instance that took the claim over once this one's lapsed.
    await sql`update fact_replays set claimant = 'another instance', until = now() + interval '1 hour'`;
    await eventually(
      () => log.lines.some((l) => l.message.startsWith("stopping handing facts over again")),
      10_000,
      "the replay stopping",
    );
    release();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const handed = after.length;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(after.length, handed, "nothing handed over while the other's claim stands");
    await sql`delete from fact_replays`;
    await eventually(async () => (await seen(sql)).length === 5, 15_000, "3-5 handed over again");
    await consumer.stop();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5]);
  }));

Deno.test("[kept position] an instance whose claim cannot be renewed stops replaying before it lapses, and finishes later", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const sql = await openDatabase(db.url, { schema: SCHEMA, log: quiet });
  const locker = await openDatabase(db.url, { schema: SCHEMA, log: quiet, max: 1 });
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  let unlock = () => {};
  const unlocked = new Promise<void>((resolve) => unlock = resolve);
  let consumer: FactConsumer | undefined;
  try {
    const catchingUp = await catchingUpHeld(b, sql, released);
    ({ consumer } = catchingUp);
    const { log, after } = catchingUp;
    const stopping = () =>
      log.lines.some((l) => l.message.startsWith("stopping handing facts over again"));
    // Its database cannot answer the renewals (the claims' table locked, as by a slow or stalled
    // database): the instance gives up before the claim may lapse and another make the replay anew.
    const began = performance.now();
    assert.ok(!stopping(), "renewed while its database answers");
    const locked = locker.begin(async (tx) => {
      await tx`lock table fact_replays in access exclusive mode`;
      await unlocked;
    });
    locked.catch(() => {}); // awaited below; a failed lock then fails the test there
    await eventually(stopping, 12_000, "the replay stopping");
    const gaveUpMs = performance.now() - began;
    assert.ok(gaveUpMs < 9_000, `gave up ${Math.round(gaveUpMs)} ms after the renewals stopped`);
    unlock();
    await locked;
    release();
    await eventually(async () => (await seen(sql)).length === 5, 20_000, "3-5 handed over again");
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5]);
    // It pulled no more once stopped: the fact in hand (3), then the replay again from the mark.
    assert.deepEqual(after, [3, 3, 4, 5]);
  } finally {
    unlock();
    release();
    await consumer?.stop();
    await locker.end();
    await sql.end();
  }
});

Deno.test("[kept position] two running instances that see one loss hand it over again, one at a time", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    const said: { who: string; message: string }[] = [];
    const consumers = await Promise.all(
      // Each writes its position at every floor read, so both see the loss.
      ["a", "b"].map((who) =>
        follow(b, sql, [], { log: taggedLogger(who, said), floorReadMs: 200 })
      ),
    );
    await publishTopics(b, [1, 2, 3, 4, 5, 6]);
    await eventually(async () => (await seen(sql)).length === 6, 10_000, "1-6 followed");
    await eventually(
      async () => Number((await sql`select highest from fact_positions`)[0]?.highest) === 6,
      10_000,
      "6 kept",
    );
    // As a standby promoted without the commits that applied 5 and 6 and kept them.
    await sql`delete from seen where n >= 5`;
    await sql`update fact_positions set highest = 4, resume_at = 5`;

    await eventually(async () => (await seen(sql)).length === 6, 15_000, "5 and 6 again");
    await eventually(
      async () => (await sql`select lost_from from fact_positions`)[0]?.lost_from === null,
      15_000,
      "the loss made good",
    );
    await eventually(
      async () => (await consumerNames(b)).join() === "follower",
      15_000,
      "the replay removed once done",
    );
    await publishTopics(b, [7]);
    await eventually(async () => (await seen(sql)).length === 7, 10_000, "7 followed after");
    await Promise.all(consumers.map((consumer) => consumer.stop()));
    const lost = said.filter((l) => l.message.startsWith("the database lost facts"));
    assert.deepEqual(lost.map((l) => l.who).sort(), ["a", "b"], "each instance saw the loss");
    assert.ok(said.some((l) => l.message === "caught up with the fact consumer"), "caught up");
    assertOneReplayAtATime(said, { replays: 1 });
  }));

Deno.test("[kept position] two instances started together on a restored database replay one at a time", () =>
  onFollowerDatabase(async (b, sql) => {
    await followed(b, sql, 8);
    await restoreBefore(sql, 3);

    const said: { who: string; message: string }[] = [];
    // Both look at the database in the same moment and find it behind.
    const consumers = await Promise.all(
      ["a", "b"].map((who) => follow(b, sql, [], { log: taggedLogger(who, said), batchSize: 2 })),
    );
    await eventually(async () => (await seen(sql)).length === 8, 15_000, "3-8 handed over again");
    await eventually(
      async () => (await consumerNames(b)).join() === "follower",
      15_000,
      "the replay removed once done",
    );
    await publishTopics(b, [9, 10, 11, 12]);
    await eventually(async () => (await seen(sql)).length === 12, 15_000, "9-12 followed after");
    await Promise.all(consumers.map((consumer) => consumer.stop()));
    assertOneReplayAtATime(said, { replays: 1 });
  }));

// Found by a review of the claim: an instance started while a catch-up ran saw the kept position
// written meanwhile, took the database for caught up and followed the durable, moving the position
// past what the replay had yet to hand over; once the replayer stopped early, no start replayed
// the rest (6-8 lost for good). The catch-up now marks the database behind until it is done.
Deno.test("[kept position] an instance started during a catch-up waits for it, and finishes it if the replayer stops early", () =>
  onFollowerDatabase(async (b, sql) => {
    await followed(b, sql, 8);
    await restoreBefore(sql, 3);
    let release!: () => void;
    const released = new Promise<void>((resolve) => release = resolve);
    const first: number[] = [];
    const said: { who: string; message: string }[] = [];
    const replayer = await follow(b, sql, first, {
      log: taggedLogger("a", said),
      batchSize: 1,
      pause: () => first.length >= 2 ? released : Promise.resolve(),
    });
    await eventually(async () => (await seen(sql)).length === 4, 10_000, "3 and 4 again, 5 held");
    const started = await follow(b, sql, [], { log: taggedLogger("c", said) });
    await eventually(
      () => said.some((l) => l.who === "c" && l.message.startsWith("another instance is handing")),
      10_000,
      "the instance started meanwhile waits",
    );
    const stopped = replayer.stop();
    release();
    await stopped;
    await publishTopics(b, [9]);
    await eventually(async () => (await seen(sql)).length === 9, 20_000, "5-9 by the other");
    await started.stop();
    assert.deepEqual(await seen(sql), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assertOneReplayAtATime(said);
  }));

// Found by the third review: a start took a running instance's database for behind (its writes
// stalled: a fact held, no floor read) and marked it, and the running instance, finding a mark it
// had not acted on, logged a loss and stopped following until the catch-up was done.
Deno.test("[kept position] a catch-up's mark leaves running instances following, without a word", () =>
  onFollowerDatabase(async (b, sql) => {
    await followed(b, sql, 8);
    let release!: () => void;
    const released = new Promise<void>((resolve) => release = resolve);
    const said: { who: string; message: string }[] = [];
    const running: number[] = [];
    const first = await follow(b, sql, running, {
      log: taggedLogger("running", said),
      floorReadMs: 60_000,
      pause: () => running.length === 0 ? released : Promise.resolve(),
    });
    await publishTopics(b, [9]);
    const started = await follow(b, sql, [], { log: taggedLogger("started", said) });
    await eventually(
      () => said.some((l) => l.message.startsWith("the database is behind")),
      10_000,
      "the start takes it for behind",
    );
    release();
    await eventually(
      () => said.some((l) => l.message === "caught up with the fact consumer"),
      10_000,
      "caught up",
    );
    await publishTopics(b, [10, 11, 12]);
    await eventually(async () => (await seen(sql)).length === 12, 15_000, "10-12 followed");
    await started.stop();
    await first.stop();
    const runningSaid = said.filter((l) => l.who === "running").map((l) => l.message);
    assert.deepEqual(runningSaid, [], "the running instance went on without a word");
  }));

// Found by the fourth review: a database restored from a dump older than the column
// `lost_by_catch_up` failed every write of a running instance (at debug), so the loss went unseen.
Deno.test("[kept position] a running follower sees a loss restored from a dump older than a column", () =>
  onFollowerDatabase(async (b, sql) => {
    await sql`create table seen (n int primary key)`;
    const log = recordingLogger();
    const consumer = await follow(b, sql, [], { log, floorReadMs: 60_000 });
    await publishTopics(b, [1, 2, 3, 4, 5]);
    await eventually(
      async () => Number((await sql`select highest from fact_positions`)[0]?.highest) === 5,
      10_000,
      "5 kept",
    );
    // As such a dump restored: the table without the column, the commits that applied 4 and 5 gone.
    await sql`alter table fact_positions drop column lost_by_catch_up`;
    await sql`delete from seen where n >= 4`;
    await sql`update fact_positions set highest = 3`;
    await publishTopics(b, [6]);
    await eventually(async () => (await seen(sql)).length === 6, 10_000, "4 and 5 again");
    await consumer.stop();
    assert.ok(log.lines.some((l) => l.message.startsWith("the database lost facts")), "seen");
  }));

// Found by reading the last session's leftovers: a database made anew under a running instance
// (its table `fact_positions` gone, never made again by a running instance on purpose) failed
// every position write at debug only, so nobody learnt that a later restore could not catch up.
// A review then saw a first fix warn, and advise a restart, in every `pg_restore --clean` under a
// running instance, which heals by itself: only refusals that last are said.
Deno.test("[kept position] a running follower whose positions are refused for a while says so, once", async () => {
  await using db = await testDatabase();
  await using b = await factBus({ ensureStream: true });
  const sql = await openDatabase(db.url, { schema: SCHEMA, log: quiet });
  let consumer: FactConsumer | undefined;
  try {
    await sql`create table seen (n int primary key)`;
    const log = recordingLogger();
    consumer = await follow(b, sql, [], { log, sayRefusedAfterMs: 3_000 });
    await publishTopics(b, [1, 2]);
    await eventually(async () => (await seen(sql)).length === 2, 10_000, "1-2 followed");
    const failed = (level: string) =>
      log.lines.filter((l) =>
        l.level === level && l.message.startsWith("cannot keep the fact consumer's position")
      );
    const writtenAgain = async () => {
      const keptAt = async () => {
        const [row] = await sql`select kept_at from fact_positions`;
        assert.ok(row, "the position's row is there");
        return row.kept_at as Date;
      };
      const before = await keptAt();
      await eventually(async () => await keptAt() > before, 5_000, "written again");
    };
    // As `pg_restore --clean` leaves it while it loads every table's rows, for longer than the
    // threshold: the table without its key (42P10). It heals once the key is added: not said.
    await sql`alter table fact_positions drop constraint fact_positions_pkey`;
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await sql`alter table fact_positions add primary key (consumer)`;
    await writtenAgain();
    // A moment without the table (42P01), then a write: not said, and the clock starts again.
    await sql`alter table fact_positions rename to fact_positions_away`;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await sql`alter table fact_positions_away rename to fact_positions`;
    await writtenAgain();
    const codes = new Set(failed("debug").map((l) => l.code));
    assert.ok(codes.has("42P01") && codes.has("42P10"), `refused meanwhile: ${[...codes]}`);
    assert.equal(failed("warn").length, 0, "refusals that heal are not said");
    // Gone for good (a database made anew under it): said once it has lasted, timed from then.
    const dropped = performance.now();
    await sql`drop table fact_positions`;
    await eventually(() => failed("warn").length > 0, 8_000, "the refusal said");
    assert.ok(performance.now() - dropped >= 3_000, "said once refused that long");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const said = failed("warn");
    assert.equal(said.length, 1, "said once per interval, not per write");
    assert.equal(said[0].consumer, "follower");
    assert.equal(said[0].code, "42P01");
  } finally {
    await consumer?.stop();
    await sql.end();
  }
});
