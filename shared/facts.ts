/**
 * Facts: what a service announces after each change, on JetStream, for the audit log and for
 * other services. Written through a transactional outbox: the fact is inserted in the same
 * transaction as the change (so a change never happens without its fact, nor a fact without its
 * change), then a relay publishes it with the fact id as JetStream message id (so a re-publish
 * after a crash is de-duplicated) and deletes it from the outbox.
 *
 * @example
 * ```ts
 * import { FactRelay, recordFact } from "@shared/facts.ts";
 * // inside sql.begin(async (tx) => { ...change...;
 * //   await recordFact(tx, { service: "catalog", type: "event-topic", verb: "created",
 * //     actor, resource: { type: "event-topic", id: "1" }, data: { name: "Tech" } });
 * // });
 * // after commit: relay.kick();
 * ```
 */
import { z } from "zod";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/nats-core";
import type { Bus } from "./bus.ts";
import { migrate, type Sql } from "./db.ts";
import { isRegisteredFact } from "./fact_catalog.ts";
import { facts } from "./subjects.ts";
import type { Logger } from "./log.ts";

export const factActorSchema = z.object({ id: z.string(), email: z.string() }).nullable();
export type FactActor = z.infer<typeof factActorSchema>;

/** Every fact on the bus has this shape; `data` is the resource after the change. */
export const factSchema = z.object({
  id: z.uuid(),
  subject: z.string(),
  service: z.string(),
  type: z.string(),
  verb: z.string(),
  occurredAt: z.iso.datetime({ offset: true }),
  actor: factActorSchema,
  resource: z.object({ type: z.string(), id: z.string() }),
  data: z.record(z.string(), z.unknown()).nullable(),
});
export type Fact = z.infer<typeof factSchema>;

export interface NewFact {
  service: string;
  type: string;
  verb: string;
  actor: FactActor;
  resource: { type: string; id: string };
  data: Record<string, unknown> | null;
}

// deno-lint-ignore no-explicit-any
type Tx = Sql | any;

/**
 * Creates the outbox table in the service's schema (idempotent). Instances starting together
 * may race on it: the loser sees "already exists" (42P07) or a catalog unique violation (23505).
 */
export async function installOutbox(sql: Sql): Promise<void> {
  await sql`create table if not exists outbox (
    seq bigserial primary key,
    id uuid not null unique,
    subject text not null,
    payload jsonb not null
  )`.catch((error) => {
    if (!["42P07", "23505"].includes(error?.code)) throw error;
  });
}

/**
 * Inserts a fact into the outbox; call it inside the transaction that makes the change. A fact
 * missing from shared/fact_catalog.ts is refused (the transaction, and so the change, fails):
 * what is published is always what the AsyncAPI document names.
 */
export async function recordFact(tx: Tx, fact: NewFact): Promise<Fact> {
  const subject = facts.subject(fact.service, fact.type, fact.verb);
  if (!isRegisteredFact(fact.service, fact.type, fact.verb)) {
    throw new Error(`Cannot record fact: ${subject} is not in shared/fact_catalog.ts`);
  }
  const full: Fact = {
    id: crypto.randomUUID(),
    subject,
    occurredAt: new Date().toISOString(),
    ...fact,
    data: fact.data ? JSON.parse(JSON.stringify(fact.data)) : null,
  };
  await tx`insert into outbox (id, subject, payload)
    values (${full.id}, ${full.subject}, ${tx.json(full)})`;
  return full;
}

/** Creates (or updates) the stream that keeps every fact of this bus prefix. */
export async function ensureFactStream(bus: Bus): Promise<string> {
  const name = facts.stream(bus.prefix);
  await ensureStream(bus, {
    name,
    subjects: [bus.subject(facts.all)],
    num_replicas: bus.factsReplicas,
    // An audit trail: keep a year, de-duplicate re-publishes for ten minutes.
    max_age: 365 * 24 * 3600 * 1e9,
    duplicate_window: 10 * 60 * 1e9,
  });
  return name;
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
 * together may race; the loser finds the stream made.
 */
export async function ensureStream(bus: Bus, wanted: ManagedStream): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  const info = await jsm.streams.info(wanted.name).catch((error) => {
    if (isStreamNotFound(error)) return null;
    throw error;
  });
  if (!info) {
    await jsm.streams.add(wanted).catch(async (error) => {
      if (!(await jsm.streams.info(wanted.name).catch(() => null))) throw error;
    });
  } else if (differs(info.config as unknown as Record<string, unknown>, wanted)) {
    await jsm.streams.update(wanted.name, wanted);
  }
}

/** Removes this prefix's fact stream and parked stream (tests clean up with it). */
export async function deleteFactStream(bus: Bus): Promise<void> {
  const jsm = await jetstreamManager(bus.nc);
  await jsm.streams.delete(facts.stream(bus.prefix)).catch(() => {});
  await jsm.streams.delete(facts.parkedStream(bus.prefix)).catch(() => {});
}

/** Publishes what the outbox holds, oldest first; safe with several instances running. */
export class FactRelay {
  readonly #sql: Sql;
  readonly #bus: Bus;
  readonly #log: Logger;
  #running: Promise<void> | undefined;
  #again = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The cause last logged, so a long outage logs once, not at every retry. */
  #failing: string | undefined;

  constructor(sql: Sql, bus: Bus, log: Logger) {
    this.#sql = sql;
    this.#bus = bus;
    this.#log = log;
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

  /** Also retries on a timer, for facts left behind by a crash or an unreachable NATS. */
  start(intervalMs = 1000): void {
    this.#timer = setInterval(() => this.kick(), intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch((error) => this.#log.warn("facts not yet published", { error }));
  }

  async #drain(): Promise<void> {
    const js = jetstream(this.#bus.nc);
    try {
      for (;;) {
        const sent = await this.#sql.begin(async (tx) => {
          const rows = await tx`select seq, id, subject, payload from outbox
            order by seq limit 200 for update skip locked`;
          await Promise.all(
            rows.map((row) =>
              js.publish(this.#bus.subject(row.subject), JSON.stringify(row.payload), {
                msgID: row.id,
              })
            ),
          );
          if (rows.length) await tx`delete from outbox where seq in ${tx(rows.map((r) => r.seq))}`;
          return rows.length;
        });
        if (sent < 200) break;
      }
      if (this.#failing !== undefined) this.#log.info("publishing facts again");
      this.#failing = undefined;
    } catch (error) {
      await this.#reportFailure(error);
    }
  }

  async #reportFailure(error: unknown): Promise<void> {
    const cause = await publishFailureCause(this.#bus, error).catch(() => "unknown");
    if (cause === this.#failing) return;
    this.#failing = cause;
    this.#log.warn(`cannot publish facts yet (${cause}); will retry`, { error });
  }
}

function inChain(error: unknown, found: (e: unknown) => boolean): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    if (found(e)) return true;
  }
  return false;
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
    if (isStreamNotFound(probe)) return `stream ${stream} does not exist`;
    if (probe instanceof JetStreamApiError) return `stream ${stream} unavailable: ${probe.message}`;
    return "JetStream does not answer: no JetStream leader (too few cluster nodes up) " +
      "or JetStream not enabled on the server";
  }
}

/**
 * Runs `change` in a transaction together with recording its fact, then asks the relay to
 * publish. `describe` turns the change's result into the fact (or null when nothing changed).
 */
export async function changeWithFact<T>(
  sql: Sql,
  relay: FactRelay,
  change: (tx: Tx) => Promise<T>,
  describe: (result: T) => NewFact | NewFact[] | null,
): Promise<T> {
  const result = await sql.begin(async (tx) => {
    const value = await change(tx);
    const described = describe(value);
    for (const fact of [described ?? []].flat()) await recordFact(tx, fact);
    return value;
  });
  relay.kick();
  return result as T;
}

/**
 * Applies a service's migrations and makes its outbox: every service that publishes facts
 * starts with this.
 */
export async function migrateWithOutbox(
  sql: Sql,
  options: { schema: string; dir: URL },
): Promise<string[]> {
  const applied = await migrate(sql, options);
  await installOutbox(sql);
  return applied;
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
