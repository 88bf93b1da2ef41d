/**
 * The fixed set of API errors. Each class carries its HTTP status and a stable `code`; services
 * throw them, the bus carries them across, and the gateway's single `onError` renders them as
 * JSON:API error objects. Anything else that escapes is an `InternalError` whose details go only
 * to the log.
 *
 * @example
 * ```ts
 * import { UnprocessableError } from "@shared/errors.ts";
 * throw new UnprocessableError("Cannot save event: ends-at must be after starts-at", {
 *   pointer: "/data/attributes/ends-at",
 * });
 * ```
 */

/** Where in the request an error points (JSON:API `source`). */
export interface ErrorSource {
  pointer?: string;
  parameter?: string;
  header?: string;
}

/** One JSON:API error object as it travels on the bus and to clients. */
export interface ErrorObject {
  status: string;
  code: string;
  title: string;
  detail?: string;
  source?: ErrorSource;
}

export interface ApiErrorOptions {
  pointer?: string;
  parameter?: string;
  header?: string;
  cause?: unknown;
  /** More error objects (for example several invalid fields at once). */
  more?: ErrorObject[];
}

const GENERIC_500 = "The server could not complete the request";

/** Base class: never thrown directly, use one of the subclasses. */
export class ApiError extends Error {
  readonly status: number = 500;
  readonly code: string = "internal_error";
  readonly title: string = "Internal server error";
  readonly source?: ErrorSource;
  readonly more: ErrorObject[];

  constructor(detail: string, options: ApiErrorOptions = {}) {
    super(detail, { cause: options.cause });
    this.name = new.target.name;
    const source: ErrorSource = {};
    // "" is a real value: the document root, or a query parameter with an empty name.
    if (options.pointer !== undefined) source.pointer = options.pointer;
    if (options.parameter !== undefined) source.parameter = options.parameter;
    if (options.header !== undefined) source.header = options.header;
    if (Object.keys(source).length) this.source = source;
    this.more = options.more ?? [];
  }

  /** The JSON:API error objects this error renders as. */
  toObjects(): ErrorObject[] {
    const first: ErrorObject = {
      status: String(this.status),
      code: this.code,
      title: this.title,
      // A 500 is our fault: its message is for the log (it may name internals), not the client.
      detail: this.status === 500 ? GENERIC_500 : this.message,
    };
    if (this.source) first.source = this.source;
    return [first, ...this.more];
  }
}

function defineError(status: number, code: string, title: string) {
  return class extends ApiError {
    override readonly status = status;
    override readonly code = code;
    override readonly title = title;
  };
}

export class BadRequestError extends defineError(400, "bad_request", "Bad request") {}
/**
 * A service could not read a bus request: the requester's bug. Its own code lets the requester
 * recognise it (shared/bus.ts turns it into a 500) without reading the message.
 */
export class UnreadableBusRequestError extends BadRequestError {
  static readonly CODE = "unreadable_bus_request";
  override readonly code = UnreadableBusRequestError.CODE;
}
export class UnauthorizedError extends defineError(401, "unauthorized", "Unauthorized") {}
export class ForbiddenError extends defineError(403, "forbidden", "Access forbidden") {}
export class NotFoundError extends defineError(404, "not_found", "Object not found") {}
export class MethodNotAllowedError
  extends defineError(405, "method_not_allowed", "Method not allowed") {}
export class NotAcceptableError extends defineError(406, "not_acceptable", "Not acceptable") {}
export class ConflictError extends defineError(409, "conflict", "Conflict") {}
/** A write's `If-Match` or `If-None-Match` did not hold for the target's current representation. */
export class PreconditionFailedError
  extends defineError(412, "precondition_failed", "Precondition failed") {}
/** A write's precondition header (RFC 9110 §13.1), as named in its 412's `source.header`. */
export type WritePrecondition = "If-Match" | "If-None-Match";

/** The 400 of a malformed `Idempotency-Key` (an empty one included), at the gateway or a service. */
export function malformedIdempotencyKey(): BadRequestError {
  return new BadRequestError("Cannot read Idempotency-Key: use 1 to 255 visible ASCII characters", {
    header: "Idempotency-Key",
  });
}

/**
 * The 412 of a write whose precondition failed: its `If-Match` names no tag the target has now,
 * or its `If-None-Match` names the one it has (or `*`, for any).
 */
export function failedPrecondition(header: WritePrecondition): PreconditionFailedError {
  const detail = header === "If-Match"
    ? "Cannot apply the change: the resource changed since the representation whose ETag " +
      "If-Match names (read it again, then retry with its new ETag)"
    : "Cannot apply the change: the resource's current representation is one If-None-Match names";
  return new PreconditionFailedError(detail, { header });
}
export class PayloadTooLargeError
  extends defineError(413, "payload_too_large", "Payload too large") {}
export class UriTooLongError extends defineError(414, "uri_too_long", "URI too long") {}
export class UnsupportedMediaTypeError
  extends defineError(415, "unsupported_media_type", "Unsupported media type") {}
export class UnprocessableError
  extends defineError(422, "unprocessable_entity", "Unprocessable entity") {}
export class HeaderFieldsTooLargeError
  extends defineError(431, "header_fields_too_large", "Request header fields too large") {}
export class InternalError extends defineError(500, "internal_error", "Internal server error") {}
export class BadGatewayError extends defineError(502, "bad_gateway", "Bad gateway") {}
export class ServiceUnavailableError
  extends defineError(503, "service_unavailable", "Service unavailable") {}
export class GatewayTimeoutError extends defineError(504, "gateway_timeout", "Gateway timeout") {}

const byStatus: Record<number, new (detail: string, options?: ApiErrorOptions) => ApiError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  406: NotAcceptableError,
  409: ConflictError,
  413: PayloadTooLargeError,
  414: UriTooLongError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableError,
  431: HeaderFieldsTooLargeError,
  500: InternalError,
  502: BadGatewayError,
  503: ServiceUnavailableError,
  504: GatewayTimeoutError,
};

/**
 * The JSON:API error document for `objects`. JSON:API 1.0 allows only `pointer` and `parameter`
 * in an error's `source` and no other members; `header` (which header was wrong: Authorization,
 * Idempotency-Key, ...) is 1.1's, so a document that names one says it is 1.1. Every other
 * document stays 1.0, as the original's were.
 */
export function errorDocumentOf(objects: ErrorObject[]): {
  errors: ErrorObject[];
  jsonapi: { version: "1.0" | "1.1" };
} {
  const namesHeader = objects.some((object) => object.source?.header !== undefined);
  return { errors: objects, jsonapi: { version: namesHeader ? "1.1" : "1.0" } };
}

/**
 * Rebuilds a typed error from error objects that crossed the bus, so a caller can
 * `catch (e) { if (e instanceof NotFoundError) ... }` whatever service threw it.
 */
export function errorFromObjects(objects: ErrorObject[]): ApiError {
  const [first, ...more] = objects;
  const status = Number(first?.status ?? 500);
  const ErrorClass = byStatus[status] ?? InternalError;
  return new ErrorClass(first?.detail ?? first?.title ?? "Unknown error", {
    ...first?.source,
    more,
  });
}

/** Renders any thrown value as error objects; unknown errors become a bare 500. */
export function toErrorObjects(error: unknown): ErrorObject[] {
  if (error instanceof ApiError) return error.toObjects();
  return new InternalError(GENERIC_500).toObjects();
}
