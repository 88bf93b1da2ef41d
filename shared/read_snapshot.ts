/**
 * Conditional writes made atomic. The gateway checks a write's `If-Match` by reading the target
 * as its caller would (gateway/middleware/write_preconditions.ts): the ETag is its hash of a
 * document that may merge several services' resources, so no one service can evaluate it. A
 * change committed between that read and the write went unnoticed (a lost update, the thing
 * `If-Match` is for). So the read also tells the database snapshot it was answered under
 * (`pg_current_snapshot()`, taken before the document is read), and the write carries it back:
 * in the write's transaction, a resource the write announces that some transaction the snapshot
 * did not see has changed since is a 412, and nothing is written.
 *
 * Which transaction last changed a resource: every transaction that announces facts upserts one
 * row per resource into `resource_changes` (its `xmin` is then that transaction's id), in
 * `changeWithFact`, the one place every change with facts commits. A change of anything a
 * resource shows (a discount code's tickets, kept in another table) announces the resource, so
 * it counts too. The check locks those rows (`for update`): a concurrent change of the same
 * resource has either committed by then, and is seen, or waits for this one.
 *
 * @example
 * ```ts
 * import { changedSince, parseSnapshot } from "@shared/read_snapshot.ts";
 * const snapshot = parseSnapshot("100:104:101,103");
 * changedSince(snapshot, 99n); // false: committed before the snapshot
 * changedSince(snapshot, 101n); // true: still running when it was taken
 * changedSince(snapshot, 104n); // true: began after it
 * ```
 */
import { ignoringCreateRace, type Queryable, type Sql } from "./db.ts";
import { FACT_COLLECTIONS } from "./fact_names.ts";
import { failedPrecondition } from "./errors.ts";
import type { Handler } from "./bus_endpoints.ts";
import { withScope } from "./deadline.ts";
import type { HttpReply, HttpRequest, UnchangedSince } from "./schemas/http.ts";

export interface Snapshot {
  /** Every transaction below it had ended when the snapshot was taken. */
  xmin: bigint;
  /** No transaction from it on had begun. */
  xmax: bigint;
  /** Transactions between the two that were still running. */
  running: Set<bigint>;
}

export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, running] = text.split(":");
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    running: new Set(running ? running.split(",").map(BigInt) : []),
  };
}

/** Whether transaction `xid` (64-bit) committed after `snapshot` was taken: it did not see it. */
export function changedSince(snapshot: Snapshot, xid: bigint): boolean {
  if (xid < snapshot.xmin) return false;
  return xid >= snapshot.xmax || snapshot.running.has(xid);
}

const WRAP = 1n << 32n;

/**
 * The 64-bit id of `xmin`, the 32-bit one a row shows, from the current transaction's 64-bit id:
 * the latest id with those low bits not after it. Ids below 3 are special (frozen, bootstrap):
 * older than anything. A row untouched for 2^32 transactions may be read as recent: a needless
 * 412, never a missed change.
 */
export function widenXid(xmin: bigint, current: bigint): bigint {
  if (xmin < 3n) return 0n;
  return current - (((current % WRAP) - xmin + WRAP) % WRAP);
}

/** Makes the table of which transaction last changed each resource (idempotent, at migration). */
export async function installResourceChanges(sql: Queryable): Promise<void> {
  await sql`create table if not exists resource_changes (
    type text not null,
    id text not null,
    primary key (type, id)
  )`.catch(ignoringCreateRace);
}

/** A resource a change announces, and whether it is gone for good. */
export interface ChangedResource {
  type: string;
  id: string;
  purged?: boolean;
}

/**
 * Records that this transaction changed `resources` (each once, in one order, so that two
 * transactions never wait on each other's rows the other way round); a purged one's row goes.
 */
export async function noteChanged(tx: Queryable, resources: ChangedResource[]): Promise<void> {
  const keys = [...new Map(resources.map((r) => [`${r.type} ${r.id}`, r])).values()]
    .sort((a, b) => a.type < b.type ? -1 : a.type > b.type ? 1 : a.id < b.id ? -1 : 1);
  const kept = keys.filter((r) => !r.purged);
  const gone = keys.filter((r) => r.purged);
  if (kept.length) {
    await tx`insert into resource_changes (type, id)
      select * from unnest(${kept.map((r) => r.type)}::text[], ${kept.map((r) => r.id)}::text[])
      on conflict (type, id) do update set type = excluded.type`;
  }
  if (gone.length) {
    await tx`delete from resource_changes where (type, id) in
      (select * from unnest(${gone.map((r) => r.type)}::text[], ${gone.map((r) => r.id)}::text[]))`;
  }
}

/**
 * The resources a conditional write is about: those of the type its path names
 * (`/v1/discount-codes/5/relationships/tickets`: the code), or all it announces when none is.
 */
export function targetsOf(path: string, resources: ChangedResource[]): ChangedResource[] {
  const collection = /^\/v1\/([a-z-]+)/.exec(path)?.[1];
  const type = Object.entries(FACT_COLLECTIONS).find(([, name]) => name === collection)?.[0];
  const targets = resources.filter((r) => r.type === type);
  return targets.length ? targets : resources;
}

/**
 * Refuses (412, naming `since.header`) a write when a resource it is about changed since the
 * snapshot of the read its preconditions held on. Locks their rows until the transaction ends.
 */
export async function refuseChangedSince(
  tx: Queryable,
  since: UnchangedSince,
  targets: ChangedResource[],
): Promise<void> {
  if (!targets.length) return;
  const rows = await tx<{ xmin: string; current: string }[]>`
    select xmin::text as xmin, pg_current_xact_id()::text as current
    from resource_changes
    where (type, id) in
      (select * from unnest(${targets.map((r) => r.type)}::text[], ${
    targets.map((r) => r.id)
  }::text[]))
    order by type, id for update`;
  const snapshot = parseSnapshot(since.snapshot);
  const changed = rows.some((row) =>
    changedSince(snapshot, widenXid(BigInt(row.xmin), BigInt(row.current)))
  );
  if (changed) throw failedPrecondition(since.header);
}

/**
 * The shared part of every HTTP route: a read the gateway makes to check a write's
 * preconditions (`snapshotAsked`) tells the snapshot it was answered under, taken before the
 * handler reads anything; a conditional write runs with what it carries in its request scope,
 * for `changeWithFact`.
 */
export function withReadSnapshots(
  sql: Sql,
  handler: Handler<HttpRequest, HttpReply>,
): Handler<HttpRequest, HttpReply> {
  return async (req, msg) => {
    if (req.unchangedSince) {
      const unchangedSince = { ...req.unchangedSince, path: req.path };
      return await withScope({ unchangedSince }, () => handler(req, msg));
    }
    if (!req.snapshotAsked) return await handler(req, msg);
    const [{ snapshot }] = await sql<{ snapshot: string }[]>`
      select pg_current_snapshot()::text as snapshot`;
    const reply = await handler(req, msg);
    return reply.status === 200 ? { ...reply, snapshot } : reply;
  };
}
