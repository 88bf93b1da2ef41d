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
 * Endpoints and routes are declared with shared/bus_endpoints.ts; a request's waiting and its
 * failures are shared/bus_replies.ts; serving one request is shared/bus_serving.ts.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { Bus } from "@shared/bus.ts";
 * import { defineEndpoint, route } from "@shared/bus_endpoints.ts";
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
import type {
  ConnectionOptions,
  Msg,
  MsgHdrs,
  NatsConnection,
  Subscription,
} from "@nats-io/nats-core";
import { connectNats } from "./nats_transport.ts";
import { parseNatsServers } from "./config.ts";
import {
  ApiError,
  errorFromObjects,
  type ErrorObject,
  InternalError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnreadableBusRequestError,
  type WritePrecondition,
} from "./errors.ts";
import type { ForeignRelation, HttpReply, HttpRequest } from "./schemas/http.ts";
import { createLogger, LinePace, type Logger } from "./log.ts";
import { clientMeter, endBusSpan, EndpointMeter, startClientSpan } from "./bus_telemetry.ts";
import { meterConnection } from "./bus_metrics.ts";
import { metrics } from "./metrics.ts";
import { tracing } from "./telemetry.ts";
import { CACHE_EXPIRES_HEADER, CACHE_TAGS_HEADER } from "./cache_tags.ts";
import {
  BUDGET_HEADER,
  currentDeadline,
  DEADLINE_HEADER,
  deadlineError,
  DEFAULT_BUS_TIMEOUT_MS,
  receivedDeadline,
} from "./deadline.ts";
import type { Endpoint, Route } from "./bus_endpoints.ts";
import { causeChain, Link, Replies, translateRequestError } from "./bus_replies.ts";
import {
  answer,
  loggedOnce,
  parseJson,
  READ_SNAPSHOT_HEADER,
  RETRY_AFTER_HEADER,
  retryAfter,
} from "./bus_serving.ts";
import { Admission } from "./bus_admission.ts";
import { ClockSkewWatch } from "./clock_skew.ts";
import { closeConnection, JetStreamConnection } from "./bus_jetstream.ts";

/**
 * Where a service instance that stops says so (core NATS, under the bus prefix; a JSON
 * `{ name, id }`), once it no longer answers discovery: gateways' `/health` and `/metrics` stop
 * waiting for its answer at once (gateway/health.ts), where a silent one costs two checks their
 * whole wait (a scale-in review, 2026-12-06).
 */
export const INSTANCE_LEFT = "discovery.instance.left";

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
  /**
   * What discovery tells of this instance besides its bus prefix (which it always tells): the
   * catalog its JWT_SECRET's fingerprint (shared/secret_fingerprint.ts).
   */
  metadata?: Record<string, string>;
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

/** How often, at most, an instance refusing requests says so in its log. */
const BUSY_LOG_INTERVAL_MS = 10_000;

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
  /** An error's `Retry-After` in seconds (an instance too busy to serve the request in time). */
  retryAfter?: string;
  /** The database snapshot a read was answered under, when it was asked for (see HttpReply). */
  snapshot?: string;
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
  /** Requests `serve` runs at once (SERVE_CONCURRENCY; shared/bus_admission.ts). */
  serveConcurrency?: number;
  /** Bytes of requests that may wait for a turn before one is refused (MAX_WAITING_BYTES). */
  serveWaitingBytes?: number;
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
  /**
   * The request asks for a change: its timeout's 504 says the change may have been made (a
   * service may commit and then die or stall before its answer leaves).
   */
  change?: boolean;
}

/** The bus header carrying a client's `Idempotency-Key` to the service that owns the change. */
export const IDEMPOTENCY_HEADER = "Idempotency-Key";
/**
 * Set on a request a handler sends while serving one (another service asked back, such as the
 * catalog's include check asking discounts, which asks the catalog who the caller is): the
 * serving side runs it without waiting for a turn (shared/bus_admission.ts).
 */
export const NESTED_HEADER = "Oe-Nested";
/** The bus header naming a write's failed precondition (`RequestOptions.preconditionFailed`). */
export const PRECONDITION_FAILED_HEADER = "Precondition-Failed";

const encoder = new TextEncoder();
const QUEUE_GROUP = "q";
/** NATS's own default `max_payload`, for a connection that has not said its server's. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** How often the client pings its server, and how many pings may go unanswered (see connect). */
const PING_INTERVAL_MS = 1000;
const MAX_PINGS_OUT = 2;
/** How long a request waits for a lost connection to NATS to come back before it is a 503. */
const RECONNECT_GRACE_MS = 1000;
/**
 * How long a request the server found nobody listening for is sent again. A service's only
 * instance moving to another node (its node in lame duck mode for an upgrade, or lost) is known to
 * no server for a few milliseconds: the requests of that moment answered 503 "no service instance
 * is running" at once (a lame-duck experiment, 2026-12-06: 12–88 per 30 moves of the only
 * responder under ~700 requests/s; 2 in 6,685 requests through the gateway over 10 lame-duck
 * drains). A service that is really absent answers 503 this much later.
 */
const NO_RESPONDERS_RETRY_MS = 250;
/** Where every requester's answers come (nats.js's default inbox and `inboxPrefixOf`'s). */
const REQUESTER_INBOX = "_INBOX.";
/** How often, at most, a message no requester sent is said to have been dropped (`#unasked`). */
const UNASKED_LOG_INTERVAL_MS = 60_000;
/** Between two tries of a request nobody listened for. */
const NO_RESPONDERS_PAUSE_MS = 50;
/** How long connecting to one server (TCP, INFO, CONNECT) may take before the next is tried. */
const CONNECT_TIMEOUT_MS = 2000;
/** Room for the headers of a request (deadline, idempotency key, tracing) within max_payload. */
const HEADER_ALLOWANCE = 1024;

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
      case READ_SNAPSHOT_HEADER:
        if (value) read.snapshot = value;
        break;
      case RETRY_AFTER_HEADER:
        if (/^\d{1,6}$/.test(value)) read.retryAfter = value;
        break;
    }
  }
  return read;
}

/**
 * Where a process's replies come: `_INBOX.<process>` (`_INBOX.catalog.<nuid>`...), so a NATS
 * user per process may be let subscribe to its own replies only (shared/nats_permissions.ts):
 * under one `_INBOX.>` any of them could read every answer on the bus, tokens included. Names
 * that are no plain subject token keep nats.js's `_INBOX`.
 */
export function inboxPrefixOf(name: string | undefined): string {
  return name !== undefined && /^[A-Za-z0-9_-]+$/.test(name) ? `_INBOX.${name}` : "_INBOX";
}

/**
 * How every connection of the bus is made: patient and watchful. `link` follows it once made, and
 * paces its reconnects meanwhile (`Link.reconnectDelay`).
 */
function connectionOptions(
  { servers, name, inboxPrefix, link }: {
    servers: string[];
    name: string | undefined;
    /** The process's (`inboxPrefixOf`), on both of its connections. */
    inboxPrefix: string;
    link: Link;
  },
): ConnectionOptions {
  return {
    // A list, not the raw string: nats.js would read "a,b" as one URL and keep only "b".
    servers,
    name,
    inboxPrefix,
    maxReconnectAttempts: -1,
    // Credentials refused while reconnecting do not end the connection for good either: the
    // server may take them again (Link.reconnectDelay). At start they still fail at once.
    ignoreAuthErrorAbort: true,
    reconnectDelayHandler: () => link.reconnectDelay(),
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
  };
}

export class Bus {
  readonly nc: NatsConnection;
  readonly prefix: string;
  /** Where this process's replies come (`inboxPrefixOf`). */
  readonly inboxPrefix: string;
  /** Replicas of the facts and parked streams (see BusOptions). */
  readonly factsReplicas: number;
  readonly #log: Logger;
  readonly #link: Link;
  readonly #serveLimits: { concurrency?: number; waitingBytes?: number };
  readonly #jetStream: JetStreamConnection;
  readonly #clocks: ClockSkewWatch;
  readonly #busySaid = new LinePace(BUSY_LOG_INTERVAL_MS);
  readonly #unaskedSaid = new LinePace(UNASKED_LOG_INTERVAL_MS);
  #replies?: Replies;

  /**
   * `servers`: the list `nc` was made with (the JetStream connection's too); `link`: the one its
   * options were made with (`connectionOptions`), if they were.
   */
  constructor(nc: NatsConnection, options: BusOptions, servers: string[], link = new Link()) {
    this.nc = nc;
    this.#link = link;
    this.inboxPrefix = inboxPrefixOf(options.name);
    this.prefix = options.prefix;
    this.factsReplicas = options.factsReplicas ?? 1;
    this.#serveLimits = {
      concurrency: options.serveConcurrency,
      waitingBytes: options.serveWaitingBytes,
    };
    this.#log = options.logger ?? createLogger("bus");
    this.#clocks = new ClockSkewWatch(this.#log);
    this.#jetStream = new JetStreamConnection(nc, {
      connect: (servers, name, link) =>
        connectNats(connectionOptions({ servers, name, inboxPrefix: this.inboxPrefix, link })),
      servers,
      name: options.name,
      log: this.#log,
    });
    this.#link.follow(nc, this.#log, meterConnection(nc), {
      lost: () => this.#replies?.lost(RECONNECT_GRACE_MS),
      back: () => this.#replies?.regained(),
    }).catch(() => {});
    // A test may close `nc` itself: the JetStream connection goes with it.
    nc.closed().then(() => this.#jetStream.close());
  }

  /**
   * The connection every JetStream request of this process goes on (fact publishes, consumers'
   * pulls and acks, stream and consumer management), not `nc`: a stalled store stalls whatever
   * connection sent it JetStream traffic (shared/bus_jetstream.ts).
   */
  jetStreamConnection(): Promise<NatsConnection> {
    return this.#jetStream.get();
  }

  /** A new subject for answers to this process (under its `inboxPrefix`). */
  newInbox(): string {
    return createInbox(this.inboxPrefix);
  }

  /** The logger this connection reports to (its process's): what it changes on the server. */
  get log(): Logger {
    return this.#log;
  }

  /** Whether the connection to NATS is lost right now (nats.js is reconnecting). */
  get reconnecting(): boolean {
    return this.#link.down;
  }

  /**
   * What keeps this connection from serving all it subscribed to: subscriptions the server refused
   * since it last connected (shared/bus_replies.ts `Link.refusedSubscriptions`). A discovery ping
   * reports it with the instance's own problems, so `/health` shows the instance impaired.
   */
  problems(): string[] {
    const refused = this.#link.refusedSubscriptions;
    return refused === 0 ? [] : [
      `NATS refused ${refused} of its subscriptions (maximum subscriptions exceeded): ` +
      "raise max_subscriptions (the server's, or its account's or user's)",
    ];
  }

  /**
   * Waits until the server has seen every subscription made so far, on both connections, and fails
   * when it refused any: at start, a process past its account's `max_subscriptions` would otherwise
   * say it is ready and answer 503 on some routes (a resource review, 2026-12-06: the catalog needs
   * 63), or take no facts. (Later refusals on the JetStream connection are logged, not reported as
   * the instance's problem: its consumers' subscriptions come and go, and one refused for a moment
   * would mark it impaired until that connection is made again.)
   */
  async confirmSubscriptions(): Promise<void> {
    await this.nc.flush();
    await this.#jetStream.flush();
    // The server's -ERRs come before its PONG; its status events reach `Link` a turn later.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const [problem] = this.problems();
    if (problem !== undefined) throw new Error(problem);
    const refused = this.#jetStream.refusedSubscriptions;
    if (refused > 0) {
      throw new Error(
        `NATS refused ${refused} of its JetStream connection's subscriptions (maximum ` +
          "subscriptions exceeded): raise max_subscriptions (the server's, or its account's or user's)",
      );
    }
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const servers = parseNatsServers(options.url);
    const link = new Link();
    const nc = await connectNats(
      connectionOptions({
        servers,
        name: options.name,
        inboxPrefix: inboxPrefixOf(options.name),
        link,
      }),
    );
    return new Bus(nc, options, servers, link);
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
      // The service that answered logged it (a lost database once, not per request): a caller
      // that logged it again wrote an error line per request while the catalog's Postgres was
      // away (a chaos review, 2026-12-06).
      throw loggedOnce(errorFromObjects(objects));
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
    const deadline = Math.min(
      Date.now() + (options.timeoutMs ?? DEFAULT_BUS_TIMEOUT_MS),
      inherited,
    );
    if (this.#link.down) await this.#awaitLink(subject, deadline);
    const now = Date.now();
    if (deadline <= now) throw deadlineError(`request ${subject}`);
    const headers = natsHeaders();
    headers.set(DEADLINE_HEADER, String(deadline));
    headers.set(BUDGET_HEADER, String(deadline - now));
    if (inherited !== Infinity) headers.set(NESTED_HEADER, "1");
    if (options.idempotencyKey) headers.set(IDEMPOTENCY_HEADER, options.idempotencyKey);
    if (options.preconditionFailed) {
      headers.set(PRECONDITION_FAILED_HEADER, options.preconditionFailed);
    }
    const data = this.#fitting(encoder.encode(JSON.stringify(payload)), subject);
    const meter = clientMeter(subject);
    const began = meter.start();
    const span = tracing ? startClientSpan(subject, full, headers) : undefined;
    try {
      const reply = await this.#sendUntilHeard({ subject, full, data, headers, deadline });
      const read = readReplyHeaders(reply.headers);
      meter.finish(began, read.status);
      if (span) endBusSpan(span, "client", read.status);
      return { ...read, reply };
    } catch (error) {
      // A resend's own refusal (no link back, the deadline passed) is already the client's error.
      const failure = error instanceof ApiError
        ? error
        : translateRequestError(error, subject, options.change === true);
      meter.finish(began, failure.status);
      if (span) endBusSpan(span, "client", failure.status, failure);
      throw failure;
    }
  }

  /**
   * Sends the request, and again while the server says nobody listens on its subject, for up to
   * NO_RESPONDERS_RETRY_MS: nobody got it, so even a write may be sent again.
   */
  async #sendUntilHeard(
    { subject, full, data, headers, deadline }: {
      subject: string;
      full: string;
      data: Uint8Array;
      headers: MsgHdrs;
      deadline: number;
    },
  ): Promise<Msg> {
    const giveUpAt = Math.min(deadline, Date.now() + NO_RESPONDERS_RETRY_MS);
    for (;;) {
      if (!this.#replies || this.#replies.closed) {
        this.#replies = new Replies(this.nc, this.inboxPrefix);
      }
      try {
        return await this.#replies.request(full, data, { timeout: deadline - Date.now(), headers });
      } catch (error) {
        if (!(error instanceof natsErrors.NoRespondersError)) throw error;
        if (Date.now() + NO_RESPONDERS_PAUSE_MS >= giveUpAt) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, NO_RESPONDERS_PAUSE_MS));
      if (this.#link.down) await this.#awaitLink(subject, deadline);
      // Past its deadline (the grace above may take it there), it is not sent: sent, it would be
      // a 504 that "may have been made" for a request nobody got.
      if (deadline <= Date.now()) throw deadlineError(`request ${subject}`);
      headers.set(BUDGET_HEADER, String(deadline - Date.now()));
    }
  }

  /**
   * A message on a served subject whose reply goes to no requester's inbox: not run. A service
   * whose NATS user may pull its own JetStream consumer can have the server deliver a stored
   * message of its making to any subject (a pull's reply subject is not checked against its
   * permissions): a request naming any actor, run by the service it reached though that NATS user
   * may not publish there (a review of shared/nats_permissions.ts, 2026-12-06: audit's message
   * reached the catalog's `users.update`). Such a message carries JetStream's ack subject as its
   * reply, or none. Logged at most once a minute.
   */
  #unasked(subject: string, reply: string | undefined): void {
    if (!this.#unaskedSaid.due()) return;
    this.#log.warn("a message no requester sent was not run (its reply is no inbox)", {
      subject,
      reply: reply ?? null,
    });
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
    const metadata = { ...info.metadata, prefix: this.prefix };
    const identity = { name: info.name, id, version: info.version, metadata };
    const inFlight = new Set<Promise<void>>();
    const stats = new Map<string, EndpointStats>();
    // One for all the routes: what bounds the process is its thread and its pool, not a route.
    const admission = new Admission(this.#serveLimits.concurrency, this.#serveLimits.waitingBytes);
    // Discovery first: where the server refuses some subscriptions (its max_subscriptions), those
    // it took first still answer /health, which then names the refusal (`problems`).
    const subscriptions: Subscription[] = [];
    // Answers begun and not yet sent: stopping says it left only after them.
    const answering = new Set<Promise<void>>();
    const discovery = (verb: string, body: () => unknown) =>
      subscriptions.push(...this.#answerDiscovery(verb, { name: info.name, id, answering }, body));
    discovery("PING", async () => {
      const problems = [...await info.problems?.() ?? [], ...this.problems()];
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
    subscriptions.push(
      ...routes.map((route) =>
        this.#serveRoute(route, { stats, inFlight, admission, service: info.name })
      ),
    );

    return {
      id,
      stats: () => [...stats.values()],
      stop: async () => {
        await Promise.all(subscriptions.map((sub) => sub.drain().catch(() => {})));
        await Promise.all([...answering]);
        this.#left(info.name, id);
        await Promise.all([...inFlight]);
      },
    };
  }

  /**
   * Tells the gateways that instance `id` of `name` answers discovery no more (`INSTANCE_LEFT`):
   * after its last discovery answer, which NATS delivers before this, so no late answer makes it
   * seen again. Not while NATS is away: there is nobody to tell, and the checks' misses
   * find it gone as before.
   */
  #left(name: string, id: string): void {
    if (this.nc.isClosed() || this.reconnecting) return;
    this.nc.publish(this.subject(INSTANCE_LEFT), encoder.encode(JSON.stringify({ name, id })));
  }

  /**
   * The 503 of a request refused because it would not get its turn in this instance before its
   * deadline (shared/bus_admission.ts): logged once in a while, not once per request of a flood.
   */
  #busy(service: string, waiting: number): ServiceUnavailableError {
    if (this.#busySaid.due()) this.#log.warn("too busy: refusing requests", { service, waiting });
    const error = new ServiceUnavailableError(
      `Cannot serve the request now: this ${service} instance is too busy to answer it in time ` +
        `(${waiting} requests waiting); try again shortly`,
    );
    // A second: about what a wait may last here (half a deadline, at most a few seconds).
    return retryAfter(loggedOnce(error), 1);
  }

  /**
   * Subscribes one route in the queue group, registering its figures in `stats`; each request
   * takes its turn through `admission`, and stays in `inFlight` until it is answered, so stopping
   * can wait for it.
   */
  #serveRoute(
    { endpoint, handler }: Route,
    { stats, inFlight, admission, service }: {
      stats: Map<string, EndpointStats>;
      inFlight: Set<Promise<void>>;
      admission: Admission;
      service: string;
    },
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
        if (!msg.reply?.startsWith(REQUESTER_INBOX)) return this.#unasked(subject, msg.reply);
        // Read once, at arrival: a budget counts from then, however long admission holds it.
        const { deadline, senderAheadMs } = receivedDeadline(msg.headers);
        this.#clocks.note(subject, senderAheadMs);
        const served = { endpoint, schemas, handler, stat, meter, log, maxPayload, deadline };
        const nested = msg.headers?.has(NESTED_HEADER) ?? false;
        const work = admission.admit({ bytes: msg.data.length, deadline, nested }, {
          serve: () => answer(served, msg),
          refuse: (why) =>
            answer(
              served,
              msg,
              why === "busy"
                ? this.#busy(service, admission.waiting)
                : deadlineError("start the work"),
            ),
        });
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
  #answerDiscovery(
    verb: string,
    { name, id, answering }: { name: string; id: string; answering: Set<Promise<void>> },
    body: () => unknown,
  ): Subscription[] {
    return [`$SRV.${verb}`, `$SRV.${verb}.${name}`, `$SRV.${verb}.${name}.${id}`].map((subject) =>
      this.nc.subscribe(subject, {
        callback: (_error, msg) => {
          const answer = Promise.resolve(body()).then((answer) =>
            void msg.respond(encoder.encode(JSON.stringify(answer)))
          ).catch((error) => this.#log.warn("cannot answer discovery", { verb, error }));
          answering.add(answer);
          answer.finally(() => answering.delete(answer));
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
   * Drains the connections (the JetStream one first): pending messages are delivered, then they
   * close. While NATS is away there is nothing to drain to (nats.js rejects the drain), so a
   * connection is closed as it stands: what was not sent is lost as it would be anyway, and a
   * process stopping during an outage still exits cleanly, closing what it holds after the bus.
   */
  async close(): Promise<void> {
    await this.#jetStream.close();
    await closeConnection(this.nc, this.#log);
  }
}
