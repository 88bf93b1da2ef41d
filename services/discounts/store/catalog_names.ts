/**
 * Locks that order a code's write against the handling of a catalog deletion of what the code
 * names (follow_catalog.ts). A write holds the locks of its event(s) and tickets shared, from its
 * live check with the catalog to its commit; the follower holds the deleted event's or ticket's
 * exclusively while it trashes codes or detaches the ticket. So a deletion handled first is seen
 * by the write's check (422), and a write checked first is waited for, then trashed or detached
 * with the rest. Without them, a code written while its event or ticket was being deleted
 * outlived the deletion for good (found by a review).
 */
import { advisoryXactLock, type Queryable } from "@shared/db.ts";

type Kind = "event" | "ticket";

function keyOf(kind: Kind, id: string): string {
  return `discounts:catalog-${kind}:${id}`;
}

/** Shares the locks of `names` until the transaction ends, in one order (no deadlock). */
export async function shareCatalogNames(
  tx: Queryable,
  names: { events?: readonly string[]; tickets?: readonly string[] },
): Promise<void> {
  const keys = [
    ...(names.events ?? []).map((id) => keyOf("event", id)),
    ...(names.tickets ?? []).map((id) => keyOf("ticket", id)),
  ].sort();
  for (const key of new Set(keys)) {
    await advisoryXactLock(tx, key, { shared: true });
  }
}

/** Holds the lock of one deleted event or ticket alone until the transaction ends. */
export async function holdCatalogName(tx: Queryable, kind: Kind, id: string): Promise<void> {
  await advisoryXactLock(tx, keyOf(kind, id));
}
