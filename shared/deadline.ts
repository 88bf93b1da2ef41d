/**
 * The deadline of the request being served. The gateway sets an absolute deadline (epoch ms) on
 * every bus request (`Oe-Deadline`); the serving side runs its handler inside `withDeadline`, and
 * everything below it reads the deadline from here without it being passed down: database
 * transactions bound their statements by what is left and refuse to commit too late
 * (shared/db.ts), and requests to other services carry the same deadline on (shared/bus.ts).
 * So a request the gateway has answered 504 never changes anything afterwards.
 *
 * Deadlines are wall-clock times, so each bus request also carries the time it had left when sent
 * (`Oe-Budget-Ms`), and the serving side takes the sooner of the two (`receivedDeadline`): a clock
 * running behind the requester's cannot stretch a deadline. One running ahead still refuses work as
 * late: keep the clocks in sync (NTP); shared/clock_skew.ts logs either.
 *
 * @example
 * ```ts
 * import { remainingMs, withDeadline } from "@shared/deadline.ts";
 * await withDeadline(Date.now() + 1000, async () => {
 *   console.log(remainingMs()); // about 1000
 * });
 * ```
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { GatewayTimeoutError } from "./errors.ts";
import type { UnchangedSince } from "./schemas/http.ts";

/** The bus header that carries the deadline (epoch milliseconds). */
export const DEADLINE_HEADER = "Oe-Deadline";

/**
 * The bus header that carries the time the request had left when it was sent (milliseconds): a
 * duration, which no clock skews (as gRPC sends `grpc-timeout`). The serving side bounds the
 * deadline by it from the request's arrival (`receivedDeadline`).
 */
export const BUDGET_HEADER = "Oe-Budget-Ms";

/**
 * How long a bus request waits for its answer unless told otherwise, and the deadline a served
 * request that carries none gets (a requester other than ours).
 */
export const DEFAULT_BUS_TIMEOUT_MS = 5000;

/**
 * Time kept back before a deadline for the COMMIT round trip and the answer's way back to the
 * gateway: a transaction with less than this left rolls back instead of committing.
 */
export const COMMIT_MARGIN_MS = 100;

/** What the request being served carries down to the code it calls. */
export interface RequestScope {
  /** Epoch ms after which nobody waits for the answer any more. */
  deadline?: number;
  /**
   * Set by shared/idempotency.ts: the change commits together with the recorded answer. Typed
   * `unknown` so this module needs no database types; shared/db.ts reads it as HeldTransaction.
   */
  held?: unknown;
  /**
   * A conditional write's read snapshot, and the path it was sent to (shared/read_snapshot.ts):
   * `changeWithFact` refuses it when its resource changed since.
   */
  unchangedSince?: UnchangedSince & { path: string };
}

const storage = new AsyncLocalStorage<RequestScope>();

/** Runs `work` with `deadline` (none: unbounded) as the deadline of everything it calls. */
export function withDeadline<T>(deadline: number | undefined, work: () => T): T {
  return storage.run({ ...storage.getStore(), deadline }, work);
}

/** Runs `work` with more scope (keeps the deadline). */
export function withScope<T>(extra: RequestScope, work: () => T): T {
  return storage.run({ ...storage.getStore(), ...extra }, work);
}

/** The scope of the request being served, if any. */
export function currentScope(): RequestScope | undefined {
  return storage.getStore();
}

/** The deadline of the request being served, if it has one. */
export function currentDeadline(): number | undefined {
  return storage.getStore()?.deadline;
}

/** Milliseconds left before the current deadline (Infinity when there is none). */
export function remainingMs(): number {
  const deadline = currentDeadline();
  return deadline === undefined ? Infinity : deadline - Date.now();
}

/** Reads a deadline header value; anything unreadable counts as no deadline. */
function parseDeadline(value: string | undefined | null): number | undefined {
  if (!value) return undefined;
  const deadline = Number(value);
  return Number.isFinite(deadline) && deadline > 0 ? deadline : undefined;
}

/** A bus request's deadline by this process's clock, and how far its sender's clock runs ahead. */
export interface ReceivedDeadline {
  deadline: number;
  /**
   * How much later the sender's deadline lies than its budget counted from arrival: its clock's
   * lead over this process's, less the request's transit (0 where it sent no budget).
   */
  senderAheadMs: number;
}

/**
 * The deadline of a bus request as it arrives (`headers` its NATS headers, `receivedAt` now): its
 * sender's absolute deadline, never later than its budget counted from arrival; the bus's default
 * where it sent neither. Until 2026-12-06 the absolute one alone: a process whose clock ran behind
 * the gateway's by more than `COMMIT_MARGIN_MS` took that much more time than the gateway waited,
 * and could commit a change the client had been answered 504 for (a review of clock skew). The
 * budget alone would not do either: it leaves out the time the request waited to be read.
 */
export function receivedDeadline(
  headers: { get(name: string): string | undefined | null } | undefined,
  receivedAt = Date.now(),
): ReceivedDeadline {
  const absolute = parseDeadline(headers?.get(DEADLINE_HEADER));
  const budget = parseBudget(headers?.get(BUDGET_HEADER));
  if (absolute === undefined) {
    return { deadline: receivedAt + (budget ?? DEFAULT_BUS_TIMEOUT_MS), senderAheadMs: 0 };
  }
  if (budget === undefined) return { deadline: absolute, senderAheadMs: 0 };
  const byBudget = receivedAt + budget;
  return { deadline: Math.min(absolute, byBudget), senderAheadMs: absolute - byBudget };
}

/** Reads a budget header value: a whole number of milliseconds, else none. */
function parseBudget(value: string | undefined | null): number | undefined {
  if (!value) return undefined;
  const budget = Number(value);
  return Number.isSafeInteger(budget) && budget >= 0 ? budget : undefined;
}

/** The error of work refused or abandoned because its deadline passed. */
export function deadlineError(what: string): GatewayTimeoutError {
  return new GatewayTimeoutError(`Cannot ${what}: the request's deadline has passed`);
}

/** Throws unless more than `marginMs` is left before the current deadline. */
export function requireTimeLeft(what: string, marginMs = 0): number {
  const left = remainingMs();
  if (left <= marginMs) throw deadlineError(what);
  return left;
}
