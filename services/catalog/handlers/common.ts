/**
 * What every catalog handler shares: the caller loaded fresh for each request, binding actions
 * to their contract keys, who sees drafts, and writing a change with its fact. Replies and the
 * access checks come from the handler kit (@shared/handlers/mod.ts).
 */
import type { Handler } from "@shared/bus_endpoints.ts";
import type { Handlers } from "@shared/contract.ts";
import { catalogContract } from "@shared/contracts/mod.ts";
import type { Queryable } from "@shared/db.ts";
import { changeWithFact, type NewFact, unchanged } from "@shared/facts.ts";
import { deletedReplyOf, isAdmin, notFound, translatingDbErrors } from "@shared/handlers/mod.ts";
import type { HttpReply, HttpRequest } from "@shared/schemas/http.ts";
import { type Caller, type CatalogContext, factActor, loadCaller } from "../context.ts";
import { catalogFact, catalogFactData, changedAttributes } from "../fact_payloads.ts";
import { lockRow, type Row } from "../store/common.ts";
import type { Viewer } from "../store/events.ts";

export interface Call {
  req: HttpRequest;
  caller: Caller | null;
}

/** One HTTP operation of the catalog, given the context and the call. */
export type Action = (ctx: CatalogContext, call: Call) => Promise<HttpReply>;

/** The handlers `bindOperations(catalogContract, ...)` takes, by contract key. */
export type CatalogHandlers = Handlers<typeof catalogContract.operations>;

/** Contract keys of the catalog's HTTP operations (`events.list`, ...). */
type HttpKey = {
  [K in keyof CatalogHandlers]: CatalogHandlers[K] extends Handler<HttpRequest, HttpReply> ? K
    : never;
}[keyof CatalogHandlers];

/**
 * An action that reads the caller itself, in the statement of its first read (a signed-in read
 * then costs one round trip to the database, not two); it must answer 401 for an unknown caller
 * before anything else, as `handle` does (`knownCaller`).
 */
export interface CallerReadingAction {
  readsCaller: (ctx: CatalogContext, req: HttpRequest) => Promise<HttpReply>;
}

/** Wraps an action so it receives the caller, loaded fresh from the database. */
function handle(
  ctx: CatalogContext,
  action: Action | CallerReadingAction,
): Handler<HttpRequest, HttpReply> {
  // Writes translate their database errors in the store; this catches bad values in reads.
  if (typeof action !== "function") {
    return translatingDbErrors((req) => action.readsCaller(ctx, req));
  }
  return translatingDbErrors(async (req) =>
    await action(ctx, { req, caller: await loadCaller(ctx.sql, req.actor) })
  );
}

/** Binds each action to its contract key (a key outside the contract does not compile). */
export function handleAll<K extends HttpKey>(
  ctx: CatalogContext,
  actions: Record<K, Action | CallerReadingAction>,
): Record<K, Handler<HttpRequest, HttpReply>> {
  const out = {} as Record<K, Handler<HttpRequest, HttpReply>>;
  for (const key of Object.keys(actions) as K[]) out[key] = handle(ctx, actions[key]);
  return out;
}

/**
 * Whether a PATCH restores a soft-deleted row (an event, a user, a topic or sub-topic): an admin
 * (who reaches it with `?get_trashed=true`) sending `deleted-at: null`, as the original's admin
 * "Restore" does. Anything else sent as `deleted-at` stays ignored (clients send back what they
 * read); before, a restore answered 200 and changed nothing.
 */
export function restores(
  caller: Caller | null,
  existing: { deleted_at: Date | null },
  attributes: Record<string, unknown>,
): boolean {
  return isAdmin(caller) && existing.deleted_at !== null &&
    Object.hasOwn(attributes, "deleted-at") && attributes["deleted-at"] === null;
}

export function viewer(caller: Caller | null): Viewer {
  return { id: caller?.id ?? null, admin: isAdmin(caller) };
}

/** The row an update changes: its table and id (see `commit`'s `update`). */
export interface UpdatedRow {
  table: string;
  id: string;
  /**
   * Whether the request found the row live (not in the trash): one a DELETE trashed while the
   * update waited for its lock is then a 404, as it would have been found, and is not changed
   * (it answered 200 and announced the change after the deletion). An admin's update of a row
   * reached in the trash passes false and goes on.
   */
  foundLive?: boolean;
}

/**
 * The row an update is about to change, read and locked (`for update`) in the update's own
 * transaction: what the change checks the merged state against, and what it compares its result
 * with. A row read before the transaction may be stale: with a concurrent PATCH committed in
 * between, a PATCH writing the old value back looked unchanged and announced nothing, so the API
 * and the last fact disagreed (reproduced by a review: 9 of 15 concurrent pairs on events).
 */
async function lockedRow(tx: Queryable, type: string, row: UpdatedRow): Promise<Row> {
  // Purged (or trashed, for a row found live) meanwhile by a concurrent request, which announced
  // it.
  const locked = await lockRow(tx, row.table, row.id) ?? notFound(type, row.id);
  if (row.foundLive && locked.deleted_at != null) notFound(type, row.id);
  return locked;
}

/** What an update altered of its row's public payload (its fact's `changed`); [] otherwise. */
function alteredBy(about: { type: string; verb: string }, before?: Row, after?: Row): string[] {
  if (about.verb !== "updated" || !before || !after) return [];
  return changedAttributes(about.type, before, after);
}

/**
 * Runs `change` in a transaction with its fact: `about.type` and `about.verb` name the fact, whose
 * data is the change's result, the row after the change (`about.row` when it returns none).
 * `about.actor` overrides the caller (a sign-up is made by the new user). An update names its row
 * (`about.update`): `change` gets it as it is now, locked, and an update that changed nothing of
 * it announces nothing.
 */
export async function commit<T>(
  ctx: CatalogContext,
  call: Call,
  about: {
    type: string;
    verb: string;
    row?: Row;
    actor?: (result: T) => Caller;
    update?: UpdatedRow;
    /** A deletion that leaves nothing behind (a purge, or a row with no trash). */
    purged?: boolean;
    /** Takes the locks the lock order puts before `update`'s row, as `commitWithCascade`'s. */
    lockFirst?: (tx: Queryable) => Promise<void>;
  },
  change: (tx: Queryable, current: Row | undefined) => Promise<T>,
): Promise<T> {
  const work = async (tx: Queryable) => {
    await about.lockFirst?.(tx);
    const before = about.update && await lockedRow(tx, about.type, about.update);
    const result = await change(tx, before);
    // Deleted meanwhile by a concurrent request, which announced it: 404, no second fact.
    if (about.verb === "deleted" && result === undefined) {
      notFound(about.type, String(about.row?.id));
    }
    return { result, before };
  };
  const { result } = await changeWithFact(ctx.sql, ctx.relay, work, ({ result, before }) => {
    if (before && unchanged(before, result)) return null;
    const data = (result as Row | undefined) ?? about.row ?? {};
    const actor = about.actor ? { ...call, caller: about.actor(result) } : call;
    const changed = alteredBy(about, before, result as Row | undefined);
    return { ...fact(actor, about.type, about.verb, data), purged: about.purged, changed };
  });
  return result;
}

/** A change a write makes beyond its own row (a topic's sub-topics, an event's tickets...). */
export interface Cascaded {
  type: string;
  verb: "updated" | "deleted";
  /** The row as it is now (deleted: as it was). */
  row: Row;
  /**
   * Announced after the row's own fact: a dependent brought back with it (a sub-topic restored
   * with its topic), which must not be seen live under a row still trashed. A dependent a
   * deletion or move changed comes first, so that none is seen pointing at a row already gone.
   */
  follows?: true;
  /** An update's altered names (its fact's `changed`). */
  changed?: string[];
}

/**
 * `rows` of `type`, each `verb` by a write of another row (`follows`: announced after it;
 * `changed`: what the write altered of each, the same for all).
 */
export function cascade(
  type: string,
  verb: Cascaded["verb"],
  rows: readonly Row[],
  options: { follows?: true; changed?: string[] } = {},
): Cascaded[] {
  return rows.map((row) => ({ type, verb, row, ...options }));
}

/** Events a write unlinked from a topic or sub-topic, each naming the links it lost. */
export function cascadeUnlinked(events: readonly { before: Row; row: Row }[]): Cascaded[] {
  return events.map(({ before, row }) => ({
    type: "event",
    verb: "updated",
    row,
    changed: changedAttributes("event", before, row),
  }));
}

/** What a write changed beyond its own row, as the gateways' caches read it (`HttpReply`). */
export type CascadedRecords = NonNullable<HttpReply["cascaded"]>;

/**
 * A change of a row that also changes others (a topic deleted with its sub-topics, the events
 * unlinked from it, a sub-topic moved away from its events' topic): `change` returns the row as
 * it ended (undefined: gone meanwhile, 404) and the rows it changed beyond it; each gets its fact,
 * dependents first (those marked `follows` after the row's), in the transaction, so that
 * subscribers learn of every change and the caches drop every page showing one. An update that
 * changed nothing of the row announces only the rest.
 */
export async function commitWithCascade(
  ctx: CatalogContext,
  call: Call,
  about: {
    type: string;
    verb: "created" | Cascaded["verb"];
    /** The row changed or deleted (none for a create). */
    row?: Row;
    /** An update's row, locked and read again in the transaction, as in `commit`. */
    update?: UpdatedRow;
    /** Whether what it deletes is gone for good (a purge): its facts say `purged`. */
    purged?: boolean;
    /**
     * Takes the locks the change needs on rows the lock order puts before its own (a
     * sub-topic's topic: a topic's writes lock it, then its sub-topics), before `update`'s.
     */
    lockFirst?: (tx: Queryable) => Promise<void>;
  },
  change: (tx: Queryable) => Promise<{ row?: Row; cascaded: Cascaded[] }>,
): Promise<{ row: Row; cascaded: CascadedRecords }> {
  const checked = async (tx: Queryable) => {
    await about.lockFirst?.(tx);
    const before = about.update && await lockedRow(tx, about.type, about.update);
    const result = await change(tx);
    // Deleted meanwhile by a concurrent request, which announced it: 404, no second fact.
    if (result.row === undefined) notFound(about.type, String(about.row?.id));
    return { ...result, before } as { row: Row; cascaded: Cascaded[]; before?: Row };
  };
  const announce = (type: string, verb: string, row: Row, changed: string[] = []) => ({
    ...fact(call, type, verb, row),
    purged: about.purged === true && verb === "deleted",
    changed,
  });
  const announceAll = (list: Cascaded[]) =>
    list.map((c) => announce(c.type, c.verb, c.row, c.changed));
  const { row, cascaded } = await changeWithFact(ctx.sql, ctx.relay, checked, (result) => [
    ...announceAll(result.cascaded.filter((c) => !c.follows)),
    ...(result.before && unchanged(result.before, result.row) ? [] : [
      announce(about.type, about.verb, result.row, alteredBy(about, result.before, result.row)),
    ]),
    ...announceAll(result.cascaded.filter((c) => c.follows)),
  ]);
  const records = cascaded.map((c) => ({ type: c.type, record: publicRecord(c.type, c.row) }));
  return { row, cascaded: records };
}

/**
 * A delete that does itself what the schema's cascades would do silently (a purge:
 * `about.purged`, and its facts say so), or what a soft delete owes its dependents (a topic's
 * events unlinked): `change` deletes or unlinks the dependents and the row, and returns them,
 * each announced (`commitWithCascade`). The reply's `cascaded` lets the gateway that relayed the
 * write drop them at once (`deleted` names the row).
 */
export async function deleteWithFacts(
  ctx: CatalogContext,
  call: Call,
  about: { type: string; row: Row; purged: boolean },
  change: (tx: Queryable) => Promise<{ row?: Row; cascaded: Cascaded[] }>,
): Promise<HttpReply> {
  const { cascaded } = await commitWithCascade(ctx, call, { ...about, verb: "deleted" }, change);
  return { ...deletedReplyOf(about.type, publicRecord(about.type, about.row)), cascaded };
}

/** A row's public payload, as caches' tags read it (its id and what else addresses it). */
export function publicRecord(type: string, row: Row): { id: string } & Record<string, unknown> {
  return { ...catalogFactData(type, row), id: String(row.id) };
}

/** The fact a change announces: the resource's public payload (fact_payloads.ts). */
export function fact(call: Call, type: string, verb: string, row: Row): NewFact {
  return catalogFact(factActor(call.caller), type, verb, row);
}
