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
 * de-duplicated) and deletes it from the outbox (shared/fact_relay.ts; the streams are
 * shared/fact_streams.ts). A change whose fact NATS could not carry (over its max_payload) fails
 * with 413; one already recorded (max_payload lowered since) is moved to `outbox_oversized` with
 * an error line, so that it does not hold up the facts behind it.
 *
 * @example
 * ```ts
 * import { recordFact } from "@shared/facts.ts";
 * import { FactRelay } from "@shared/fact_relay.ts";
 * // inside sql.begin(async (tx) => { ...change...;
 * //   await recordFact(tx, { type: "catalog.event-topic.created", actor, data: topicData(row) });
 * // });
 * // after commit: relay.kick();
 * ```
 */
import { z } from "zod";
import {
  ignoringCreateRace,
  migrate,
  type Queryable,
  type Sql,
  transaction,
  type TransactionHooks,
  type Tx,
} from "./db.ts";
import { installIdempotency } from "./idempotency.ts";
import { type FactData, FACTS, type FactType, isFactType } from "./fact_catalog.ts";
import { factSubject, parseFactType } from "./fact_names.ts";
import { currentCarrier, tracing } from "./telemetry.ts";
import type { FactRelay } from "./fact_relay.ts";
import { currentScope } from "./deadline.ts";
import {
  type ChangedResource,
  installResourceChanges,
  noteChanged,
  refuseChangedSince,
  targetsOf,
} from "./read_snapshot.ts";

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
      "trash) and cannot come back. Absent on a soft delete: the row is in the trash, from which " +
      "an admin may restore an event, a user, a topic or a sub-topic (a trashed ticket or " +
      "discount code stays there).",
  }),
  changed: z.string().optional().meta({
    description: "On an `updated` fact: the attributes and relationships of `data` the change " +
      "altered, comma-separated (`first-name,is-admin`), also for a row changed alongside " +
      "another (an event unlinked from a deleted topic: `event-topic`). Absent when nothing " +
      "public changed (a password; a Stripe account linked again with the same publishable key), " +
      "and on facts published before every update said it (the catalog's before 2026-12-04, and " +
      "its rows changed alongside another, the discounts' and the payments' before 2026-12-05): " +
      "compare those with the row's last fact. Added without a new version.",
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
 * Creates the outbox table in the service's schema, and `resource_changes` (idempotent).
 * Instances starting together may race on it (`ignoringCreateRace` says what the loser sees).
 */
export async function installOutbox(sql: Queryable): Promise<void> {
  await sql`create table if not exists outbox (
    seq bigserial primary key,
    id uuid not null unique,
    subject text not null,
    payload jsonb not null
  )`.catch(ignoringCreateRace);
  // Added later (every service gets them here, at its next start): the trace context of the
  // request that recorded the fact (shared/fact_telemetry.ts), and when it was recorded (the
  // age of the oldest unpublished fact is a metric). Checked first, so a start where they exist
  // takes no table lock while other instances write.
  const columns = new Set(
    (await sql`select column_name from information_schema.columns
      where table_schema = current_schema() and table_name = 'outbox'`).map((r) => r.column_name),
  );
  if (!columns.has("trace_context")) {
    await sql`alter table outbox add column if not exists trace_context jsonb`.catch(
      ignoringCreateRace,
    );
  }
  if (!columns.has("recorded_at")) {
    await sql`alter table outbox
      add column if not exists recorded_at timestamptz not null default now()`.catch(
      ignoringCreateRace,
    );
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
  )`.catch(ignoringCreateRace);
  // Which transaction last changed each resource a fact announced: conditional writes compare it
  // with the snapshot of the read they were checked on (shared/read_snapshot.ts).
  await installResourceChanges(sql);
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
  await Promise.all([insertFact(tx, full), noteChanged(tx, [changedResource(full as Fact)])]);
  return full;
}

/** The resource a fact announces, as `resource_changes` records it. */
function changedResource(fact: Fact): ChangedResource {
  return { ...factResource(fact), purged: fact.purged === true };
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
    // One change happens at one instant: its facts carry the same time (a subscriber may group
    // them by it; audit lists them under it, in the order they were recorded).
    const time = new Date();
    const facts = [describe(value) ?? []].flat().map((fact) =>
      relay.carried(buildFact(fact, time))
    );
    const resources = facts.map(changedResource);
    // A conditional write whose resource changed since the read it was checked on: 412.
    const since = currentScope()?.unchangedSince;
    if (since) await refuseChangedSince(tx, since, targetsOf(since.path, resources));
    await Promise.all([...facts.map((fact) => insertFact(tx, fact)), noteChanged(tx, resources)]);
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

/**
 * True when a row came out of an update exactly as it went in: such an update announces no fact
 * (clients send read-only attributes back unchanged; the audit log should not fill with them).
 */
export function unchanged(before: unknown, after: unknown): boolean {
  return before !== undefined && JSON.stringify(before) === JSON.stringify(after);
}
