/**
 * Safe retries: a POST, PATCH or DELETE sent with an `Idempotency-Key` header (the convention of
 * Stripe and the IETF httpapi draft) is done once. The service that owns the change keeps the
 * key with the caller, a hash of the request and the answer for 24 hours, written in the SAME
 * transaction as the change: a retry with the same key and request gets the same answer and
 * changes nothing (and announces no second fact); the same key with another request is 422
 * (for a signed-in caller: anonymous callers' keys are scoped to the request, see `keyOwner`);
 * a retry while the first is still running is 409.
 *
 * How: the key is claimed first (a row that is "running" until the request's deadline). The
 * handler then runs as usual, but its transaction (shared/db.ts `transaction`) stays open until
 * the handler has its answer; the answer is written into the claimed row and both commit
 * together. A handler that fails rolls back and frees the key, so a retry runs again. A claim
 * whose request died is taken over once its deadline has passed.
 *
 * @example
 * ```ts ignore
 * // service.ts: every route of the service, the same way.
 * const running = bus.serve(info, withIdempotency(sql, routes));
 * ```
 */
import type { Msg } from "@nats-io/nats-core";
import { IDEMPOTENCY_HEADER, PRECONDITION_FAILED_HEADER } from "./bus.ts";
import { type Handler, type Route } from "./bus_endpoints.ts";
import { loggedOnce } from "./bus_serving.ts";
import { currentDeadline, withScope } from "./deadline.ts";
import {
  bounded,
  type HeldTransaction,
  ignoringCreateRace,
  type Queryable,
  runHooks,
  settling,
  type Sql,
  transaction,
  type TransactionHooks,
  translateDbError,
  type Tx,
} from "./db.ts";
import { loggedByDatabaseWatch, noteDatabaseError } from "./db_watch.ts";
import {
  ConflictError,
  failedPrecondition,
  malformedIdempotencyKey,
  UnprocessableError,
  type WritePrecondition,
} from "./errors.ts";
import type { Actor, HttpReply, HttpRequest } from "./schemas/http.ts";
import { withReadSnapshots } from "./read_snapshot.ts";

/** How long an answer is kept for retries. */
const KEY_LIFETIME = "24 hours";
/** How long a claim without a deadline (a direct bus caller) counts as running. */
const CLAIM_WITHOUT_DEADLINE_MS = 30_000;
const PURGE_EVERY_MS = 60_000;
const validKey = /^[\x21-\x7e]{1,255}$/;

/** Creates the key table in the service's schema (idempotent; instances may race on it). */
export async function installIdempotency(sql: Queryable): Promise<void> {
  await sql`create table if not exists idempotency_keys (
    caller text not null,
    key text not null,
    request_hash text not null,
    locked_until timestamptz,
    reply text,
    expires_at timestamptz not null,
    primary key (caller, key)
  )`.catch(ignoringCreateRace);
  await sql`create index if not exists idempotency_keys_expiry on idempotency_keys (expires_at)`
    .catch(ignoringCreateRace);
}

/**
 * Wraps a service's routes: HTTP routes honour `Idempotency-Key`, and every route reports a
 * lost database once (shared/db.ts) and answers it as 503 (a deadline cut: 504), not 500.
 */
export function withIdempotency(
  sql: Sql,
  routes: Route[],
  options: IdempotencyOptions = {},
): Route[] {
  const exempt = new Set(options.unkeyed?.map((endpoint) => endpoint.subject));
  const { authenticate, requestDigest = sha256Hex } = options;
  return routes.map(({ endpoint, handler }) => {
    const http = endpoint.kind === "http";
    const keyed = http && !exempt.has(endpoint.subject);
    const route = { subject: endpoint.subject, authenticate, requestDigest };
    const inner = keyed
      ? idempotent(sql, route, handler)
      : refusingStale(http ? checkingKeyForm(handler) : handler);
    // Outside the key's claim, so that a conditional write's check runs in its held transaction.
    const conditional = http ? withReadSnapshots(sql, inner) : inner;
    return { endpoint, handler: translatingOutages(sql, conditional) };
  });
}

export interface IdempotencyOptions {
  /**
   * Endpoints whose key is ignored. Those whose request or answer carries a secret (a password, a
   * token): storing a hash of a password (fast to guess, unlike its PBKDF2 hash) or a token for
   * 24 hours would leak them to whoever reads the table; they are safe to repeat by nature (a
   * second login is a login, a second sign-up a 409, a second PATCH changes nothing). And those
   * that change nothing (a price preview), where a stored key would only be a row for a day.
   */
  unkeyed?: { subject: string }[];
  /**
   * Refuses (401) a caller whose token no longer counts (its user deleted, its password changed
   * since: a newer token version), before a stored answer is replayed: the answer was stored for
   * that user, but the README promises every such token a 401 on every path.
   */
  authenticate?: (actor: Actor) => Promise<void>;
  /**
   * Digests a request for its key row (default SHA-256). A service whose keyed requests carry a
   * secret gives a keyed one (payments: HMAC under PAYMENTS_ENCRYPTION_KEY, for the Stripe
   * authorization codes its links carry): with a plain hash, whoever reads the table could check
   * a guessed code offline, as with the code digest payments keeps (keyed for that reason).
   */
  requestDigest?: (text: string) => Promise<string>;
}

/** The write's precondition the gateway found failed, if any (gateway/middleware/write_preconditions.ts). */
function preconditionFailed(msg: Msg): WritePrecondition | undefined {
  const header = msg.headers?.get(PRECONDITION_FAILED_HEADER);
  return header === "If-Match" || header === "If-None-Match" ? header : undefined;
}

/**
 * A route that ignores keys still refuses a malformed one, as every write does (a review: a
 * 300-character key was a 400 on every write but these, silently taken there).
 */
function checkingKeyForm<Req, Res>(handler: Handler<Req, Res>): Handler<Req, Res> {
  return async (payload, msg) => {
    const key = msg.headers?.get(IDEMPOTENCY_HEADER);
    if (key && !validKey.test(key)) throw malformedIdempotencyKey();
    return await handler(payload, msg);
  };
}

/** A route without keys has no stored answer to give a write whose `If-Match` failed: 412. */
function refusingStale<Req, Res>(handler: Handler<Req, Res>): Handler<Req, Res> {
  return async (payload, msg) => {
    const failed = preconditionFailed(msg);
    if (failed) throw failedPrecondition(failed);
    return await handler(payload, msg);
  };
}

function translatingOutages<Req, Res>(sql: Sql, handler: Handler<Req, Res>): Handler<Req, Res> {
  return async (payload, msg) => {
    try {
      return await handler(payload, msg);
    } catch (error) {
      noteDatabaseError(sql, error);
      const translated = translateDbError(error);
      throw loggedByDatabaseWatch(error) ? loggedOnce(translated as object) : translated;
    }
  };
}

interface KeyedRequest {
  caller: string;
  key: string;
  hash: string;
  /** The claim's token: it is running until then. */
  lockedUntil: Date;
}

function idempotent(
  sql: Sql,
  route: {
    subject: string;
    authenticate?: (actor: Actor) => Promise<void>;
    requestDigest: (text: string) => Promise<string>;
  },
  handler: Handler<HttpRequest, HttpReply>,
): Handler<HttpRequest, HttpReply> {
  const { subject, authenticate, requestDigest } = route;
  return async (req, msg) => {
    const key = msg.headers?.get(IDEMPOTENCY_HEADER);
    const failed = preconditionFailed(msg);
    if (!key && failed) throw failedPrecondition(failed);
    if (!key) return await handler(req, msg);
    if (!validKey.test(key)) throw malformedIdempotencyKey();
    if (req.actor && authenticate) await authenticate(req.actor);
    const hash = await requestDigest(requestText(subject, req));
    const request: KeyedRequest = {
      caller: keyOwner(req.actor, hash),
      key,
      hash,
      lockedUntil: new Date(currentDeadline() ?? Date.now() + CLAIM_WITHOUT_DEADLINE_MS),
    };
    const replay = await claim(sql, request);
    if (replay) return replay;
    // Not a retry of an applied change: the claim is freed and nothing runs.
    if (failed) {
      return await runHeld(sql, request, () => Promise.reject(failedPrecondition(failed)));
    }
    return await runHeld(sql, request, async () => await handler(req, msg));
  };
}

/**
 * Whose keys a key is among: a signed-in user's own; for anonymous callers, who cannot be told
 * apart, the request's own (its hash). Anonymous callers shared one namespace, so two clients
 * using the same fixed key for different price previews got a 422 "sent with a different request"
 * for the second (a security review). A retry of the same request still finds its answer.
 */
function keyOwner(actor: Actor | null | undefined, hash: string): string {
  return actor ? actor.id : `anonymous:${hash}`;
}

/** The endpoint (so the method), path, query and body: what makes two requests "the same". */
function requestText(subject: string, req: HttpRequest): string {
  return JSON.stringify([subject, req.path, req.query, req.body ?? null, req.rawBody ?? null]);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Claims the key; returns the stored answer of a finished request, or throws 409/422. A key whose
 * claim is freed (its request failed) between the claim that found it running and the look at it
 * is free: claimed again, not answered 409 "still running" (a review found that race). Each try
 * either claims the key or finds its row, so two tries suffice unless claims come and go faster
 * than a round trip; after MAX_CLAIM_TRIES the key counts as busy.
 */
async function claim(sql: Sql, request: KeyedRequest): Promise<HttpReply | undefined> {
  purgeExpired(sql);
  for (let tries = 1;; tries++) {
    if (await claimRow(sql, request)) return undefined;
    const found = await keyRow(sql, request);
    if (found === undefined && tries < MAX_CLAIM_TRIES) continue;
    if (found && found.request_hash !== request.hash) {
      throw new UnprocessableError(
        "Cannot reuse Idempotency-Key: it was sent with a different request",
        { header: "Idempotency-Key" },
      );
    }
    if (!found?.reply) {
      throw new ConflictError(
        "Cannot run the request yet: one with the same Idempotency-Key is still running",
        { header: "Idempotency-Key" },
      );
    }
    return JSON.parse(found.reply);
  }
}

const MAX_CLAIM_TRIES = 3;

/** Whether the key was free (new, expired, or its claim's request died) and is now claimed. */
async function claimRow(sql: Sql, request: KeyedRequest): Promise<boolean> {
  const { caller, key, hash, lockedUntil } = request;
  const [claimed] = await sql`insert into idempotency_keys as k
      (caller, key, request_hash, locked_until, expires_at)
    values (${caller}, ${key}, ${hash}, ${lockedUntil}, now() + ${KEY_LIFETIME}::interval)
    on conflict (caller, key) do update set request_hash = excluded.request_hash,
      locked_until = excluded.locked_until, reply = null, expires_at = excluded.expires_at
      where k.expires_at < now() or (k.reply is null and k.locked_until < now())
    returning 1`;
  return claimed !== undefined;
}

async function keyRow(
  sql: Sql,
  { caller, key }: KeyedRequest,
): Promise<{ request_hash: string; reply: string | null } | undefined> {
  const [found] = await sql`select request_hash, reply from idempotency_keys
    where caller = ${caller} and key = ${key}`;
  return found as { request_hash: string; reply: string | null } | undefined;
}

/**
 * How many expired keys one purge statement deletes: a few milliseconds' work, far within any
 * statement timeout, however large the backlog.
 */
const PURGE_BATCH = 1000;

/** Each pool's purge: when its last run started, and whether that run is still going. */
const purges = new WeakMap<Sql, { startedAt: number; running: boolean }>();

/**
 * Drops expired keys without making the request wait: starts a run at most once a minute per
 * process, and never while the pool's previous run is still going (two would delete the same
 * batches, each holding a connection).
 */
function purgeExpired(sql: Sql): void {
  const now = Date.now();
  const last = purges.get(sql);
  if (last && (last.running || now - last.startedAt < PURGE_EVERY_MS)) return;
  const run = { startedAt: now, running: true };
  purges.set(sql, run);
  // A purge that fails must never fail a request; the next run tries again.
  purgeInBatches(sql).catch(() => {}).finally(() => run.running = false);
}

/**
 * Deletes expired keys a batch at a time, oldest first (along the index on expires_at), until a
 * batch finds fewer than a full one; a failed batch ends the run. One DELETE of them all ran past
 * the pool's statement timeout once the backlog was large enough (600,000 keys took 0.3 s on a
 * quiet machine here, so millions at the default 5 s, fewer on a busy one) and was cancelled every
 * minute, undoing all it had deleted: the table only grew. Each batch starts its walk of the index
 * where the last one ended: from the start, it stepped over every key the run had deleted, which
 * stay in the index while another transaction holds Postgres's cleanup back (a backup, say), so a
 * batch took longer each time (400,000 keys: 4 ms at first, 22 ms by the 400th; now 4 ms
 * throughout). A key claimed again between the select and the delete has not expired any more, so
 * it stays.
 */
async function purgeInBatches(sql: Sql): Promise<void> {
  let from = new Date(0);
  for (;;) {
    const [{ deleted, last }] = await sql<{ deleted: number; last: Date | null }[]>`
      with batch as (
        select ctid from idempotency_keys where expires_at < now() and expires_at >= ${from}
        order by expires_at limit ${PURGE_BATCH}
      ), gone as (
        delete from idempotency_keys k using batch b
        where k.ctid = b.ctid and k.expires_at < now() returning k.expires_at
      )
      select count(*)::int as deleted, max(expires_at) as last from gone`;
    if (deleted < PURGE_BATCH) return;
    from = last ?? from;
  }
}

/** Runs the handler with its change held open until the answer is recorded alongside it. */
async function runHeld(
  sql: Sql,
  request: KeyedRequest,
  run: () => Promise<HttpReply>,
): Promise<HttpReply> {
  const held = new HeldAnswer(request);
  let reply: HttpReply;
  try {
    reply = await withScope({ held }, run);
    await held.settle();
    held.throwIfLost();
  } catch (error) {
    // Rolled back: nothing changed, so the key is free for a retry.
    await held.abandon(error);
    await sql`delete from idempotency_keys where caller = ${request.caller}
      and key = ${request.key} and locked_until = ${request.lockedUntil} and reply is null`
      .catch(() => {});
    throw error;
  }
  // If this fails the outcome may be unknown (COMMIT lost): the claim stays until its deadline,
  // and a retry then finds either the answer or a free key, never a second change.
  await held.finish(sql, reply);
  return reply;
}

/** Writes the answer into the claimed row; refuses if the claim was taken over meanwhile. */
async function recordAnswer(tx: Queryable, request: KeyedRequest, reply: HttpReply): Promise<void> {
  const [row] = await tx`update idempotency_keys set reply = ${JSON.stringify(reply)},
      locked_until = null
    where caller = ${request.caller} and key = ${request.key}
      and locked_until = ${request.lockedUntil}
    returning 1`;
  if (!row) {
    throw new ConflictError("Cannot finish: the Idempotency-Key was claimed by a later retry", {
      header: "Idempotency-Key",
    });
  }
}

/** Runs what it is given one after another, each once the one before has settled. */
class Turns {
  #last: Promise<unknown> = Promise.resolve();

  next<T>(run: () => Promise<T>): Promise<T> {
    const turn = this.#last.then(run);
    this.#last = turn.catch(() => {});
    return turn;
  }

  /**
   * Counts `other` (a turn taken elsewhere) among the turns: `drained` waits for it too, and a
   * turn asked for later begins after it.
   */
  track(other: Promise<unknown>): void {
    const before = this.#last;
    this.#last = Promise.all([before, other.catch(() => {})]);
  }

  /** Resolves once every turn asked for, including those asked for meanwhile, has settled. */
  async drained(): Promise<void> {
    for (let last; last !== this.#last;) await (last = this.#last);
  }
}

/** The transaction of one keyed request, kept open from its first change until its answer. */
class HeldAnswer implements HeldTransaction {
  /**
   * The open transaction, from the moment it is asked for: a change started while it is still
   * opening waits for it, rather than opening a second one (which then lost the race to record
   * the answer and rolled back, while the handler answered 201 for both changes).
   */
  #tx: Promise<Tx> | undefined;
  #committed: Promise<unknown> | undefined;
  /** The hooks of the changes the open transaction holds. */
  #hooks: TransactionHooks[] = [];
  /**
   * The changes of the open transaction take turns: each but the first is a savepoint, and
   * rolling back to a savepoint undoes everything done after it was made. Run at once, a change
   * that failed (and that its handler took and went on from) undid another that had begun after
   * it and been told it was done: the answer said 201 for a change that was gone.
   */
  readonly #turns = new Turns();
  /** Whether a change of the open transaction has told the handler it worked. */
  #told = false;
  /**
   * Why a change the handler was told had worked rolled back before the answer (its connection
   * lost, Postgres restarted): the handler's answer describes a change that is gone, so it must
   * not be recorded nor sent, and nothing more may join a new transaction in its place.
   */
  #lost: { error: unknown } | undefined;
  /**
   * Set once the handler answered and the changes it started have had their turns (`settle`): a
   * change begun later (a timer it set) is no part of the answer, and runs as its own transaction.
   */
  #settled = false;
  /**
   * Set once the handler failed and the changes it started have had their turns (`abandon`): the
   * transaction is rolling back, and a change begun now is refused with the handler's error. Joined
   * to it, its statements after the ROLLBACK ran on the connection without a transaction (committed
   * at once) or inside another request's; run on its own, it would be made again by the retry the
   * freed key invites.
   */
  #abandoned: { error: unknown } | undefined;
  readonly #answer = Promise.withResolvers<HttpReply>();

  constructor(readonly request: KeyedRequest) {
    this.#answer.promise.catch(() => {});
  }

  join<T>(sql: Sql, work: (tx: Tx) => Promise<T>, hooks: TransactionHooks): Promise<T> {
    // Once the changes before it are done: only then is it known what it joins. A first change
    // that failed rolled the transaction back, and a change queued behind it that joined that
    // one ran its savepoint on a connection back in the pool (outside any transaction, or inside
    // another request's): it opens a new transaction instead.
    return this.#turns.next(() => this.#take(sql, work, hooks));
  }

  /** A change's turn: opens the transaction, or joins the open one as a savepoint. */
  #take<T>(sql: Sql, work: (tx: Tx) => Promise<T>, hooks: TransactionHooks): Promise<T> {
    if (this.#lost) return Promise.reject(this.#lost.error);
    if (this.#abandoned) return Promise.reject(this.#abandoned.error);
    // As without a key: joined to the transaction being committed, it ran its savepoint on a
    // connection back in the pool (Postgres: "SAVEPOINT can only be used in transaction blocks").
    if (this.#settled) return withScope({ held: undefined }, () => transaction(sql, work, hooks));
    const opened = this.#tx;
    if (!opened) return this.#open(sql, work, hooks);
    // A further change of the same request: part of the same transaction.
    return opened.then((tx) => this.#joinSavepoint(tx, work, hooks));
  }

  /**
   * What a change's own work joins when it starts a change of its own (a transaction within the
   * transaction): a savepoint within it, without waiting for the request's turns (it would wait
   * for itself), but taking turns with the other changes started within the same change, for the
   * reason the request's changes take theirs. Its hooks go with the enclosing change's
   * (`hooksOf`): undone with it, it rolled back.
   */
  #within(tx: Tx, hooksOf: TransactionHooks[]): HeldTransaction {
    const turns = new Turns();
    return {
      join: (sql, work, hooks) => {
        // Begun once the answer is settled (a timer set within a change): as at the request's
        // level, it runs on its own, or is refused once the handler failed.
        if (this.#settled || this.#abandoned) return this.#take(sql, work, hooks);
        const turn = turns.next(() => this.#joinSavepoint(tx, work, hooks, hooksOf));
        // A change its enclosing change did not await is waited for before the answer too: its
        // statements went on after the COMMIT, on the connection back in the pool (a review,
        // 2026-12-04).
        this.#turns.track(turn);
        return turn;
      },
      afterCommit: (then) => this.afterCommit(then),
    };
  }

  #open<T>(sql: Sql, work: (tx: Tx) => Promise<T>, hooks: TransactionHooks): Promise<T> {
    this.#hooks.push(hooks);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const opened = Promise.withResolvers<Tx>();
    opened.promise.catch(() => {});
    this.#tx = opened.promise;
    const tracked = settling(work);
    this.#committed = sql.begin((tx) =>
      bounded(sql, tx, async () => {
        opened.resolve(tx);
        resolve(await withScope({ held: this.#within(tx, this.#hooks) }, () => tracked.work(tx)));
        this.#told = true;
        await recordAnswer(tx, this.request, await this.#answer.promise);
      })
    ).catch((error) => {
      // Rolled back, whether the change failed, the handler failed after it, or the commit was
      // refused: as if these changes had never been tried (the handler may go on if it was told,
      // by its change's own failure; if not, the request fails: see #lost).
      if (this.#told) this.#lost ??= { error };
      this.#told = false;
      this.#tx = undefined;
      this.#committed = undefined;
      noteDatabaseError(sql, error);
      opened.reject(error);
      reject(error);
      // A lost connection rejects at once, while the change may still be running (db.ts).
      const hooks = this.#hooks.splice(0);
      tracked.whenSettled(() => runHooks(hooks, "afterRollback"));
      throw error;
    });
    this.#committed.catch(() => {});
    return promise;
  }

  afterCommit(then: () => void): void {
    if (this.#committed) this.#hooks.push({ afterCommit: then });
    else then();
  }

  /**
   * A savepoint that fails was rolled back alone, with the changes made within it (that had
   * worked: their hooks waited with its own); one that works ends with what it is part of.
   */
  async #joinSavepoint<T>(
    tx: Tx,
    work: (tx: Tx) => Promise<T>,
    hooks: TransactionHooks,
    into: TransactionHooks[] = this.#hooks,
  ): Promise<T> {
    const within: TransactionHooks[] = [];
    let value: T;
    try {
      value = await tx.savepoint((inner) =>
        withScope({ held: this.#within(inner, within) }, () => work(inner))
      ) as T;
    } catch (error) {
      runHooks([...within, hooks], "afterRollback");
      throw error;
    }
    into.push(...within, hooks);
    this.#told = true;
    return value;
  }

  /**
   * Waits until every change the handler started has had its turn, those it did not await too:
   * taking its turn while the answer was recorded, such a change had the COMMIT sent between its
   * statements (a review, 2026-12-04: half of it committed, the rest run outside the transaction,
   * and the change told it failed). They are part of the answer, committed or lost with it.
   */
  async settle(): Promise<void> {
    await this.#turns.drained();
    this.#settled = true;
  }

  /** Throws why a change the handler counts as made rolled back before its answer. */
  throwIfLost(): void {
    if (this.#lost) throw this.#lost.error;
  }

  async finish(sql: Sql, reply: HttpReply): Promise<void> {
    if (!this.#committed) {
      // Nothing changed (for example an update to the same values): the answer alone.
      await recordAnswer(sql, this.request, reply);
      return;
    }
    this.#answer.resolve(reply);
    await this.#committed;
    runHooks(this.#hooks.splice(0), "afterCommit");
  }

  /**
   * Rolls the changes back with the handler's failure, once those it started have had their turns
   * (as `settle`): rolled back while one it did not await was between statements, the rest of that
   * change ran after the ROLLBACK, outside the transaction (a review, 2026-12-04: its row committed
   * while the request answered 500 and freed its key).
   */
  async abandon(error: unknown): Promise<void> {
    await this.#turns.drained();
    this.#abandoned = { error };
    this.#answer.reject(error);
    await this.#committed?.catch(() => {});
  }
}
