/**
 * The hooks API for Dredd hook files run by the Deno hooks handler (`hooks/handler.ts`).
 *
 * A hook file is a module that imports `hooks` and registers functions at import time; the
 * handler imports every hook file Dredd names, then runs the registered hooks for each event
 * Dredd sends over TCP. Named hooks match the transaction name Dredd prints
 * (`Group > Resource > Action`).
 *
 * @example
 * ```ts
 * import { hooks } from "./hooks.ts";
 *
 * hooks.beforeEach((transaction) => {
 *   transaction.request.headers["Authorization"] = "Bearer test";
 * });
 * hooks.before("Topics > Topic > Get a topic", (transaction) => {
 *   transaction.skip = false;
 * });
 * ```
 */
import { createLogger } from "@shared/log.ts";

/** The request Dredd will send; hooks may change any of it before the request goes out. */
export interface TransactionRequest {
  method: string;
  uri: string;
  headers: Record<string, string>;
  body: string;
  [key: string]: unknown;
}

/** What the API description expects; `beforeValidation` hooks may relax it. */
export interface TransactionExpected {
  statusCode?: string | number;
  headers?: Record<string, string>;
  body?: string;
  bodySchema?: unknown;
  [key: string]: unknown;
}

/** The response the server actually gave; present from `beforeEachValidation` on. */
export interface TransactionReal {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  [key: string]: unknown;
}

/** One Dredd transaction as it travels over the hooks protocol. */
export interface Transaction {
  name: string;
  id?: string;
  request: TransactionRequest;
  expected: TransactionExpected;
  real?: TransactionReal;
  /** Dredd skips the transaction when a before hook sets this. */
  skip: boolean;
  /** Dredd fails the transaction with this message when a before or after hook sets it. */
  fail?: boolean | string;
  [key: string]: unknown;
}

export type Hook = (transaction: Transaction) => void | Promise<void>;
export type AllHook = (transactions: Transaction[]) => void | Promise<void>;

/** The events Dredd sends to a hooks handler. */
export type HookEvent =
  | "beforeAll"
  | "beforeEach"
  | "beforeEachValidation"
  | "afterEach"
  | "afterAll";

/** Where hook files register their hooks. */
export interface Hooks {
  before(name: string, fn: Hook): void;
  after(name: string, fn: Hook): void;
  beforeValidation(name: string, fn: Hook): void;
  beforeEach(fn: Hook): void;
  beforeEachValidation(fn: Hook): void;
  afterEach(fn: Hook): void;
  beforeAll(fn: AllHook): void;
  afterAll(fn: AllHook): void;
}

/** A hooks registry that can also run its hooks for one event; the handler uses this side. */
export interface HookRegistry extends Hooks {
  /**
   * Runs the hooks for `event` on `data` (one transaction, or the array for `*All` events),
   * changing it in place, and returns it. A hook that throws does not stop the others: the
   * transaction gets `fail` set to the message (every transaction for `beforeAll`), so Dredd
   * reports it, and `onError` hears about it.
   */
  run(event: HookEvent, data: unknown): Promise<unknown>;
}

export interface HookRegistryOptions {
  /** Told about every hook that throws; the handler logs it to stderr. */
  onError?: (failure: HookFailure) => void;
}

export interface HookFailure {
  hook: string;
  transaction?: string;
  message: string;
}

const log = createLogger("hooks");

const EVENTS: readonly HookEvent[] = [
  "beforeAll",
  "beforeEach",
  "beforeEachValidation",
  "afterEach",
  "afterAll",
];

/** Tells whether a wire event name is one this registry can run. */
export function isHookEvent(event: unknown): event is HookEvent {
  return typeof event === "string" && (EVENTS as readonly string[]).includes(event);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function addNamed(map: Map<string, Hook[]>, name: string, fn: Hook): void {
  const list = map.get(name) ?? [];
  list.push(fn);
  map.set(name, list);
}

/** The hooks one registry holds, per kind, and where it reports hooks that throw. */
interface Registered {
  before: Map<string, Hook[]>;
  after: Map<string, Hook[]>;
  beforeValidation: Map<string, Hook[]>;
  beforeEach: Hook[];
  beforeEachValidation: Hook[];
  afterEach: Hook[];
  beforeAll: AllHook[];
  afterAll: AllHook[];
  report(failure: HookFailure): void;
}

function emptyRegistry(options: HookRegistryOptions): Registered {
  return {
    before: new Map(),
    after: new Map(),
    beforeValidation: new Map(),
    beforeEach: [],
    beforeEachValidation: [],
    afterEach: [],
    beforeAll: [],
    afterAll: [],
    report: (failure) => options.onError?.(failure),
  };
}

async function runEach(
  registered: Registered,
  label: string,
  fns: Hook[],
  transaction: Transaction,
): Promise<void> {
  for (const fn of fns) {
    try {
      await fn(transaction);
    } catch (error) {
      const message = `${label} hook failed: ${describe(error)}`;
      // Keep the first reason: the one a hook set itself, or the earliest throw.
      if (!transaction.fail) transaction.fail = message;
      registered.report({ hook: label, transaction: transaction.name, message: describe(error) });
    }
  }
}

async function runAll(
  registered: Registered,
  label: "beforeAll" | "afterAll",
  transactions: Transaction[],
): Promise<void> {
  for (const fn of registered[label]) {
    try {
      await fn(transactions);
    } catch (error) {
      registered.report({ hook: label, message: describe(error) });
      // Dredd only shows hook errors through transactions, so a broken set-up fails them all.
      if (label === "beforeAll") {
        for (const t of transactions) {
          if (!t.fail) t.fail = `beforeAll hook failed: ${describe(error)}`;
        }
      }
    }
  }
}

async function run(registered: Registered, event: HookEvent, data: unknown): Promise<unknown> {
  if (event === "beforeAll" || event === "afterAll") {
    const transactions = Array.isArray(data) ? data as Transaction[] : [];
    await runAll(registered, event, transactions);
    return data;
  }
  const transaction = data as Transaction;
  // With several blueprints Dredd prefixes each name with its API's name ("Open Event API:
  // audit > Activities > ..."); hook files use the names of their own blueprint, so hooks see
  // the name without that prefix, and Dredd gets its own name back.
  const fullName = transaction.name;
  const apiName = (transaction.origin as { apiName?: string } | undefined)?.apiName;
  if (apiName && fullName.startsWith(`${apiName} > `)) {
    transaction.name = fullName.slice(apiName.length + 3);
  }
  try {
    await runNamed(registered, event, transaction);
  } finally {
    transaction.name = fullName;
  }
  return transaction;
}

async function runNamed(
  registered: Registered,
  event: HookEvent,
  transaction: Transaction,
): Promise<void> {
  const r = registered;
  const name = transaction.name;
  switch (event) {
    case "beforeEach":
      await runEach(r, "beforeEach", r.beforeEach, transaction);
      await runEach(r, `before "${name}"`, r.before.get(name) ?? [], transaction);
      break;
    case "beforeEachValidation":
      await runEach(r, "beforeEachValidation", r.beforeEachValidation, transaction);
      await runEach(
        r,
        `beforeValidation "${name}"`,
        r.beforeValidation.get(name) ?? [],
        transaction,
      );
      break;
    case "afterEach":
      await runEach(r, `after "${name}"`, r.after.get(name) ?? [], transaction);
      await runEach(r, "afterEach", r.afterEach, transaction);
      break;
  }
}

/**
 * Makes an empty hooks registry. Hook files use the shared `hooks` instance; tests make their own.
 *
 * @example
 * ```ts
 * import { createHooks } from "./hooks.ts";
 * const registry = createHooks();
 * registry.beforeEach((t) => {
 *   t.request.headers["X-Test"] = "1";
 * });
 * const t = { name: "A", request: { method: "GET", uri: "/", headers: {}, body: "" }, expected: {}, skip: false };
 * await registry.run("beforeEach", t);
 * ```
 */
export function createHooks(options: HookRegistryOptions = {}): HookRegistry {
  const r = emptyRegistry(options);
  return {
    before: (name, fn) => addNamed(r.before, name, fn),
    after: (name, fn) => addNamed(r.after, name, fn),
    beforeValidation: (name, fn) => addNamed(r.beforeValidation, name, fn),
    beforeEach: (fn) => void r.beforeEach.push(fn),
    beforeEachValidation: (fn) => void r.beforeEachValidation.push(fn),
    afterEach: (fn) => void r.afterEach.push(fn),
    beforeAll: (fn) => void r.beforeAll.push(fn),
    afterAll: (fn) => void r.afterAll.push(fn),
    run: (event, data) => run(r, event, data),
  };
}

/**
 * The registry hook files register into. The handler imports this same module, so whatever a
 * hook file registers at import time is what the handler runs.
 *
 * @example
 * ```ts
 * import { hooks } from "./hooks.ts";
 * hooks.afterEach((t) => {
 *   if (t.real && t.real.statusCode >= 500) t.fail = "Cannot accept a 5xx response";
 * });
 * ```
 */
export const hooks: HookRegistry = createHooks({
  // Dredd shows the handler's stderr only with --loglevel debug; the failed transaction is what
  // it reports.
  onError: (failure) => log.error("Hook failed", { ...failure }),
});
