/**
 * The serving side of one request: checks it against its endpoint's schema, runs the handler
 * within the request's deadline, and answers with the handler's result or the JSON:API error it
 * threw (a `Status` header, and the NATS services error headers on failures), counted and, with
 * OTEL_DENO=true, traced. `Bus.serve` (shared/bus.ts) subscribes the routes and calls `answer`.
 */
import { headers as natsHeaders } from "@nats-io/nats-core";
import type { Msg, MsgHdrs } from "@nats-io/nats-core";
import type { EndpointStats } from "./bus.ts";
import type { Endpoint, EndpointSchemas, Handler } from "./bus_endpoints.ts";
import { endBusSpan, type EndpointMeter, startServerSpan } from "./bus_telemetry.ts";
import { cacheHeaders } from "./cache_tags.ts";
import { deadlineError, withDeadline } from "./deadline.ts";
import {
  ApiError,
  errorDocumentOf,
  type ErrorObject,
  InternalError,
  toErrorObjects,
  UnreadableBusRequestError,
} from "./errors.ts";
import type { Logger } from "./log.ts";
import { fitToBus, ReplyTooLargeError } from "./reply_size.ts";
import type { HttpReply, HttpRequest } from "./schemas/http.ts";
import { tracing, withContext } from "./telemetry.ts";

const encoder = new TextEncoder();
/** The bus header carrying an error's `Retry-After` (seconds) to the gateway. */
export const RETRY_AFTER_HEADER = "Retry-After";
/** The bus header carrying the snapshot a read was answered under (`HttpReply.snapshot`). */
export const READ_SNAPSHOT_HEADER = "Read-Snapshot";
const decoder = new TextDecoder();

const loggedElsewhere = new WeakSet<object>();

/**
 * Marks an error whose cause is already logged once for all requests it fails (a lost
 * database: shared/db.ts), so serving does not log it again per request.
 */
export function loggedOnce<E extends object>(error: E): E {
  loggedElsewhere.add(error);
  return error;
}

const retryAfterSeconds = new WeakMap<object, number>();

/**
 * Marks an error whose answer tells the requester when to try again (`Retry-After`, seconds): a
 * refusal of an instance too busy to serve it in time (shared/bus_admission.ts). The gateway
 * relays the header with the 503.
 */
export function retryAfter<E extends object>(error: E, seconds: number): E {
  retryAfterSeconds.set(error, seconds);
  return error;
}

function errorDocument(objects: ErrorObject[]): Uint8Array {
  return encoder.encode(JSON.stringify(errorDocumentOf(objects)));
}

export function parseJson(data: Uint8Array): unknown {
  return data.length === 0 ? undefined : JSON.parse(decoder.decode(data));
}

/** The NATS headers of an HTTP reply: status, location, what the gateway must still merge. */
function setHttpHeaders(headers: MsgHdrs, http: HttpReply): void {
  headers.set("Status", String(http.status));
  if (http.location) headers.set("Location", http.location);
  if (http.snapshot) headers.set(READ_SNAPSHOT_HEADER, http.snapshot);
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

export interface Served {
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
  /** This request's deadline, read when it arrived (`receivedDeadline`). */
  deadline: number;
}

/** An answer ready to send: its status, headers and body. */
interface Outcome {
  status: number;
  headers: MsgHdrs;
  body: Uint8Array;
  error?: unknown;
}

/**
 * Serves one request: counts it, traces it (OTEL_DENO=true), answers it; or, with `refused`,
 * answers that error without looking at the request (an instance too busy to take it).
 */
export async function answer(served: Served, msg: Msg, refused?: ApiError): Promise<void> {
  const { endpoint, stat, meter } = served;
  const began = meter.start();
  stat.num_requests++;
  let outcome: Outcome;
  if (tracing) {
    const { span, ctx } = startServerSpan(endpoint.subject, msg.subject, msg.headers);
    outcome = await withContext(ctx, () => outcomeOf(served, msg, refused));
    endBusSpan(span, "server", outcome.status, outcome.error);
  } else {
    outcome = await outcomeOf(served, msg, refused);
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
async function outcomeOf(served: Served, msg: Msg, refused?: ApiError): Promise<Outcome> {
  const { endpoint, handler, stat, log } = served;
  const reply = natsHeaders();
  let request: unknown;
  try {
    if (refused) throw refused;
    const schemas = await served.schemas;
    // A requester that sends no deadline (a client of the bus API other than ours) got the
    // bus's default timeout as one (`receivedDeadline`): without any, a change could be made long
    // after it gave up (a reservation behind a lock, applied after its 1 s timeout, in a review).
    const { deadline } = served;
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
    const seconds = retryAfterSeconds.get(error as object);
    if (seconds !== undefined) reply.set(RETRY_AFTER_HEADER, String(seconds));
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
