/**
 * The deadline of the request being served. The gateway sets an absolute deadline (epoch ms) on
 * every bus request (`Oe-Deadline`); the serving side runs its handler inside `withDeadline`, and
 * everything below it reads the deadline from here without it being passed down: database
 * transactions bound their statements by what is left and refuse to commit too late
 * (shared/db.ts), and requests to other services carry the same deadline on (shared/bus.ts).
 * So a request the gateway has answered 504 never changes anything afterwards.
 *
 * Deadlines are wall-clock times: the processes' clocks must agree (NTP) to well under the
 * request timeout.
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

/** The bus header that carries the deadline (epoch milliseconds). */
export const DEADLINE_HEADER = "Oe-Deadline";

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
export function parseDeadline(value: string | undefined | null): number | undefined {
  if (!value) return undefined;
  const deadline = Number(value);
  return Number.isFinite(deadline) && deadline > 0 ? deadline : undefined;
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
