/**
 * The requesting side's waiting: whether the connection to NATS is up (`Link`), the requests
 * waiting for their answers on one inbox (`Replies`), and how a request that got none is told to
 * its caller (`translateRequestError`: 503 no responders, 504 timeout or a connection lost).
 */
import { createInbox, errors as natsErrors } from "@nats-io/nats-core";
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import type { ConnectionMeter } from "./bus_metrics.ts";
import { ApiError, GatewayTimeoutError, ServiceUnavailableError } from "./errors.ts";
import { LinePace, type Logger } from "./log.ts";

export function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current = error;
  while (current && chain.length < 5) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/** A request sent before the connection was lost, whose answer did not come within the grace. */
class AnswerLostError extends Error {}

/** Translates NATS request failures into the API's errors: 503 no responders, 504 timeout. */
export function translateRequestError(
  error: unknown,
  subject: string,
  change = false,
): ApiError {
  const chain = causeChain(error);
  if (chain.some((e) => e instanceof AnswerLostError)) {
    return new GatewayTimeoutError(
      `Cannot reach ${subject}: the connection to NATS was lost while waiting for the answer ` +
        `(a change asked for may have been made)`,
      { cause: error },
    );
  }
  if (chain.some((e) => e instanceof natsErrors.NoRespondersError)) {
    return new ServiceUnavailableError(`Cannot reach ${subject}: no service instance is running`, {
      cause: error,
    });
  }
  // A service may have committed a change and then died or stalled before its answer left (a
  // fault review, 2026-12-05: 3 of 6 writes answered 504 around a killed catalog were applied,
  // each before the 504): a write's client is told, as for a lost connection.
  if (chain.some((e) => e instanceof natsErrors.TimeoutError)) {
    const applied = change ? " (a change asked for may have been made)" : "";
    return new GatewayTimeoutError(
      `Cannot reach ${subject}: the service did not answer in time${applied}`,
      { cause: error },
    );
  }
  return new ServiceUnavailableError(`Cannot reach ${subject}: the bus is unavailable`, {
    cause: error,
  });
}

/**
 * Whether the connection to NATS is up, as its status events tell (`follow`). While it is down a
 * request does not wait in nats.js's reconnect buffer for its whole timeout: it waits at most
 * RECONNECT_GRACE_MS for the connection to come back (a node lost in a cluster is replaced within
 * a few hundred milliseconds), then fails with 503 (`Bus.#send`).
 */
export class Link {
  /** Resolved when the connection is back; undefined while it is up. */
  #back: PromiseWithResolvers<void> | undefined;
  /** Subscriptions the server refused since the connection was (re)made (`refusedSubscriptions`). */
  #refused = 0;
  /** When each error the server sent was last logged (`#serverError`), for at most 100 texts. */
  /** Each kind of error the server sent, by its text (a permission's refusal names its subject). */
  readonly #errorSaid = new LinePace(SERVER_ERROR_LOG_INTERVAL_MS);
  /** Which of a process's connections its log lines are about (" (JetStream connection)"). */
  readonly #which: string;
  /** What a subscription the server refused costs on this connection, for its log line. */
  readonly #refusal: string;
  /** The server refused the connection's credentials since it was last up (`reconnectDelay`). */
  #credentialsRefused = false;

  constructor(options: { which?: string; refusal?: string } = {}) {
    this.#which = options.which ?? "";
    this.#refusal = options.refusal ?? "what it served answers 503 here";
  }

  get down(): boolean {
    return this.#back !== undefined;
  }

  /** Whether the connection is up now or comes back within `ms`. */
  async upWithin(ms: number): Promise<boolean> {
    const back = this.#back;
    if (back === undefined) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => timer = setTimeout(resolve, ms, false));
    const up = await Promise.race([back.promise.then(() => true), late]);
    clearTimeout(timer);
    return up;
  }

  /**
   * How long nats.js waits before trying a server again (its `reconnectDelayHandler`). A server
   * that refuses the credentials is asked again every CREDENTIALS_RETRY_MS, not every
   * RECONNECT_WAIT_MS: by default nats.js closed the connection for good at the second refusal,
   * and the process lived on without NATS (its routes 503, its facts held, missing from `/health`)
   * until someone restarted it, though the server took the credentials again a moment later (a
   * password rotated on the server before the clients, then rolled back; measured on a private
   * server, 2026-12-06: closed 0.6 s after the change). Now it heals by itself, within
   * CREDENTIALS_RETRY_MS of the server taking them, and a refusing server is asked every 2 s, not
   * three or four times a second.
   */
  reconnectDelay(): number {
    if (this.#credentialsRefused) return CREDENTIALS_RETRY_MS;
    // nats.js's own handler adds as much jitter: processes that lost one node do not all knock
    // on the next at the same instant.
    return RECONNECT_WAIT_MS + Math.floor(Math.random() * (RECONNECT_JITTER_MS + 1));
  }

  /**
   * How many subscriptions the server refused since the connection was last made, for want of room
   * (its `max_subscriptions`, per connection or per account): it answers `-ERR 'maximum
   * subscriptions exceeded'` and drops the subscription, while nats.js keeps it as if it were there,
   * so the routes it served answer 503 "no service instance is running" and nothing else says so.
   * A reconnection subscribes everything again, and counts from 0.
   */
  get refusedSubscriptions(): number {
    return this.#refused;
  }

  /**
   * Follows the connection's status, logging and counting (shared/bus_metrics.ts) losing and
   * regaining NATS once per transition (nats.js reports every failed reconnect attempt too; those
   * stay quiet), and logging what the server refused (`-ERR`: a subscription past its limit, a
   * subject a permission denies), each kind at most once a minute. Ends when the connection closes.
   */
  async follow(
    nc: NatsConnection,
    log: Logger,
    meter: ConnectionMeter,
    on: { lost(): void; back(): void },
  ): Promise<void> {
    for await (const status of nc.status()) {
      const server = (status as { server?: string }).server;
      if (status.type === "disconnect" && !this.down) {
        this.#back = Promise.withResolvers();
        meter.lost();
        on.lost();
        log.warn(`lost NATS${this.#which}; reconnecting`, { server });
      } else if (status.type === "reconnect" && this.down) {
        this.#refused = 0;
        this.#credentialsRefused = false;
        this.#back!.resolve();
        this.#back = undefined;
        meter.back();
        on.back();
        log.info(`NATS is back${this.#which}`, { server });
      } else if (status.type === "error") {
        this.#serverError((status as { error?: unknown }).error, log);
      }
    }
  }

  #serverError(error: unknown, log: Logger): void {
    const text = error instanceof Error ? error.message : String(error);
    const credentials = error instanceof natsErrors.AuthorizationError ||
      error instanceof natsErrors.UserAuthenticationExpiredError;
    if (credentials) this.#credentialsRefused = true;
    const refusal = MAX_SUBSCRIPTIONS.test(text);
    if (refusal) this.#refused++;
    if (!this.#errorSaid.due(text)) return;
    if (refusal) {
      log.error(
        `NATS refused a subscription${this.#which} (maximum subscriptions exceeded): ` +
          `${this.#refusal}; raise max_subscriptions (the server's, or this process's account's ` +
          "or user's)",
        { refused: this.#refused },
      );
    } else if (credentials) {
      log.error(
        `NATS refuses this process's credentials${this.#which}: asking again every ` +
          `${CREDENTIALS_RETRY_MS / 1000} s; correct the user and password or token in NATS_URL, ` +
          "or the server's authorization",
        { error: text },
      );
    } else {
      log.error("NATS refused an operation", { error: text });
    }
  }
}

/** The server's words for a subscription past its `max_subscriptions`. */
const MAX_SUBSCRIPTIONS = /maximum subscriptions exceeded/i;
/** How often, at most, one kind of error the server sent is logged. */
const SERVER_ERROR_LOG_INTERVAL_MS = 60_000;
/** After losing a node, how soon the next server is tried (nats.js's default waits 2 s). */
const RECONNECT_WAIT_MS = 250;
/** At most this much more, at random (nats.js's default jitter). */
const RECONNECT_JITTER_MS = 100;
/** Random words drawn at once for request tokens. */
const RANDOM_BATCH = 256;
/** How often a server that refused the connection's credentials is asked again. */
export const CREDENTIALS_RETRY_MS = 2_000;

interface Waiting {
  subject: string;
  resolve(msg: Msg): void;
  reject(error: unknown): void;
  /** When the request times out (`performance.now()` time). */
  expires: number;
  /** Its own timeout, kept while a lost connection brings `expires` forward (`Replies.lost`). */
  due: number;
  /** Sent before the connection was lost, which has not come back since. */
  lost?: boolean;
}

/**
 * Request/reply on one wildcard inbox per connection, as nats.js does, minus its per-request
 * costs: its `request` makes a timer object, two deferreds and, even on success, an Error whose
 * stack is captured (~10% of the gateway's CPU). Here a request is a map entry. One timer serves
 * all of them, armed for the soonest expiry: requests mostly share one timeout, so under load a new
 * request rarely moves it, and a timer per request (set, then cleared by nearly every answer) had
 * cost about 10 % of the gateway's CPU per signed-in read. Failures are nats.js's own error classes,
 * so translateRequestError reads them alike.
 */
export class Replies {
  readonly #inbox: string;
  readonly #waiting = new Map<string, Waiting>();
  #next = 0;
  /** Random words for the tokens, drawn a batch at a time (`#token`). */
  readonly #random = new Uint32Array(RANDOM_BATCH);
  #randomAt = RANDOM_BATCH;
  #timer?: ReturnType<typeof setTimeout>;
  /** When the timer fires (Infinity while it is not armed). */
  #timerAt = Infinity;
  /** Set when the inbox's subscription has ended: the next request makes a new inbox. */
  closed = false;

  /** `inboxPrefix`: where this process's replies come (`inboxPrefixOf` in shared/bus.ts). */
  constructor(readonly nc: NatsConnection, inboxPrefix: string) {
    this.#inbox = `${createInbox(inboxPrefix)}.`;
    const sub = nc.subscribe(`${this.#inbox}*`, {
      // An error here (a permission violation) closes the subscription: #failAll answers.
      // An answer comes with no reply subject of its own; a message that has one is a JetStream
      // delivery someone pointed here (see `#token`), never an answer.
      callback: (error, msg) => {
        if (!error && !msg.reply) this.#settle(msg);
      },
    });
    sub.closed.then(() => this.#failAll());
  }

  request(subject: string, data: Uint8Array, options: { timeout: number; headers: MsgHdrs }) {
    const token = this.#token();
    return new Promise<Msg>((resolve, reject) => {
      const expires = performance.now() + options.timeout;
      this.#waiting.set(token, { subject, resolve, reject, expires, due: expires });
      if (expires < this.#timerAt) this.#arm(expires);
      try {
        this.nc.publish(subject, data, { reply: this.#inbox + token, headers: options.headers });
      } catch (error) {
        this.#forget(token);
        reject(error);
      }
    });
  }

  /**
   * A request's token: a count, unique, and a random word, so no one can guess it. A process
   * whose NATS user may pull its own JetStream consumer can have the server deliver a stored
   * message of its making to any subject (a pull's reply subject is not checked against its
   * permissions), an inbox included: with a count alone, the next requests' tokens were known to
   * any service that had seen one of this process's requests, and a forged answer would have been
   * taken (a review of shared/nats_permissions.ts, 2026-12-06).
   */
  #token(): string {
    if (this.#randomAt === RANDOM_BATCH) {
      crypto.getRandomValues(this.#random);
      this.#randomAt = 0;
    }
    return `${(this.#next++).toString(36)}r${this.#random[this.#randomAt++].toString(36)}`;
  }

  /**
   * The connection is lost: an answer sent meanwhile goes to a server this client no longer
   * uses, so each request already sent waits `graceMs` more at most (a lost node is replaced
   * within that), then fails as lost. Until 2026-12-05 it waited out its whole timeout (5 s by
   * default), for a write applied or not alike.
   */
  lost(graceMs: number): void {
    const by = performance.now() + graceMs;
    for (const waiting of this.#waiting.values()) {
      waiting.expires = Math.min(waiting.due, by);
      waiting.lost = true;
    }
    if (this.#waiting.size && by < this.#timerAt) this.#arm(by);
  }

  /** Back within the grace: each request waits for its answer as long as it was going to. */
  regained(): void {
    for (const waiting of this.#waiting.values()) {
      waiting.expires = waiting.due;
      waiting.lost = false;
    }
  }

  #settle(msg: Msg): void {
    const token = msg.subject.slice(this.#inbox.length);
    const waiting = this.#waiting.get(token);
    if (!waiting) return;
    this.#forget(token);
    // The server's answer when nobody listens on the subject (no_responders).
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      waiting.reject(new natsErrors.NoRespondersError(waiting.subject));
    } else waiting.resolve(msg);
  }

  /** Drops an answered or failed request; the timer goes with the last one (nothing to time). */
  #forget(token: string): void {
    this.#waiting.delete(token);
    if (this.#waiting.size === 0) this.#disarm();
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    // Rounded up: a timer may not fire before the soonest request has really expired. At least
    // 0: a time already past (armed late, around a reconnect) printed a TimeoutNegativeWarning.
    const delay = Math.max(0, Math.ceil(at - performance.now()));
    this.#timer = setTimeout(() => this.#expire(), delay);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Fails every request past its time, then arms the timer for the soonest of the others. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let soonest = Infinity;
    for (const [token, waiting] of this.#waiting) {
      if (waiting.expires <= now) {
        this.#waiting.delete(token);
        waiting.reject(
          waiting.lost ? new AnswerLostError("connection lost") : new natsErrors.TimeoutError(),
        );
      } else if (waiting.expires < soonest) soonest = waiting.expires;
    }
    if (soonest !== Infinity) this.#arm(soonest);
  }

  #failAll(): void {
    this.closed = true;
    this.#disarm();
    for (const waiting of this.#waiting.values()) {
      waiting.reject(new natsErrors.RequestError("connection closed"));
    }
    this.#waiting.clear();
  }
}
