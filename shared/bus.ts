/**
 * The one bus helper: services serve endpoints, the gateway and services request them. The serving
 * side checks payloads with the endpoint's schemas (each request it receives, each answer before
 * it leaves), endpoints listen in a queue group (so N instances share the load), and failures come
 * back as the typed errors of errors.ts.
 *
 * Wire format: a JSON payload; every reply carries a `Status` header. Errors carry the NATS
 * services headers (`Nats-Service-Error-Code`, `Nats-Service-Error`) and a JSON:API errors
 * document. Services answer `$SRV.PING|INFO|STATS` like the NATS services API, with the bus
 * prefix in their metadata so several systems can share one NATS server; `STATS` also carries the
 * process's metrics (shared/metrics.ts), which the gateway's `/metrics` gathers. Every request is
 * counted on both sides and, with OTEL_DENO=true, traced (shared/bus_telemetry.ts).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { Bus, defineEndpoint, route } from "@shared/bus.ts";
 * const echo = defineEndpoint("demo.echo", {
 *   request: z.object({ text: z.string() }),
 *   response: z.string(),
 * });
 * const bus = await Bus.connect({ url: "nats://127.0.0.1:4222", prefix: "demo" });
 * const service = bus.serve({ name: "demo", version: "1.0.0" }, [
 *   route(echo, ({ text }) => text.toUpperCase()),
 * ]);
 * console.log(await bus.request(echo, { text: "hi" })); // "HI"
 * await service.stop();
 * await bus.close();
 * ```
 */
import {
  createInbox,
  errors as natsErrors,
  headers as natsHeaders,
  nuid,
} from "@nats-io/nats-core";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "@nats-io/nats-core";
import { connectNats } from "./nats_transport.ts";
import { fitToBus, ReplyTooLargeError } from "./reply_size.ts";
import { parseNatsServers } from "./config.ts";
import {
  ApiError,
  errorDocumentOf,
  errorFromObjects,
  type ErrorObject,
  GatewayTimeoutError,
  InternalError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  toErrorObjects,
  UnreadableBusRequestError,
  type WritePrecondition,
} from "./errors.ts";
import type { ForeignRelation, HttpReply, HttpRequest } from "./schemas/http.ts";
import { createLogger, type Logger } from "./log.ts";
import {
  clientMeter,
  endBusSpan,
  EndpointMeter,
  startClientSpan,
  startServerSpan,
} from "./bus_telemetry.ts";
import { type ConnectionMeter, meterConnection } from "./bus_metrics.ts";
import { metrics } from "./metrics.ts";
import { tracing, withContext } from "./telemetry.ts";
import {
  CACHE_EXPIRES_HEADER,
  CACHE_TAGS_HEADER,
  cacheHeaders,
  type EndpointCache,
} from "./cache_tags.ts";
import {
  currentDeadline,
  DEADLINE_HEADER,
  deadlineError,
  parseDeadline,
  withDeadline,
} from "./deadline.ts";

/**
 * What checks a payload; a zod schema is one. Structural, so that this module, which the gateway
 * loads, loads no zod: zod and the schemas cost an idle gateway ~10 MiB of the memory its cache
 * needs (README, "Benchmark").
 */
export interface Schema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: unknown };
}

/** What an endpoint reads and, for `rpc` endpoints, what it answers. */
export interface EndpointSchemas<Req, Res> {
  request: Schema<Req>;
  response?: Schema<Res>;
}

/** A named request/reply capability: its subject (without the bus prefix) and its schemas. */
export interface Endpoint<Req, Res> {
  readonly subject: string;
  readonly kind: "rpc" | "http";
  /**
   * Its schemas, loaded once, when a service serves it. Only the serving side checks (each request
   * it receives, each answer before it leaves), so a requester such as the gateway never loads
   * them; both sides share the contract that declares the endpoint.
   */
  readonly schemas: () => Promise<EndpointSchemas<Req, Res>>;
  /** How replies are tagged for the gateway's cache (http endpoints their contract marks). */
  readonly cache?: EndpointCache;
  /**
   * An `rpc` endpoint whose answer is what a client's read asked for (a page of a related list
   * another service serves): an answer too large for the bus is then the client's 400 saying how
   * to ask for less, as on an `http` endpoint, not a 500.
   */
  readonly readForClient?: boolean;
}

/**
 * An endpoint answering a typed request with a typed, checked answer. Give the schemas, or a
 * function that imports them where a module the gateway loads declares the endpoint (contracts).
 */
export function defineEndpoint<Req, Res>(
  subject: string,
  schemas:
    | Required<EndpointSchemas<Req, Res>>
    | (() => Promise<Required<EndpointSchemas<Req, Res>>>),
  options: { readForClient?: boolean } = {},
): Endpoint<Req, Res> {
  const load = typeof schemas === "function" ? schemas : () => Promise.resolve(schemas);
  const endpoint = { subject, kind: "rpc" as const, schemas: loadedOnce(load) };
  return options.readForClient ? { ...endpoint, readForClient: true } : endpoint;
}

/** Every HTTP endpoint reads the request the gateway forwards (shared/schemas/http.ts). */
const httpSchemas = loadedOnce(async (): Promise<EndpointSchemas<HttpRequest, HttpReply>> => {
  const { httpRequestSchema } = await import("./schemas/http.ts");
  return { request: httpRequestSchema };
});

/** An endpoint that answers one HTTP request forwarded by the gateway. */
export function httpEndpoint(
  subject: string,
  cache?: EndpointCache,
): Endpoint<HttpRequest, HttpReply> {
  return { subject, kind: "http", schemas: httpSchemas, cache };
}

/** `load`, called the first time only; later calls share its promise. */
function loadedOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => loading ??= load();
}

export type Handler<Req, Res> = (payload: Req, msg: Msg) => Res | Promise<Res>;

/**
 * An endpoint with the function that serves it. A service's route list mixes request and reply
 * types, so they are erased here (`any`: TypeScript has no existential types); `route()` is the
 * one way to build a Route and checks that the handler fits its endpoint.
 */
export interface Route {
  // deno-lint-ignore no-explicit-any
  endpoint: Endpoint<any, any>;
  // deno-lint-ignore no-explicit-any
  handler: Handler<any, any>;
}

export function route<Req, Res>(endpoint: Endpoint<Req, Res>, handler: Handler<Req, Res>): Route {
  return { endpoint, handler };
}

export interface ServiceInfo {
  name: string;
  version: string;
  description?: string;
  /**
   * What keeps this instance from serving (its database does not answer, say), asked at each
   * discovery ping: the gateway's `/health` reports a service none of whose instances is free of
   * problems as impaired, since it answers pings while every request it gets fails.
   */
  problems?: () => Promise<string[]>;
}

/** One instance as discovery reports it. */
export interface ServiceIdentity {
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
  /** What keeps the instance from serving (see ServiceInfo.problems), when anything does. */
  problems?: string[];
}

export interface EndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
}

export interface RunningService {
  readonly id: string;
  stats(): EndpointStats[];
  /** Stops taking requests, waits for the ones in flight, then returns. */
  stop(): Promise<void>;
}

/** The raw answer to a forwarded HTTP request: status, location and the body's bytes. */
export interface ForwardedReply {
  status: number;
  location?: string;
  /** Set when the body still needs resources from other services (see HttpReply). */
  foreignIncludes?: Record<string, string[]>;
  /** Set when the body still needs relationships other services own (see HttpReply). */
  foreignRelations?: ForeignRelation[];
  /**
   * Set when the service marked the reply for the gateway's cache: the tags of a public read
   * (which makes it cacheable) or of what a write touched (see shared/cache_tags.ts).
   */
  cacheTags?: string[];
  /** When a cacheable reply stops being true on its own (ms since epoch). */
  cacheExpires?: number;
  body: Uint8Array;
}

export interface BusOptions {
  /** One NATS URL or a comma-separated list (NATS_URL); reconnects cycle through all of them. */
  url: string;
  prefix: string;
  /** Replicas of the facts and parked streams this bus creates (FACTS_REPLICAS, default 1). */
  factsReplicas?: number;
  /** Connection name shown by the NATS server. */
  name?: string;
  logger?: Logger;
}

export interface RequestOptions {
  /** How long to wait; never past the deadline of the request being served (shared/deadline.ts). */
  timeoutMs?: number;
  /** A client's `Idempotency-Key`, for the owning service (shared/idempotency.ts). */
  idempotencyKey?: string;
  /**
   * The write's precondition that failed at the gateway: its service answers it from its key's
   * stored answer (a retry of a change already made) or with 412, never by running it.
   */
  preconditionFailed?: WritePrecondition;
}

const loggedElsewhere = new WeakSet<object>();

/**
 * Marks an error whose cause is already logged once for all requests it fails (a lost
 * database: shared/db.ts), so serving does not log it again per request.
 */
export function loggedOnce<E extends object>(error: E): E {
  loggedElsewhere.add(error);
  return error;
}

/** The bus header carrying a client's `Idempotency-Key` to the service that owns the change. */
export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/** The bus header naming a write's failed precondition (`RequestOptions.preconditionFailed`). */
export const PRECONDITION_FAILED_HEADER = "Precondition-Failed";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const QUEUE_GROUP = "q";
const DEFAULT_TIMEOUT_MS = 5000;
/** NATS's own default `max_payload`, for a connection that has not said its server's. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** How often the client pings its server, and how many pings may go unanswered (see connect). */
const PING_INTERVAL_MS = 1000;
const MAX_PINGS_OUT = 2;
/** How long a request waits for a lost connection to NATS to come back before it is a 503. */
const RECONNECT_GRACE_MS = 1000;
/** How long connecting to one server (TCP, INFO, CONNECT) may take before the next is tried. */
const CONNECT_TIMEOUT_MS = 2000;
/** Room for the headers of a request (deadline, idempotency key, tracing) within max_payload. */
const HEADER_ALLOWANCE = 1024;

function errorDocument(objects: ErrorObject[]): Uint8Array {
  return encoder.encode(JSON.stringify(errorDocumentOf(objects)));
}

function causeChain(error: unknown): unknown[] {
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
function translateRequestError(error: unknown, subject: string): ApiError {
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
  if (chain.some((e) => e instanceof natsErrors.TimeoutError)) {
    return new GatewayTimeoutError(`Cannot reach ${subject}: the service did not answer in time`, {
      cause: error,
    });
  }
  return new ServiceUnavailableError(`Cannot reach ${subject}: the bus is unavailable`, {
    cause: error,
  });
}

/** What the bus reads from a reply's headers (absent when the reply has none of them). */
type ReplyHeaders = Omit<ForwardedReply, "body">;

/**
 * A reply's headers in one pass. nats-core's `MsgHdrs.get` copies and filters every key on each
 * call, and a forwarded reply was asked for six of them: ~10 % of what the gateway allocated per
 * signed-in request. Keys match exactly, as `get` matches them by default.
 */
function readReplyHeaders(headers: MsgHdrs | undefined): ReplyHeaders {
  const read: ReplyHeaders = { status: 200 };
  if (!headers) return read;
  for (const [key, values] of headers) {
    const value = values[0] ?? "";
    switch (key) {
      case "Status": {
        const status = Number(value || 200);
        read.status = Number.isInteger(status) ? status : 500;
        break;
      }
      case "Location":
        if (value) read.location = value;
        break;
      case "Foreign-Includes":
        if (value) read.foreignIncludes = JSON.parse(value);
        break;
      case "Foreign-Relations":
        if (value) read.foreignRelations = JSON.parse(value);
        break;
      case CACHE_TAGS_HEADER:
        read.cacheTags = value ? value.split(" ") : [];
        break;
      case CACHE_EXPIRES_HEADER:
        if (value) read.cacheExpires = Number(value);
        break;
    }
  }
  return read;
}

function parseJson(data: Uint8Array): unknown {
  return data.length === 0 ? undefined : JSON.parse(decoder.decode(data));
}

/**
 * Whether the connection to NATS is up, as its status events tell (`follow`). While it is down a
 * request does not wait in nats.js's reconnect buffer for its whole timeout: it waits at most
 * RECONNECT_GRACE_MS for the connection to come back (a node lost in a cluster is replaced within
 * a few hundred milliseconds), then fails with 503 (`Bus.#send`).
 */
class Link {
  /** Resolved when the connection is back; undefined while it is up. */
  #back: PromiseWithResolvers<void> | undefined;

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
   * Follows the connection's status, logging and counting (shared/bus_metrics.ts) losing and
   * regaining NATS once per transition (nats.js reports every failed reconnect attempt too; those
   * stay quiet). Ends when the connection closes.
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
        log.warn("lost NATS; reconnecting", { server });
      } else if (status.type === "reconnect" && this.down) {
        this.#back!.resolve();
        this.#back = undefined;
        meter.back();
        on.back();
        log.info("NATS is back", { server });
      }
    }
  }
}

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
class Replies {
  readonly #inbox: string;
  readonly #waiting = new Map<string, Waiting>();
  #next = 0;
  #timer?: ReturnType<typeof setTimeout>;
  /** When the timer fires (Infinity while it is not armed). */
  #timerAt = Infinity;
  /** Set when the inbox's subscription has ended: the next request makes a new inbox. */
  closed = false;

  constructor(readonly nc: NatsConnection) {
    this.#inbox = `${createInbox()}.`;
    const sub = nc.subscribe(`${this.#inbox}*`, {
      // An error here (a permission violation) closes the subscription: #failAll answers.
      callback: (error, msg) => {
        if (!error) this.#settle(msg);
      },
    });
    sub.closed.then(() => this.#failAll());
  }

  request(subject: string, data: Uint8Array, options: { timeout: number; headers: MsgHdrs }) {
    const token = (this.#next++).toString(36);
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
    // Rounded up: a timer may not fire before the soonest request has really expired.
    this.#timer = setTimeout(() => this.#expire(), Math.ceil(at - performance.now()));
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

export class Bus {
  readonly nc: NatsConnection;
  readonly prefix: string;
  /** Replicas of the facts and parked streams (see BusOptions). */
  readonly factsReplicas: number;
  readonly #log: Logger;
  readonly #link = new Link();
  #replies?: Replies;

  constructor(
    nc: NatsConnection,
    options: { prefix: string; logger?: Logger; factsReplicas?: number },
  ) {
    this.nc = nc;
    this.prefix = options.prefix;
    this.factsReplicas = options.factsReplicas ?? 1;
    this.#log = options.logger ?? createLogger("bus");
    this.#link.follow(nc, this.#log, meterConnection(nc), {
      lost: () => this.#replies?.lost(RECONNECT_GRACE_MS),
      back: () => this.#replies?.regained(),
    }).catch(() => {});
  }

  /** Whether the connection to NATS is lost right now (nats.js is reconnecting). */
  get reconnecting(): boolean {
    return this.#link.down;
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const nc = await connectNats({
      // A list, not the raw string: nats.js would read "a,b" as one URL and keep only "b".
      servers: parseNatsServers(options.url),
      name: options.name,
      maxReconnectAttempts: -1,
      // After losing a node, try the next server soon (the default waits 2 s per server).
      reconnectTimeWait: 250,
      // A node that hangs (paused, swapping, a network that drops packets without a reset)
      // keeps the connection open: only unanswered pings tell. With nats.js's defaults (a ping
      // every 2 minutes, 2 may go unanswered) every request failed for over five minutes before
      // the client moved to a healthy node; now it leaves within ~3 s, and a hung node it tries
      // again on the way (it still accepts connections, but sends no INFO) costs it 2 s, not the
      // default 20: within 3–5 s in all (testing/bus_nodes_test.ts).
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      timeout: CONNECT_TIMEOUT_MS,
      // Capturing a stack per request (in case it times out) cost ~15% of the gateway's CPU;
      // our timeouts become 504s whose stack nobody reads.
      noAsyncTraces: true,
    });
    return new Bus(nc, options);
  }

  /** The full subject of an endpoint or fact on this bus. */
  subject(name: string): string {
    return `${this.prefix}.${name}`;
  }

  /**
   * Sends a typed request and returns the answer, or throws the typed error. The serving side has
   * checked both against the endpoint's schemas: a request it cannot read comes back as our own
   * bug (500), never as the HTTP client's.
   */
  async request<Req, Res>(
    endpoint: Endpoint<Req, Res>,
    payload: Req,
    options: RequestOptions = {},
  ): Promise<Res> {
    const { reply, status } = await this.#send(endpoint.subject, payload, options);
    const body = parseJson(reply.data);
    if (status >= 400) {
      const objects = (body as { errors?: ErrorObject[] })?.errors ?? [];
      // The other service could not read what we sent: our bug, not the HTTP client's (400).
      if (objects[0]?.code === UnreadableBusRequestError.CODE) {
        throw new InternalError(`Cannot request ${endpoint.subject}: ${objects[0].detail}`);
      }
      throw errorFromObjects(objects);
    }
    return body as Res;
  }

  /**
   * Forwards an HTTP request and returns the reply's bytes untouched: the gateway relays them
   * without decoding, which is most of why the bus path is nearly as fast as a direct call.
   */
  async forward(
    endpoint: Endpoint<HttpRequest, HttpReply>,
    request: HttpRequest,
    options: RequestOptions = {},
  ): Promise<ForwardedReply> {
    const { reply, ...read } = await this.#send(endpoint.subject, request, options);
    return { ...read, body: reply.data };
  }

  /**
   * Every request carries its absolute deadline: the sooner of its own timeout and the deadline
   * of the request being served, so a chain of services never outlives the gateway's wait.
   */
  async #send(
    subject: string,
    payload: unknown,
    options: RequestOptions,
  ): Promise<ReplyHeaders & { reply: Msg }> {
    const full = this.subject(subject);
    const inherited = currentDeadline() ?? Infinity;
    const deadline = Math.min(Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS), inherited);
    if (this.#link.down) await this.#awaitLink(subject, deadline);
    const now = Date.now();
    if (deadline <= now) throw deadlineError(`request ${subject}`);
    const headers = natsHeaders();
    headers.set(DEADLINE_HEADER, String(deadline));
    if (options.idempotencyKey) headers.set(IDEMPOTENCY_HEADER, options.idempotencyKey);
    if (options.preconditionFailed) {
      headers.set(PRECONDITION_FAILED_HEADER, options.preconditionFailed);
    }
    const data = this.#fitting(encoder.encode(JSON.stringify(payload)), subject);
    const meter = clientMeter(subject);
    const began = meter.start();
    const span = tracing ? startClientSpan(subject, full, headers) : undefined;
    try {
      if (!this.#replies || this.#replies.closed) this.#replies = new Replies(this.nc);
      const reply = await this.#replies.request(full, data, { timeout: deadline - now, headers });
      const read = readReplyHeaders(reply.headers);
      meter.finish(began, read.status);
      if (span) endBusSpan(span, "client", read.status);
      return { ...read, reply };
    } catch (error) {
      const failure = translateRequestError(error, subject);
      meter.finish(began, failure.status);
      if (span) endBusSpan(span, "client", failure.status, failure);
      throw failure;
    }
  }

  /** Waits a moment for a lost connection to come back; a 503 when it does not. */
  async #awaitLink(subject: string, deadline: number): Promise<void> {
    const graceMs = Math.min(RECONNECT_GRACE_MS, deadline - Date.now());
    if (graceMs > 0 && await this.#link.upWithin(graceMs)) return;
    throw new ServiceUnavailableError(
      `Cannot reach ${subject}: the bus is unavailable (reconnecting to NATS)`,
    );
  }

  /**
   * A request larger than the server carries (`max_payload`, 1 MiB by default) is the client's
   * 413, not a bus outage: the body the gateway accepted grows when it is wrapped and escaped.
   */
  #fitting(data: Uint8Array, subject: string): Uint8Array {
    const max = this.nc.info?.max_payload;
    if (max !== undefined && data.length + HEADER_ALLOWANCE > max) {
      throw new PayloadTooLargeError(
        `Cannot send ${subject}: the request is larger than the bus carries (${max} bytes)`,
      );
    }
    return data;
  }

  /** Serves the routes in queue groups and answers discovery; returns a handle to stop it. */
  serve(info: ServiceInfo, routes: Route[]): RunningService {
    const id = nuid.next();
    const started = new Date().toISOString();
    const metadata = { prefix: this.prefix };
    const identity = { name: info.name, id, version: info.version, metadata };
    const inFlight = new Set<Promise<void>>();
    const stats = new Map<string, EndpointStats>();
    const subscriptions = routes.map((route) => this.#serveRoute(route, stats, inFlight));

    const discovery = (verb: string, body: () => unknown) =>
      subscriptions.push(...this.#answerDiscovery(verb, info.name, id, body));
    discovery("PING", async () => {
      const problems = await info.problems?.() ?? [];
      const ping = { type: "io.nats.micro.v1.ping_response", ...identity };
      return problems.length ? { ...ping, problems } : ping;
    });
    discovery("INFO", () => ({
      type: "io.nats.micro.v1.info_response",
      ...identity,
      description: info.description ?? "",
      endpoints: [...stats.values()].map((s) => ({
        name: s.name,
        subject: s.subject,
        queue_group: s.queue_group,
      })),
    }));
    // Beside the standard endpoint figures, the process's whole registry (shared/metrics.ts):
    // what the gateway's /metrics renders, labelled with this service and instance.
    discovery("STATS", async () => ({
      type: "io.nats.micro.v1.stats_response",
      ...identity,
      started,
      endpoints: [...stats.values()],
      metrics: await metrics.snapshot(),
    }));

    return {
      id,
      stats: () => [...stats.values()],
      stop: async () => {
        await Promise.all(subscriptions.map((sub) => sub.drain().catch(() => {})));
        await Promise.all([...inFlight]);
      },
    };
  }

  /**
   * Subscribes one route in the queue group, registering its figures in `stats`; each answer
   * stays in `inFlight` until it is sent, so stopping can wait for it.
   */
  #serveRoute(
    { endpoint, handler }: Route,
    stats: Map<string, EndpointStats>,
    inFlight: Set<Promise<void>>,
  ): Subscription {
    const subject = this.subject(endpoint.subject);
    const stat: EndpointStats = {
      name: endpoint.subject.replaceAll(".", "-"),
      subject,
      queue_group: QUEUE_GROUP,
      num_requests: 0,
      num_errors: 0,
      last_error: "",
      processing_time: 0,
      average_processing_time: 0,
    };
    stats.set(subject, stat);
    const meter = new EndpointMeter("server", endpoint.subject);
    const log = this.#log;
    const maxPayload = () => this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    // Loaded now, not at the first request; a failure to load fails each request (500, logged).
    const schemas = endpoint.schemas();
    schemas.catch(() => {});
    return this.nc.subscribe(subject, {
      queue: QUEUE_GROUP,
      callback: (error, msg) => {
        if (error) return log.error("subscription failed", { subject, error });
        const served = { endpoint, schemas, handler, stat, meter, log, maxPayload };
        const work = answer(served, msg);
        inFlight.add(work);
        work.finally(() => inFlight.delete(work));
      },
    });
  }

  /**
   * Answers a discovery verb (`$SRV.PING` …) for every service, for this one by name, and for this
   * instance by id (as the NATS services API does: the gateway's /health asks an instance it gave
   * up on so, and a "no responders" tells it the instance is gone, not frozen).
   */
  #answerDiscovery(verb: string, name: string, id: string, body: () => unknown): Subscription[] {
    return [`$SRV.${verb}`, `$SRV.${verb}.${name}`, `$SRV.${verb}.${name}.${id}`].map((subject) =>
      this.nc.subscribe(subject, {
        callback: (_error, msg) => {
          Promise.resolve(body()).then((answer) =>
            msg.respond(encoder.encode(JSON.stringify(answer)))
          ).catch((error) => this.#log.warn("cannot answer discovery", { verb, error }));
        },
      })
    );
  }

  /** Every running instance of `name` on this bus prefix (waits briefly for answers). */
  async discover(name: string, options: { maxWaitMs?: number } = {}): Promise<ServiceIdentity[]> {
    const found: ServiceIdentity[] = [];
    try {
      const replies = await this.nc.requestMany(`$SRV.PING.${name}`, undefined, {
        strategy: "stall",
        stall: 50,
        maxWait: options.maxWaitMs ?? 500,
      } as never);
      for await (const msg of replies) {
        const identity = parseJson(msg.data) as ServiceIdentity;
        if (identity?.metadata?.prefix === this.prefix) found.push(identity);
      }
    } catch (error) {
      if (!causeChain(error).some((e) => e instanceof natsErrors.NoRespondersError)) throw error;
    }
    return found;
  }

  /**
   * Drains the connection: pending messages are delivered, then it closes. While NATS is away
   * there is nothing to drain to (nats.js rejects the drain), so the connection is closed as it
   * stands: what was not sent is lost as it would be anyway, and a process stopping during an
   * outage still exits cleanly, closing what it holds after the bus.
   */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch (error) {
      this.#log.warn("cannot drain the NATS connection; closing it without", { error });
      if (!this.nc.isClosed()) await this.nc.close();
    }
  }
}

/** The NATS headers of an HTTP reply: status, location, what the gateway must still merge. */
function setHttpHeaders(headers: MsgHdrs, http: HttpReply): void {
  headers.set("Status", String(http.status));
  if (http.location) headers.set("Location", http.location);
  if (http.foreignIncludes && Object.keys(http.foreignIncludes).length) {
    headers.set("Foreign-Includes", JSON.stringify(http.foreignIncludes));
  }
  if (http.foreignRelations?.length) {
    headers.set("Foreign-Relations", JSON.stringify(http.foreignRelations));
  }
}

function setAll(headers: MsgHdrs, values: Record<string, string> | undefined): void {
  for (const [name, value] of Object.entries(values ?? {})) headers.set(name, value);
}

interface Served {
  // deno-lint-ignore no-explicit-any
  endpoint: Endpoint<any, any>;
  schemas: Promise<EndpointSchemas<unknown, unknown>>;
  // deno-lint-ignore no-explicit-any
  handler: Handler<any, any>;
  stat: EndpointStats;
  meter: EndpointMeter;
  log: Logger;
  /** The largest message the NATS server takes (`max_payload`), headers included. */
  maxPayload: () => number;
}

/** An answer ready to send: its status, headers and body. */
interface Outcome {
  status: number;
  headers: MsgHdrs;
  body: Uint8Array;
  error?: unknown;
}

/** Serves one request: counts it, traces it (OTEL_DENO=true), answers it. */
async function answer(served: Served, msg: Msg): Promise<void> {
  const { endpoint, stat, meter } = served;
  const began = meter.start();
  stat.num_requests++;
  let outcome: Outcome;
  if (tracing) {
    const { span, ctx } = startServerSpan(endpoint.subject, msg.subject, msg.headers);
    outcome = await withContext(ctx, () => outcomeOf(served, msg));
    endBusSpan(span, "server", outcome.status, outcome.error);
  } else {
    outcome = await outcomeOf(served, msg);
  }
  const elapsedNs = Math.round(meter.finish(began, outcome.status) * 1e6);
  stat.processing_time += elapsedNs;
  stat.average_processing_time = Math.round(stat.processing_time / stat.num_requests);
  if (!msg.reply) return;
  try {
    msg.respond(outcome.body, { headers: outcome.headers });
  } catch (error) {
    // Nothing may escape: a rejection here is unhandled and would stop the process.
    served.log.error("cannot answer", { subject: endpoint.subject, error });
  }
}

/** Runs the handler within the request's deadline and turns its result or error into an answer. */
async function outcomeOf(served: Served, msg: Msg): Promise<Outcome> {
  const { endpoint, handler, stat, log } = served;
  const reply = natsHeaders();
  let request: unknown;
  try {
    const schemas = await served.schemas;
    // A requester that sends no deadline (a client of the bus API other than ours) gets the
    // bus's default timeout as one: without any, a change could be made long after it gave up
    // (a reservation behind a lock, applied after its 1 s timeout, in a review).
    const deadline = parseDeadline(msg.headers?.get(DEADLINE_HEADER)) ??
      Date.now() + DEFAULT_TIMEOUT_MS;
    // The requester has given up (a backlog, a stalled process): the work would be wasted, and a
    // change made now would contradict the 504 the client already has.
    if (Date.now() >= deadline) throw deadlineError("start the work");
    let payload: unknown;
    try {
      payload = parseJson(msg.data);
    } catch (cause) {
      throw new UnreadableBusRequestError("Cannot read the bus request: it is not JSON", { cause });
    }
    request = checkedRequest(endpoint.subject, schemas, payload);
    const result = await withDeadline(deadline, () => handler(request, msg));
    const http = endpoint.kind === "http"
      ? request as HttpRequest
      : endpoint.readForClient
      ? { method: "GET" }
      : undefined;
    const encoded = encodeResult(endpoint, schemas, result, reply, request);
    return fitToBus(encoded, { limit: served.maxPayload(), http });
  } catch (error) {
    const objects = toErrorObjects(error);
    const status = objects[0].status;
    logFailure(log, error, { subject: endpoint.subject, status, request: request ?? msg.data });
    stat.num_errors++;
    stat.last_error = `${status}:${objects[0].title}`;
    // Headers of its own: a success refused after it was encoded (too large for the bus) had
    // written its cache tags and merges, and the gateway cached the error (found by a review).
    const reply = natsHeaders();
    reply.set("Status", status);
    reply.set("Nats-Service-Error-Code", status);
    reply.set("Nats-Service-Error", objects[0].title);
    const body = errorDocument(objects);
    // A public read's 404 is cacheable too: what it lacks is named by its path.
    if (status === "404" && endpoint.cache && request) {
      setAll(reply, cacheHeaders(endpoint.cache, request as HttpRequest, { status: 404, body }));
    }
    return { status: Number(status), headers: reply, body, error };
  }
}

/**
 * Logs a request that failed, at the level an operator acts on: a 4xx is the requester's doing
 * (a missing resource, a wrong password), answered as it should be and shown by the gateway's
 * access line, so debug; an unreadable bus request is a process's bug (warn); a 5xx or an
 * unknown error is an error. A deadline (504) or an outage logged once where it was noticed (a
 * lost database) fails every request alike: not one line per request. The HTTP request's
 * `requestId` joins the line to the gateway's access line.
 */
function logFailure(
  log: Logger,
  error: unknown,
  options: { subject: string; status: string; request: unknown },
): void {
  const { subject, status } = options;
  const isApi = error instanceof ApiError;
  if (isApi && (status === "504" || loggedElsewhere.has(error))) return;
  const requestId = requestIdOf(options.request);
  const fields = { subject, status: Number(status), error, ...(requestId && { requestId }) };
  if (!isApi || Number(status) >= 500) log.error("request failed", fields);
  else if (error instanceof UnreadableBusRequestError) log.warn("request unreadable", fields);
  // The operator's to see: the data outgrew the bus (raise NATS max_payload, or page it).
  else if (error instanceof ReplyTooLargeError) log.warn("answer too large for the bus", fields);
  else log.debug("request refused", fields);
}

/** The `requestId` an HTTP request payload carries (also from one that did not parse). */
function requestIdOf(request: unknown): string | undefined {
  if (request instanceof Uint8Array) {
    try {
      request = parseJson(request);
    } catch {
      return undefined;
    }
  }
  const id = (request as { requestId?: unknown } | null)?.requestId;
  return typeof id === "string" && id.length <= 200 ? id : undefined;
}

/** The request as the endpoint's schema reads it. */
function checkedRequest(
  subject: string,
  schemas: EndpointSchemas<unknown, unknown>,
  payload: unknown,
): unknown {
  const checked = schemas.request.safeParse(payload);
  if (!checked.success) {
    throw new UnreadableBusRequestError(`Cannot read the bus request for ${subject}`, {
      cause: checked.error,
    });
  }
  return checked.data;
}

/** The answer of a handler that returned: an HTTP reply's status and headers, or a value. */
function encodeResult(
  // deno-lint-ignore no-explicit-any
  endpoint: Endpoint<any, any>,
  schemas: EndpointSchemas<unknown, unknown>,
  result: unknown,
  reply: MsgHdrs,
  request: unknown,
): Outcome {
  if (endpoint.kind === "http") {
    const http = result as HttpReply;
    setHttpHeaders(reply, http);
    if (endpoint.cache) setAll(reply, cacheHeaders(endpoint.cache, request as HttpRequest, http));
    return { status: http.status, headers: reply, body: encoder.encode(JSON.stringify(http.body)) };
  }
  const checked = schemas.response?.safeParse(result) ?? { success: true, data: result };
  if (!checked.success) {
    throw new InternalError(`Cannot answer ${endpoint.subject}: the answer does not fit`, {
      cause: checked.error,
    });
  }
  const out = checked.data;
  reply.set("Status", "200");
  return { status: 200, headers: reply, body: encoder.encode(JSON.stringify(out ?? null)) };
}
