/**
 * Facts: what a service announces after each change, on JetStream, for the audit log and for
 * other services. A fact is a CloudEvents 1.0 event in structured JSON mode (see the README,
 * "Facts on the bus"): `type` names it (`catalog.event.updated`, registered in
 * shared/fact_catalog.ts), `source` is the publishing service, `subject` the resource's path,
 * `data` its public payload (validated against the registry's schema), and the acting user
 * travels in the extension attributes `actorid` and `actoremail` (absent for system changes). A
 * `deleted` fact whose row is gone for good (a purge, or a resource that has no trash) carries the
 * extension attribute `purged: true`; a soft delete, which an admin may undo, does not. An
 * `updated` fact may name the public attributes its change altered (`changed`, comma-separated).
 *
 * Written through a transactional outbox: the fact is inserted in the same transaction as the
 * change (so a change never happens without its fact, nor a fact without its change), then a
 * relay publishes it with the fact id as JetStream message id (so a re-publish after a crash is
 * de-duplicated) and deletes it from the outbox. A change whose fact NATS could not carry (over
 * its max_payload) fails with 413; one already recorded (max_payload lowered since) is moved to
 * `outbox_oversized` with an error line, so that it does not hold up the facts behind it.
 *
 * @example
 * ```ts
 * import { FactRelay, recordFact } from "@shared/facts.ts";
 * // inside sql.begin(async (tx) => { ...change...;
 * //   await recordFact(tx, { type: "catalog.event-topic.created", actor, data: topicData(row) });
 * // });
 * // after commit: relay.kick();
 * ```
 */
import { z } from "zod";
import { headers } from "@nats-io/nats-core";
import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type StreamInfo,
} from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import {
  companionClient,
  metricsClient,
  migrate,
  noteDatabaseError,
  type Queryable,
  type Sql,
  transaction,
  type TransactionHooks,
  type Tx,
} from "./db.ts";
import { PayloadTooLargeError } from "./errors.ts";
import { installIdempotency } from "./idempotency.ts";
import { type FactData, FACTS, type FactType, isFactType } from "./fact_catalog.ts";
import { factSubject, parseFactType } from "./fact_names.ts";
import { facts } from "./subjects.ts";
import type { Logger } from "./log.ts";
import { metrics } from "./metrics.ts";
import { currentCarrier, tracing } from "./telemetry.ts";
import { type OutboxEntry, tracePublish } from "./fact_telemetry.ts";

export const factActorSchema = z.object({ id: z.string(), email: z.string() }).nullable();
export type FactActor = z.infer<typeof factActorSchema>;

/** The CloudEvents media type of a structured-mode message (sent as its `content-type`). */
export const CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8";

/**
 * The envelope every fact has (CloudEvents 1.0, structured JSON); `data` is checked per type
 * against the registry. Extension attribute names are lowercase alphanumerics, as the spec asks.
 */
export const factEnvelopeSchema = z.object({
  specversion: z.literal("1.0"),
  id: z.string().min(1).meta({ description: "Unique per fact; also the JetStream message id." }),
  source: z.string().min(1).meta({ description: "The publishing service, e.g. `catalog`." }),
  type: z.string().min(1).meta({ description: "`<service>.<resource type>.<verb>`." }),
  subject: z.string().min(1).meta({ description: "The resource's path, e.g. `/v1/events/5`." }),
  time: z.iso.datetime({ offset: true }).meta({ description: "When the change was made." }),
  datacontenttype: z.literal("application/json"),
  data: z.unknown(),
  actorid: z.string().optional().meta({ description: "Id of the user who made the change." }),
  actoremail: z.string().optional().meta({ description: "Email of that user." }),
  purged: z.literal(true).optional().meta({
    description: "On a `deleted` fact: the row is gone for good (purged, or a resource without " +
      "trash) and cannot come back. Absent on a soft delete, which an admin may undo.",
  }),
  changed: z.string().optional().meta({
    description: "On an `updated` fact: the attributes and relationships of `data` the change " +
      "altered, comma-separated (`first-name,is-admin`). Absent when not said (discounts and " +
      "payments say it nowhere yet, the catalog not for a row changed alongside another, facts " +
      "published before it was added) or when nothing public changed (a password). Added " +
      "without a new version.",
  }),
});
type Envelope = Omit<z.output<typeof factEnvelopeSchema>, "type" | "data">;

/** A fact of one registered type (by default any), with its typed `data`. */
export type Fact<K extends FactType = FactType> = {
  [P in K]: Envelope & { type: P; data: FactData<P> };
}[K];

/** What a change announces; `recordFact` adds the envelope. */
export interface NewFact<K extends FactType = FactType> {
  type: K;
  actor: FactActor;
  /** The public payload (a service maps its row in its fact_payloads.ts). */
  data: Record<string, unknown>;
  /** A deletion that leaves nothing behind (see `purged` in the envelope). */
  purged?: boolean;
  /** An update's altered names of `data` (see `changed` in the envelope). */
  changed?: readonly string[];
}

/**
 * Creates the outbox table in the service's schema (idempotent). Instances starting together
 * may race on it: the loser sees "already exists" (42P07) or a catalog unique violation (23505).
 */
export async function installOutbox(sql: Queryable): Promise<void> {
  const raced = (error: { code?: string }) => {
    if (!["42P07", "42701", "23505"].includes(error?.code ?? "")) throw error;
  };
  await sql`create table if not exists outbox (
    seq bigserial primary key,
    id uuid not null unique,
    subject text not null,
    payload jsonb not null
  )`.catch(raced);
  // Added later (every service gets them here, at its next start): the trace context of the
  // request that recorded the fact (shared/fact_telemetry.ts), and when it was recorded (the
  // age of the oldest unpublished fact is a metric). Checked first, so a start where they exist
  // takes no table lock while other instances write.
  const columns = new Set(
    (await sql`select column_name from information_schema.columns
      where table_schema = current_schema() and table_name = 'outbox'`).map((r) => r.column_name),
  );
  if (!columns.has("trace_context")) {
    await sql`alter table outbox add column if not exists trace_context jsonb`.catch(raced);
  }
  if (!columns.has("recorded_at")) {
    await sql`alter table outbox
      add column if not exists recorded_at timestamptz not null default now()`.catch(raced);
  }
  // Facts NATS cannot carry (larger than its max_payload), set aside by the relay (see
  // `FactRelay`) so that they do not hold up the facts behind them; kept for the operator.
  await sql`create table if not exists outbox_oversized (
    seq bigint primary key,
    id uuid not null unique,
    subject text not null,
    payload jsonb not null,
    trace_context jsonb,
    recorded_at timestamptz not null,
    bytes integer not null,
    set_aside_at timestamptz not null default now()
  )`.catch(raced);
}

/** A fact whose type is not registered, or whose data does not match its schema. */
export class FactContractError extends Error {}

/** The issues of a failed parse as "path: message" (never the values: they may be private). */
function issues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "data"}: ${issue.message}`)
    .join("; ");
}

/**
 * The CloudEvent for a new fact; throws `FactContractError` when the type is not in
 * shared/fact_catalog.ts or the data does not match its schema (extra keys are dropped: only
 * what the schema names is public).
 */
export function buildFact<K extends FactType>(fact: NewFact<K>, time = new Date()): Fact<K> {
  if (!isFactType(fact.type)) {
    throw new FactContractError(
      `Cannot record fact: ${fact.type} is not in shared/fact_catalog.ts`,
    );
  }
  const entry = FACTS[fact.type];
  // Dates become ISO strings, as they would on the wire.
  const parsed = entry.data.safeParse(JSON.parse(JSON.stringify(fact.data ?? null)));
  if (!parsed.success) {
    throw new FactContractError(
      `Cannot record fact ${fact.type}: its data does not match its schema (${
        issues(parsed.error)
      })`,
    );
  }
  const actor = fact.actor ? { actorid: fact.actor.id, actoremail: fact.actor.email } : {};
  return {
    specversion: "1.0",
    id: crypto.randomUUID(),
    source: parseFactType(fact.type)!.service,
    type: fact.type,
    subject: `/v1/${entry.collection}/${parsed.data.id}`,
    time: time.toISOString(),
    datacontenttype: "application/json",
    data: parsed.data,
    ...actor,
    ...(fact.purged ? { purged: true } : {}),
    ...changedOf(fact.changed, parsed.data as Record<string, unknown>),
  } as Fact<K>;
}

/**
 * An update's `changed`: only the names `data` carries (a service compares its whole resource,
 * which names more, such as a ticket's derived `max-order`), in the order of `data`'s schema.
 */
function changedOf(changed: readonly string[] = [], data: Record<string, unknown>) {
  const names = Object.keys(data).filter((name) => changed.includes(name));
  return names.length ? { changed: names.join(",") } : {};
}

/**
 * Inserts a fact into the outbox; call it inside the transaction that makes the change. A fact
 * that does not keep the contract (see `buildFact`) is refused: the transaction, and so the
 * change, fails.
 */
export async function recordFact<K extends FactType>(
  tx: Queryable,
  fact: NewFact<K>,
): Promise<Fact<K>> {
  const full = buildFact(fact);
  await insertFact(tx, full);
  return full;
}

/** The outbox insert of a built fact (a postgres.js query: sent once awaited). */
function insertFact<K extends FactType>(tx: Queryable, full: Fact<K>) {
  if (!tracing) {
    return tx`insert into outbox (id, subject, payload)
      values (${full.id}, ${factSubject(full.type)}, ${tx.json(full)})`;
  }
  // The request's trace goes on where the fact is published (shared/fact_telemetry.ts).
  const carrier = currentCarrier();
  return tx`insert into outbox (id, subject, payload, trace_context)
    values (${full.id}, ${factSubject(full.type)}, ${tx.json(full)},
      ${carrier ? tx.json(carrier) : null})`;
}

/**
 * A received fact, checked: the envelope, a registered type, data matching its schema. Returns
 * why not otherwise (the consumer parks such messages).
 */
export function parseFact(
  raw: unknown,
  options: { unknownTypes?: boolean } = {},
): { fact: Fact } | { reason: string; unknownType?: string } {
  const envelope = factEnvelopeSchema.safeParse(raw);
  if (!envelope.success) return { reason: "not a CloudEvents fact" };
  const { type } = envelope.data;
  if (!isFactType(type)) {
    if (options.unknownTypes) return unknownFact(envelope.data);
    const reason = `unknown fact type ${type}`;
    // A well-formed name: a fact a producer newer than this process publishes (consumers skip it).
    return parseFactType(type) ? { reason, unknownType: type } : { reason };
  }
  const data = FACTS[type].data.safeParse(envelope.data.data);
  if (!data.success) {
    return { reason: `data does not match the schema of ${type} (${issues(data.error)})` };
  }
  return { fact: { ...envelope.data, type, data: data.data } as Fact };
}

/**
 * A well-formed fact of a type this process does not know (a producer deployed before it). Its
 * data cannot be checked, so only what can be read safely is kept: the resource's `id` and, when
 * it is a string, the `event` it belongs to (anything else might be any JSON a handler would
 * trip on). Typed as a known fact for handlers that read only what every fact has (the type's
 * parts, the id, the actor, the time).
 */
function unknownFact(envelope: z.output<typeof factEnvelopeSchema>): { fact: Fact } | {
  reason: string;
} {
  const data = envelope.data as { id?: unknown; event?: unknown } | null;
  if (!parseFactType(envelope.type) || typeof data?.id !== "string" || !data.id) {
    return { reason: `unknown fact type ${envelope.type}, without a resource id` };
  }
  const kept = typeof data.event === "string"
    ? { id: data.id, event: data.event }
    : { id: data.id };
  return { fact: { ...envelope, data: kept } as unknown as Fact };
}

/** The acting user of a fact, or null for system changes. */
export function factActor(fact: { actorid?: string; actoremail?: string }): FactActor {
  return fact.actorid === undefined ? null : { id: fact.actorid, email: fact.actoremail ?? "" };
}

/** The names of `data` an update altered (its `changed`), empty when it does not say. */
export function factChanged(fact: { changed?: string }): string[] {
  return fact.changed ? fact.changed.split(",") : [];
}

/** The fact's resource: its type (from the fact type) and id (from its data). */
export function factResource(fact: Fact): { type: string; id: string } {
  return { type: parseFactType(fact.type)!.resource, id: fact.data.id };
}

/** Creates (or updates) the stream that keeps every fact of this bus prefix; returns its name. */
export async function ensureFactStream(bus: Bus): Promise<string> {
  return (await openFactStream(bus)).config.name;
}

/**
 * Creates (or updates) the fact stream and returns its info as the server answered the change.
 * Asked for again right away, a cluster may answer "stream not found": a member that has not made
 * the stream yet (or a meta leader behind on the change) answers for it while the stream has no
 * leader, and the first answer wins (a consumer start failed so once on a loaded CI).
 */
export async function openFactStream(bus: Bus): Promise<StreamInfo> {
  return await ensureStream(bus, {
    name: facts.stream(bus.prefix),
    subjects: [bus.subject(facts.all)],
    num_replicas: bus.factsReplicas,
    // An audit trail: keep a year, de-duplicate re-publishes for ten minutes.
    max_age: 365 * 24 * 3600 * 1e9,
    duplicate_window: 10 * 60 * 1e9,
  });
}

/** The stream settings we manage; everything else keeps the server's defaults. */
export interface ManagedStream {
  name: string;
  subjects: string[];
  num_replicas: number;
  max_age?: number;
  duplicate_window?: number;
}

function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

function differs(current: Record<string, unknown>, wanted: ManagedStream): boolean {
  return Object.entries(wanted).some(([key, value]) =>
    JSON.stringify(current[key]) !== JSON.stringify(value)
  );
}

/**
 * Creates a stream, or brings an existing one to `wanted` (replicas included: raising
 * FACTS_REPLICAS on a running cluster scales the stream at the next start). Instances starting
 * together may race; the loser finds the stream made. Returns the stream's info from the
 * server's answer to the change (see `openFactStream` for why not from another request).
 */
export async function ensureStream(bus: Bus, wanted: ManagedStream): Promise<StreamInfo> {
  // A cluster that is forming or electing answers late or not at all for a few seconds (an R3
  // stream needs a quorum): retry for a while instead of failing the process's start-up.
  const giveUpAt = Date.now() + ENSURE_STREAM_PATIENCE_MS;
  for (let pause = 100;; pause = Math.min(pause * 2, 1000)) {
    try {
      return await ensureStreamOnce(bus, wanted);
    } catch (error) {
      if (error instanceof StreamNameTakenError || Date.now() + pause > giveUpAt) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

const ENSURE_STREAM_PATIENCE_MS = 15_000;

/** Thrown when the stream of this prefix's name holds another prefix's subjects. */
export class StreamNameTakenError extends Error {}

/**
 * Refuses a stream of our name that holds other subjects: our subjects never change for a
 * prefix, so it is another prefix's whose name maps to the same one (`oe.eu` and `oe_eu`, `oe`
 * and `OE`). Taking it over (replacing its subjects) left that system's facts without a stream.
 */
function checkOwnStream(config: { subjects?: string[] }, wanted: ManagedStream, bus: Bus): void {
  const subjects = config.subjects ?? [];
  if (JSON.stringify(subjects) === JSON.stringify(wanted.subjects)) return;
  throw new StreamNameTakenError(
    `Cannot use stream ${wanted.name} for bus prefix "${bus.prefix}": it holds ` +
      `${subjects.join(", ") || "no subjects"}, another prefix's that maps to the same name; ` +
      "choose a BUS_PREFIX that differs in more than case and punctuation",
  );
}

async function ensureStreamOnce(bus: Bus, wanted: ManagedStream): Promise<StreamInfo> {
  const jsm = await jetstreamManager(bus.nc);
  const found = await jsm.streams.info(wanted.name).catch((error) => {
    if (isStreamNotFound(error)) return null;
    throw error;
  });
  // "Not found" may come from a member that has not made the stream yet (see openFactStream):
  // adding it then fails for other settings, and what is there is reconciled all the same (it was
  // left as found, a FACTS_REPLICAS raised at such a start applied only at the next one).
  const info = found ?? await jsm.streams.add(wanted).catch(async (error) => {
    const made = await jsm.streams.info(wanted.name).catch(() => null);
    if (!made) throw error;
    return made;
  });
  checkOwnStream(info.config, wanted, bus);
  if (!differs(info.config as unknown as Record<string, unknown>, wanted)) return info;
  return await jsm.streams.update(wanted.name, wanted);
}

/** Removes this prefix's fact stream and parked stream (tests clean up with it). */
export async function deleteFactStream(bus: Bus): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  await jsm.streams.delete(facts.stream(bus.prefix)).catch(() => {});
  await jsm.streams.delete(facts.parkedStream(bus.prefix)).catch(() => {});
}

/** Structured mode: the whole CloudEvent is the body, the header says so. */
function cloudEventHeaders() {
  const h = headers();
  h.set("content-type", CLOUDEVENTS_JSON);
  return h;
}

/** How long a drain waits for the rows another instance's drain holds (see `#drain`). */
const DRAIN_LOCK_WAIT = "2s";
/** How long a drain may hold its rows while Postgres hears nothing from it (see `#drain`). */
const DRAIN_HOLD_LIMIT = "15s";
/** How long stopping a relay waits for the facts recorded so far to be published. */
const STOP_FLUSH_MS = 2_000;
/** How long stopping a relay then lets its own connection finish what it runs (seconds). */
const STOP_END_SECONDS = 1;
/** Postgres' lock_not_available: another instance's drain holds the rows (see `#drain`). */
const LOCK_NOT_AVAILABLE = "55P03";
/**
 * How long a batch may go without an answer before the relay gives up on it and tries again on
 * another connection: past what a healthy batch can take (its lock wait, a statement timeout and a
 * publish timeout), and past DRAIN_HOLD_LIMIT, by when Postgres has released its rows. A host lost
 * without a word (no FIN, no RST) left the batch waiting until the kernel gave up on the
 * connection, over ten minutes, and the relay published nothing meanwhile (found by a review).
 */
const BATCH_GIVE_UP_MS = 20_000;

/**
 * How long a batch starts publishing facts (one after another: see `#publishInOrder`); the rest
 * wait for the next batch. With a publish's own timeout (5 s), well within DRAIN_HOLD_LIMIT.
 */
const PUBLISH_BUDGET_MS = 5_000;

/** What one batch of the relay did. */
interface DrainedBatch {
  more: boolean;
  setAside: OversizedFact[];
  /** What JetStream answered the fact it refused; those published before it are removed. */
  refused?: { error: unknown };
}

/** A batch that got no answer in time (see BATCH_GIVE_UP_MS). */
class BatchUnansweredError extends Error {}

/** `work`'s outcome, or a `BatchUnansweredError` once `ms` have passed without one. */
async function answeredWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new BatchUnansweredError(
          `Cannot publish facts: no answer within ${ms} ms (Postgres or NATS lost without a word)`,
        ),
      ), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many facts a drain takes at a time. */
const DRAIN_BATCH = 200;
/**
 * How many payload bytes (as Postgres prints them) a drain takes at most, the first fact always:
 * 200 facts near max_payload (events with descriptions of a megabyte, piled up while NATS was
 * away) were read, stringified and encoded at once, hundreds of MiB in one service's memory.
 */
const DRAIN_BYTES = 8 * 1024 * 1024;
/** Room for a fact's headers (content type, message id, trace context) within max_payload. */
const FACT_HEADER_ALLOWANCE = 1024;

/** An outbox row as the relay reads it. */
interface OutboxRow {
  seq: string;
  id: string;
  subject: string;
  payload: unknown;
  trace_context: unknown;
}

/**
 * Locks the oldest facts of the outbox (DRAIN_BATCH at most) and returns, in order, those whose
 * payloads with the ones before them take at most `maxBytes` (the first always, however large:
 * one alone is bounded by max_payload, or set aside); `more` when the outbox may hold more than
 * were returned. The facts locked and not returned stay for the next batch. One statement:
 * Postgres allows no window function beside `for update`, hence the CTEs.
 */
export async function takeOutboxBatch(
  tx: Queryable,
  maxBytes = DRAIN_BYTES,
): Promise<{ rows: OutboxRow[]; more: boolean }> {
  const found = await tx<(OutboxRow & { locked: number })[]>`
    with locked as (select seq from outbox order by seq limit ${DRAIN_BATCH} for update),
    sized as (
      select o.seq, sum(octet_length(o.payload::text)) over (order by o.seq) as upto,
        row_number() over (order by o.seq) as n
      from outbox o join locked l on l.seq = o.seq
    )
    select o.seq, o.id, o.subject, o.payload, o.trace_context,
      (select count(*) from locked)::int as locked
    from outbox o join sized s on s.seq = o.seq
    where s.n = 1 or s.upto <= ${maxBytes}
    order by o.seq`;
  const locked = found[0]?.locked ?? 0;
  const rows = found.map(({ locked: _, ...row }) => row);
  return { rows, more: locked === DRAIN_BATCH || rows.length < locked };
}

/** A fact NATS cannot carry: its body's size, and the most the bus takes. */
interface OversizedFact {
  row: OutboxRow;
  bytes: number;
  limit: number;
}

/**
 * The largest fact body the bus carries (its server's max_payload, less room for headers), or
 * undefined while no server has said (reconnecting): a guess, such as NATS's default, would
 * refuse or set aside facts that a server with a raised max_payload takes.
 */
function factBodyLimit(bus: Bus): number | undefined {
  const max = bus.nc.info?.max_payload;
  return max === undefined ? undefined : max - FACT_HEADER_ALLOWANCE;
}

const encoder = new TextEncoder();

/** Publishes what the outbox holds, oldest first; safe with several instances running. */
export class FactRelay {
  readonly #sql: Sql;
  readonly #bus: Bus;
  readonly #log: Logger;
  #running: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unwatch: (() => void) | undefined;
  /** The cause last logged, so a long outage logs once, not at every retry. */
  #failing: string | undefined;
  /** The relay's own connection (see `#connection`), made at the first batch. */
  #own: Sql | undefined;
  /** Set by `stop()`: a batch after it runs on the pool, with no own connection left to end. */
  #stopped = false;

  constructor(sql: Sql, bus: Bus, log: Logger) {
    this.#sql = sql;
    this.#bus = bus;
    this.#log = log;
  }

  /**
   * Returns the fact when NATS can carry it, throws `PayloadTooLargeError` (413) otherwise: a
   * change whose fact can never be published must not commit (subscribers would never learn
   * of it).
   */
  carried<K extends FactType>(fact: Fact<K>): Fact<K> {
    const limit = factBodyLimit(this.#bus);
    // Unknown while reconnecting: the relay sets such a fact aside if it does not fit.
    if (limit !== undefined && encoder.encode(JSON.stringify(fact)).length > limit) {
      throw new PayloadTooLargeError(
        `Cannot record fact ${fact.type}: it is larger than the bus carries (${limit} bytes)`,
      );
    }
    return fact;
  }

  /** Publishes soon, without waiting: the request path never waits on JetStream. */
  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Resolves when everything recorded so far has been published (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
    await this.#drain();
  }

  /**
   * Also retries on a timer, for facts left behind by a crash or an unreachable NATS; and
   * reports the backlog as metrics.
   */
  start(intervalMs = 1000): void {
    this.#timer = setInterval(() => this.kick(), intervalMs);
    this.#unwatch = watchOutbox(this.#sql);
  }

  /**
   * Stops the timer and publishes what is recorded, for at most `withinMs`: with JetStream
   * refusing facts, each drain waited out its publish timeout (5 s) and a SIGTERM took over 10 s,
   * past a container runtime's usual grace. What is not published stays in the outbox for the
   * next start (a fact published twice is de-duplicated by its id).
   */
  async stop(withinMs = STOP_FLUSH_MS): Promise<void> {
    clearInterval(this.#timer);
    this.#unwatch?.();
    this.#stopped = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => timer = setTimeout(resolve, withinMs, "late"));
    const flushed = this.flush().then(() => "flushed" as const, (error) => {
      this.#log.warn("facts not yet published; they stay in the outbox", { error });
      return "failed" as const;
    });
    const outcome = await Promise.race([flushed, late]);
    clearTimeout(timer);
    if (outcome === "late") {
      this.#log.warn("facts not yet published; they stay in the outbox", { withinMs });
    }
    // Bounded even after a flush: a batch kicked meanwhile may wait on the connection while
    // postgres.js reconnects it to a Postgres that is gone, for good (a catalog never exited
    // once `deno task start` and its own Postgres stopped together, 2026-12-05).
    await this.#dropConnection(outcome === "late" ? 0 : STOP_END_SECONDS);
  }

  /**
   * Where batches run: a connection of the relay's own, beside the service's pool, so that a
   * batch given up (a host lost without a word) can take its silent connection with it. Through
   * the pool, the given-up batch kept holding its connection and each next batch went to another
   * of the pool's connections, as silent, and waited out its own give-up: ten connections, over
   * three minutes without a fact published (CI saw two). The pool itself for a pool not opened
   * by `openDatabase`, and once stopped (a batch then has no own connection left to end it).
   */
  #connection(): Sql {
    if (this.#stopped && this.#own === undefined) return this.#sql;
    return this.#own ??= companionClient(this.#sql, "relay", { idleTimeout: 60 }) ?? this.#sql;
  }

  /** Ends the relay's own connection, if any: the next batch connects anew. */
  async #dropConnection(timeoutSeconds?: number): Promise<void> {
    const own = this.#own;
    this.#own = undefined;
    if (own === undefined || own === this.#sql) return;
    await own.end({ timeout: timeoutSeconds }).catch(() => {});
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const limit = factBodyLimit(this.#bus);
        if (limit === undefined) throw new Error("Cannot publish facts: not connected to NATS");
        const { more, setAside, refused } = await answeredWithin(
          this.#connection().begin((tx) => this.#drainBatch(tx, limit)),
          BATCH_GIVE_UP_MS,
        );
        // Logged once committed: a batch tried again (JetStream down) would log them again.
        for (const fact of setAside) this.#reportSetAside(fact);
        if (refused) throw refused.error;
        if (!more) break;
      }
      if (this.#failing !== undefined) this.#log.info("publishing facts again");
      this.#failing = undefined;
    } catch (error) {
      // Another instance is publishing these facts: no failure, the next kick or tick goes on.
      if ((error as { code?: unknown })?.code === LOCK_NOT_AVAILABLE) return;
      // An idle service learns of a lost Postgres here first (logged once, in db.ts).
      noteDatabaseError(this.#sql, error);
      // Not awaited: a silent connection's end would wait, and the next batch need not.
      if (error instanceof BatchUnansweredError) void this.#dropConnection(0);
      const cause = await this.#reportFailure(error);
      // The stream is gone (a lost JetStream store: NATS started again on an empty volume, or
      // removed by hand): made again as at start. Before, every fact recorded since stayed in
      // the outbox until the service was restarted (found by a review).
      if (cause === streamMissing(this.#bus)) {
        await ensureFactStream(this.#bus).catch((error) =>
          this.#log.warn("cannot make the fact stream again; will retry", { error })
        );
      }
    }
  }

  /**
   * Publishes the oldest facts of the outbox, one after another, and removes those published;
   * says whether more wait, which were set aside, and what JetStream refused, if it did.
   */
  async #drainBatch(tx: Tx, limit: number): Promise<DrainedBatch> {
    // Waits for rows another instance's relay holds (it is publishing them) instead of
    // skipping them: skipped, later facts went out first, and a resource's facts could
    // reach subscribers out of order when a service ran several instances. Bounded both
    // ways: this wait (a lock timeout: tried again at the next kick or tick), and how long a
    // drain may hold its rows without a word to Postgres (a frozen instance's drain is
    // ended, its rows released), longer than a publish waits for JetStream.
    await tx`select set_config('lock_timeout', ${DRAIN_LOCK_WAIT}, true),
      set_config('idle_in_transaction_session_timeout', ${DRAIN_HOLD_LIMIT}, true)`;
    const { rows, more } = await takeOutboxBatch(tx);
    const bodies = rows.map((row) => JSON.stringify(row.payload));
    const oversized = rows.map((row, i) => ({
      row,
      bytes: encoder.encode(bodies[i]).length,
      limit,
    }))
      .filter(({ bytes }) => bytes > limit);
    // Checked before any is published: the client refuses such a fact at every attempt, and
    // the facts published beside it went out ahead of it while its batch never left.
    await this.#setAside(tx, oversized);
    const skipped = new Set(oversized.map(({ row }) => row));
    const done = oversized.map(({ row }) => row);
    const refused = await this.#publishInOrder(rows, bodies, skipped, done);
    if (done.length) await tx`delete from outbox where seq in ${tx(done.map((r) => r.seq))}`;
    return { more: more || done.length < rows.length, setAside: oversized, refused };
  }

  /**
   * Publishes `rows` (but `skipped`) one after another, each once the one before it is stored,
   * adding each to `done`; stops at the first JetStream refuses (returned) or once PUBLISH_BUDGET_MS
   * have passed. Published all at once, a refused fact (a leader stepping down, a connection lost
   * with it on the wire) went out again after the ones behind it, which JetStream had taken: a
   * resource's facts reached subscribers out of order (until 2026-12-04, a review).
   */
  async #publishInOrder(
    rows: OutboxRow[],
    bodies: string[],
    skipped: Set<OutboxRow>,
    done: OutboxRow[],
  ): Promise<{ error: unknown } | undefined> {
    const js = jetstream(this.#bus.nc);
    const until = Date.now() + PUBLISH_BUDGET_MS;
    for (const [i, row] of rows.entries()) {
      if (skipped.has(row)) continue;
      if (Date.now() > until) return;
      const headers = cloudEventHeaders();
      const publish = () =>
        js.publish(this.#bus.subject(row.subject), bodies[i], { msgID: row.id, headers });
      try {
        await (tracing ? tracePublish(row as unknown as OutboxEntry, headers, publish) : publish());
      } catch (error) {
        return { error };
      }
      done.push(row);
    }
  }

  /**
   * Moves facts NATS cannot carry to `outbox_oversized`: they would hold up every fact behind
   * them for good. Once max_payload is raised, the operator moves them back into the outbox.
   */
  async #setAside(tx: Tx, oversized: OversizedFact[]): Promise<void> {
    for (const { row, bytes } of oversized) {
      await tx`insert into outbox_oversized
        (seq, id, subject, payload, trace_context, recorded_at, bytes)
        select seq, id, subject, payload, trace_context, recorded_at, ${bytes}
        from outbox where seq = ${row.seq}`;
    }
  }

  #reportSetAside({ row, bytes, limit }: OversizedFact): void {
    this.#log.error(
      "a fact is larger than NATS carries; set aside in outbox_oversized, the facts behind it go on",
      { id: row.id, subject: row.subject, bytes, limit },
    );
  }

  /** Logs why a drain failed (once per cause); returns the cause. */
  async #reportFailure(error: unknown): Promise<string> {
    const cause = await publishFailureCause(this.#bus, error).catch(() => "unknown");
    if (cause === this.#failing) return cause;
    this.#failing = cause;
    this.#log.warn(`cannot publish facts yet (${cause}); will retry`, { error });
    return cause;
  }
}

const backlog = metrics.gauge(
  "oe_outbox_backlog",
  "Facts recorded and not yet published to JetStream (the same table for every instance)",
);
const oldest = metrics.gauge(
  "oe_outbox_oldest_age_seconds",
  "Age of the oldest fact not yet published (0 when none waits)",
);
const setAside = metrics.gauge(
  "oe_outbox_set_aside",
  "Facts larger than NATS carries, set aside in outbox_oversized (subscribers miss them until " +
    "they are moved back)",
);

/** Reads the outbox's backlog before each metrics snapshot; returns how to stop. */
function watchOutbox(sql: Sql): () => void {
  // Made here, not at import: a process without an outbox (audit) shows no backlog at all.
  const [waiting, age, aside] = [backlog.series(), oldest.series(), setAside.series()];
  return metrics.collect("outbox", async () => {
    // Apart from the pool (db.ts): through it, the read waited behind the requests filling it.
    const [row] = await (metricsClient(sql) ?? sql)`select count(*)::int as waiting,
      coalesce(extract(epoch from now() - min(recorded_at)), 0)::float8 as age,
      (select count(*)::int from outbox_oversized) as aside from outbox`;
    waiting.set(row.waiting);
    age.set(row.age);
    aside.set(row.aside);
  });
}

function inChain(error: unknown, found: (e: unknown) => boolean): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    if (found(e)) return true;
  }
  return false;
}

/** `publishFailureCause` when the fact stream does not exist. */
function streamMissing(bus: Bus): string {
  return `stream ${facts.stream(bus.prefix)} does not exist`;
}

/**
 * Why JetStream did not take a fact, in words an operator can act on. nats.js calls every
 * unanswered publish "jetstream is not enabled", which is rarely the case: usually the stream
 * has no leader for a moment (its node went away) or too few of its replicas are up.
 */
export async function publishFailureCause(bus: Bus, error: unknown): Promise<string> {
  if (error instanceof JetStreamApiError) return `JetStream refused the fact: ${error.message}`;
  // nats.js names a publish nobody answered "JetStreamNotEnabled" (not exported as a class).
  const unanswered = inChain(error, (e) => (e as Error).name === "JetStreamNotEnabled") ||
    inChain(error, (e) => e instanceof natsErrors.NoRespondersError);
  const late = inChain(error, (e) => e instanceof natsErrors.TimeoutError);
  if (!unanswered && !late) return error instanceof Error ? error.message : String(error);
  const stream = facts.stream(bus.prefix);
  try {
    const jsm = await jetstreamManager(bus.nc, { timeout: 1000 });
    const info = await jsm.streams.info(stream);
    const replicas = info.config.num_replicas ?? 1;
    if (!info.cluster?.leader) {
      return `stream ${stream} has no leader (electing one, or too few of its ${replicas} ` +
        `replicas are up)`;
    }
    return `stream ${stream} (leader ${info.cluster.leader}) did not ${
      late ? "acknowledge in time" : "answer"
    }: its leader is moving or its node went away`;
  } catch (probe) {
    if (isStreamNotFound(probe)) return streamMissing(bus);
    if (probe instanceof JetStreamApiError) return `stream ${stream} unavailable: ${probe.message}`;
    return "JetStream does not answer: no JetStream leader (too few cluster nodes up) " +
      "or JetStream not enabled on the server";
  }
}

/**
 * Runs `change` in a transaction together with recording its fact, then asks the relay to
 * publish. `describe` turns the change's result into the fact (or null when nothing changed).
 *
 * The facts are built first (one that breaks its contract, or that NATS could not carry, fails
 * the change before any insert), and their inserts, sent together, are answered before the
 * COMMIT goes. Sending them with the COMMIT instead saved a round trip but was tried and dropped
 * (bench/FINDINGS.md, 2026-12-02): the deadline check before the commit no longer covered the
 * inserts (a 504 for a write committed later), and postgres.js retries some failed prepared
 * statements, which then ran after the COMMIT, alone (a fact for a change that never happened).
 *
 * `options.afterRollback` runs when the change does not commit (see `TransactionHooks`): with an
 * Idempotency-Key that may be after this has resolved, so undoing what `change` did outside the
 * database belongs there, not in a `catch`.
 */
export async function changeWithFact<T>(
  sql: Sql,
  relay: FactRelay,
  change: (tx: Tx) => Promise<T>,
  describe: (result: T) => NewFact | NewFact[] | null,
  options: Pick<TransactionHooks, "afterRollback"> = {},
): Promise<T> {
  // Bounded by the request's deadline and joined to its Idempotency-Key (see db.ts).
  return await transaction(sql, async (tx) => {
    const value = await change(tx);
    const facts = [describe(value) ?? []].flat().map((fact) => relay.carried(buildFact(fact)));
    await Promise.all(facts.map((fact) => insertFact(tx, fact)));
    return value;
  }, { afterCommit: () => relay.kick(), afterRollback: options.afterRollback });
}

/**
 * Applies a service's migrations and makes its outbox: every service that publishes facts
 * starts with this.
 */
export async function migrateWithOutbox(
  sql: Sql,
  options: { schema: string; dir: URL },
): Promise<string[]> {
  return await migrate(sql, {
    ...options,
    alsoInstall: async (tx) => {
      await installOutbox(tx);
      await installIdempotency(tx);
    },
  });
}

/** Makes sure the fact stream exists, then starts publishing the service's outbox. */
export async function startFactRelay(sql: Sql, bus: Bus, log: Logger): Promise<FactRelay> {
  await ensureFactStream(bus);
  const relay = new FactRelay(sql, bus, log);
  relay.start();
  // Facts a crash left behind go out now, not at the first tick.
  relay.kick();
  return relay;
}

/**
 * True when a row came out of an update exactly as it went in: such an update announces no fact
 * (clients send read-only attributes back unchanged; the audit log should not fill with them).
 */
export function unchanged(before: unknown, after: unknown): boolean {
  return before !== undefined && JSON.stringify(before) === JSON.stringify(after);
}
