/**
 * The reads the write-preconditions middleware makes through the gateway's own routes, and the
 * database snapshot each was answered under, with the service that answered
 * (shared/read_snapshot.ts): kept by request object, never in a header, so no client can ask
 * for a snapshot or see one.
 *
 * @example
 * ```ts
 * import { askSnapshot, snapshotOf } from "./read_snapshots.ts";
 * const read = askSnapshot(new Request("http://gateway/v1/events/1"));
 * snapshotOf(read); // undefined until its service answers with one
 * ```
 */

/** A read's snapshot and the service whose database it is of. */
export interface ReadSnapshot {
  snapshot: string;
  service: string;
}

const snapshots = new WeakMap<Request, ReadSnapshot | null>();

/** Marks `read` as one whose snapshot is wanted; returns it. */
export function askSnapshot(read: Request): Request {
  snapshots.set(read, null);
  return read;
}

/** Whether `raw` is such a read (it must reach its service: never answered from the cache). */
export function asksSnapshot(raw: Request): boolean {
  return snapshots.has(raw);
}

/** Keeps the snapshot `service` answered the read `raw` with. */
export function noteSnapshot(raw: Request, service: string, snapshot: string | undefined): void {
  if (snapshot !== undefined && snapshots.has(raw)) snapshots.set(raw, { snapshot, service });
}

/** The snapshot the read was answered under, if its service told one. */
export function snapshotOf(read: Request): ReadSnapshot | undefined {
  return snapshots.get(read) ?? undefined;
}

/** The service an endpoint's subject belongs to (`catalog.events.get`: `catalog`). */
export function serviceOf(subject: string): string {
  return subject.slice(0, subject.indexOf("."));
}
