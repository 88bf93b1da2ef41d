/**
 * An id a service announced on the bus is never handed out again, not even by a database restored
 * from a backup older than the service's last writes: other services' projections, audit's log
 * and clients took that id for one resource for good. At start, each table's id sequence is moved
 * past the id of the newest `created` fact of its type in the fact stream; on every other start
 * the sequence is already past it and nothing changes.
 *
 * Found by a backup-and-restore review (2026-12-06): a catalog restored from an older backup gave
 * the next sign-up the id of an account made after the backup, and the lost account's token (its
 * id and credentials version, 0 for every new account) signed in as the new one; the next event
 * took the id of a lost one, and with it that event's discount codes and Stripe account.
 *
 * @example
 * ```ts ignore
 * await keepIdsPastFacts(sql, bus, [{ table: "events", created: "catalog.event.created" }], log);
 * ```
 */
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { Bus } from "./bus.ts";
import type { Sql } from "./db.ts";
import type { FactType } from "./fact_catalog.ts";
import { factSubject } from "./fact_names.ts";
import { isClusterSettling, whileSettling } from "./fact_streams.ts";
import type { Logger } from "./log.ts";
import { isId } from "./schemas/ids.ts";
import { facts } from "./subjects.ts";

/** A table with a serial `id` whose rows a `created` fact announces, with that id as `data.id`. */
export interface AnnouncedIds {
  table: string;
  created: FactType;
}

/** Moves each table's id sequence past the newest id its `created` facts announced. */
export async function keepIdsPastFacts(
  sql: Sql,
  bus: Bus,
  tables: AnnouncedIds[],
  log: Logger,
): Promise<void> {
  const jsm = await jetstreamManager(await bus.jetStreamConnection());
  for (const { table, created } of tables) {
    const newest = await newestAnnouncedId(jsm, bus, created);
    if (newest === null || !await raiseIdSequence(sql, table, newest)) continue;
    log.warn("ids moved past the newest one the bus announced: was the database restored?", {
      table,
      id: newest,
    });
  }
}

/** The `data.id` of the newest fact of type `created` in the fact stream, if any. */
async function newestAnnouncedId(
  jsm: JetStreamManager,
  bus: Bus,
  created: FactType,
): Promise<string | null> {
  // Right after the stream is made in a cluster its leader may not answer yet (a timeout, "stream
  // not found"): asked again while the cluster settles, as a consumer's creation is.
  const message = await whileSettling(
    () =>
      jsm.streams.getMessage(facts.stream(bus.prefix), {
        last_by_subj: bus.subject(factSubject(created)),
      }),
    isClusterSettling,
  );
  const id = message?.json<{ data?: { id?: unknown } }>().data?.id;
  return typeof id === "string" && isId(id) ? id : null;
}

/**
 * Sets `table`'s id sequence to `id` where it is behind it (its next id is then the one after);
 * never moves it back. Whether it moved.
 */
async function raiseIdSequence(sql: Sql, table: string, id: string): Promise<boolean> {
  const moved = await sql`select setval(seq, ${id}::bigint)
    from (select pg_get_serial_sequence(${table}, 'id')::regclass as seq) s
    where coalesce(pg_sequence_last_value(seq), 0) < ${id}::bigint`;
  return moved.length > 0;
}
